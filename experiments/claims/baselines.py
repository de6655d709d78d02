"""The seed papers' comparisons with the systems they measure against, at quick scale.

- gaia-figure1: GAIA's Fig. 1 sets its reconstructions beside VAE-GAN, AVB, BEGAN, ALI and AGE.
- codegen-table2: the code-generator paper's Table 2 sets its samples beside BEGAN, DCGAN, LSGAN and WGAN-GP.
- fonts-disentanglement: DEAE's paper sets itself against beta-VAE, beta-TCVAE and InfoVAE.

Every model trains as ``aegen fit --model NAME`` trains it on the data every install carries; the
fits a claim shares with gaia-interpolation, codegen-table1 and deae-controllability have the same
arguments, so one ``--out`` reuses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from claims import Comparison, Context, Report, claim, missing_gpu, ours
from claims.codegen import TABLE1_PAPER, score, table_rows
from claims.deae import EDIT_KEYS, EDITORS, QUICK_DATA, QUICK_NETS, budget, budget_text
from claims.deae_common import SUBSET

PAPER_ONLY = "a paper-scale setting, which this comparison does not have (run it with --scale quick)"
FIGURE1 = ("vaegan", "avb", "began", "ali", "age", "gaia")
FIGURE1_KEYS = ("recon_mse", "ssim", "interp_fid_judge", "fid_judge")
#: Fig. 1's ALI is ALI's game alone: without the reconstruction term aegen's ALI adds by default
FIGURE1_FLAGS = {"ali": ["--model.recon_weight", "0"]}
SHEET_IMAGES = 8


def quick_only(ctx: Context) -> list[str]:
    return [PAPER_ONLY]


def beats(runs: dict[str, list[dict]], ours_name: str, key: str, lower: bool, what: str) -> list[Comparison]:
    """``ours_name`` better than every other model on ``key``."""
    return [Comparison(f"{ours_name}'s {what} beat {other}'s ({key}, {'lower' if lower else 'higher'} is better)",
                       [r[key] for r in runs[ours_name]], [r[key] for r in runs[other]], lower_is_better=lower)
            for other in runs if other != ours_name and key in runs[other][0]]


@claim("gaia-figure1", "GAIA reconstructs closer to its input than VAE-GAN, AVB, BEGAN, ALI and AGE (recon_mse)",
       "GAIA, Sainburg et al. 2018, Fig. 1: reconstructions of the same images by VAE-GAN, AVB, BEGAN, ALI, AGE "
       "and GAIA; the others are 'similar but do not match exactly the original input image' (pictures; no "
       "number)", needs=quick_only)
def figure1(ctx: Context) -> Report:
    """The six models as ``aegen fit --model NAME`` trains them (embedded digits, 10 epochs; ALI without its
    default reconstruction term, as the paper's ALI), ``aegen evaluate --metrics recon,interp,judge`` at its
    defaults, and one sheet of the same test images reconstructed by each model of the first seed (BEGAN's
    reconstruction is its discriminator's autoencoder, the only map from images to codes it has)."""
    import aegen

    epochs = ctx.epochs or 10
    runs: dict[str, list[dict]] = {model: [] for model in FIGURE1}
    ckpts: dict[str, Path] = {}
    for seed in ctx.seeds:
        for model in FIGURE1:
            ckpt, seconds = ctx.fit(model, seed=seed, data="digits",
                                    flags=[*FIGURE1_FLAGS.get(model, []), "--trainer.max_epochs", epochs])
            result = ctx.evaluate(ckpt, "recon,interp,judge", seed=seed)
            runs[model].append({k: result[k] for k in FIGURE1_KEYS if k in result} | {"fit_s": seconds})
            ckpts.setdefault(model, ckpt)
    sheet = reconstruction_sheet({m: aegen.load(c) for m, c in ckpts.items()},
                                 ctx.out / f"{ctx.name}-{epochs}ep-seed{ctx.seeds[0]}.png")
    paper = {"gaia": "matches the input (Fig. 1 F)", **{m: "similar, not the same image (Fig. 1)" for m in FIGURE1[:-1]}}
    return Report("Reconstructions of GAIA against the GAN-based inference methods of its Fig. 1",
                  f"embedded digits, each model's `aegen fit` defaults (ALI: `--model.recon_weight 0`), {epochs} "
                  "epochs; `aegen evaluate --metrics recon,interp,judge` defaults", table_rows(runs, paper, FIGURE1_KEYS, "model"),
                  beats(runs, "gaia", "recon_mse", True, "reconstructions"),
                  notes=["recon_mse / ssim: test reconstructions against their inputs (images in [-1, 1]); "
                         "interp_fid_judge: judge-feature FID of decoded midpoints; fid_judge: of samples",
                         f"{sheet.name} (beside this table): the first {SHEET_IMAGES} test images (top row) and each "
                         f"model's reconstructions of them, seed {ctx.seeds[0]}"], data={"runs": runs})


def reconstruction_sheet(models: dict[str, Any], path: Path, data: str = "digits") -> Path:
    """Rows: the first test images of ``data`` (at its defaults), then each (loaded) model's reconstructions of them."""
    import torch

    import aegen
    from aegen.viz import Sheet, save_sheet

    dm = aegen.get_data(data)()
    dm.setup("test")
    images = dm.tensors("test", SHEET_IMAGES)[0]
    rows = [images]
    with torch.no_grad():
        for model in models.values():
            rows.append(model.eval().reconstruct(images).clamp(-1, 1))
    return save_sheet(Sheet(torch.stack(rows), rows=["input", *models]), path)


TABLE2 = ("began", "dcgan", "lsgan", "wgan_gp", "aae", "vae", "codegen_aae")
TABLE2_PAPER = {**TABLE1_PAPER, **{m: "in Table 2 (value not in our text)" for m in ("began", "dcgan", "lsgan",
                                                                                      "wgan_gp")}}


@claim("codegen-table2", "codegen_aae's samples against BEGAN, DCGAN, LSGAN, WGAN-GP, AAE and VAE (judge-FID / IS)",
       "Learned priors for AAEs, Wang, Peng & Ko 2020, Table 2 and Fig. 7: CIFAR-10 Inception Scores of BEGAN, DCGAN, "
       "LSGAN, WGAN-GP and the code generator; 'our model achieves a comparable score to other generative models'",
       needs=quick_only)
def table2(ctx: Context) -> Report:
    """The GANs and codegen_aae at their ``aegen fit`` defaults, aae and vae with a 64-d code as in
    codegen-table1 (whose fits this reuses), embedded digits, 10 epochs, ``aegen evaluate --metrics
    judge`` at its defaults."""
    epochs = ctx.epochs or 10
    runs: dict[str, list[dict]] = {model: [] for model in TABLE2}
    for seed in ctx.seeds:
        for model in TABLE2:
            code = ["--model.latent_dim", 64] if model in ("aae", "vae") else []
            runs[model].append(score(ctx, model, seed, "digits", [*code, "--trainer.max_epochs", epochs], "judge",
                                     ("fid_judge", "is_judge_mean")))
    rank = sorted(runs, key=lambda m: sum(r["fid_judge"] for r in runs[m]))
    return Report("Sample quality of the code generator against the GANs of the paper's Table 2", f"embedded digits; "
                  f"aae and vae with --model.latent_dim 64, the others at their defaults; {epochs} epochs; "
                  "`aegen evaluate --metrics judge` defaults", table_rows(runs, TABLE2_PAPER, ("fid_judge", "is_judge_mean"),
                                                                           "model"),
                  beats(runs, "codegen_aae", "fid_judge", True, "samples"),
                  notes=["fid_judge / is_judge_mean: FID and IS in the features of a digit classifier (the judge)",
                         f"order by mean fid_judge (best first): {', '.join(rank)}",
                         "the paper's Table 2 values are not in our text; its claim is 'comparable', so a "
                         "comparison that is not shown is not against the paper"], data={"runs": runs})


DISENTANGLERS = {"deae": EDITORS["deae"][:2], "gsl": EDITORS["gsl"][:2], "beta-VAE": EDITORS["beta-VAE"][:2],
                 "btcvae": ("btcvae", {"latent_dim": 20}), "infovae": ("infovae", {"latent_dim": 20})}
SCORE_KEYS = ("mig", "dci_disentanglement", "factorvae_score", *EDIT_KEYS[:1])


@claim("fonts-disentanglement", "DEAE's codes are more disentangled and its edits more precise than beta-VAE's, "
       "beta-TCVAE's and InfoVAE's on Fonts (MIG, DCI, FactorVAE score, edit_acc)",
       "DEAE, Generative autoencoder: controllable synthesis with disentangled exploration, Sec. 2 and Fig. 1: VAEs "
       "(beta-VAE, beta-TCVAE) and the latent-constrained VAE of Zhao et al. struggle with controllable synthesis "
       "(no number)", needs=quick_only)
def disentanglement(ctx: Context) -> Report:
    """Each model on the deae-controllability fonts with its nets and budget (whose deae, gsl and beta-VAE
    fits this reuses), then ``aegen evaluate --metrics disentangle`` and ``--metrics edit``."""
    data = {**QUICK_DATA, "subset": SUBSET, "num_items": 3000}
    runs: dict[str, list[dict]] = {label: [] for label in DISENTANGLERS}
    for seed in ctx.seeds:
        for label, (model, options) in DISENTANGLERS.items():
            ckpt, seconds = ctx.fit(model, seed=seed, data="fonts", data_options=data,
                                    model_options={**QUICK_NETS, **options}, flags=budget(ctx, preset=False))
            result: dict[str, Any] = {**ctx.evaluate(ckpt, "edit", seed=seed),
                                      **ctx.evaluate(ckpt, "disentangle", seed=seed)}
            runs[label].append({k: result[k] for k in SCORE_KEYS} | {"fit_s": seconds})
    paper = {"deae": "precise, disentangled edits (no number)", "beta-VAE": "hard to control (no number)",
             "btcvae": "hard to control (no number)", "infovae": "hard to control (no number)"}
    vae_family = {label: per_seed for label, per_seed in runs.items() if label != "gsl"}
    comparisons = [*beats(vae_family, "deae", "edit_acc", False, "edits"), *beats(vae_family, "deae", "mig", False, "codes")]
    return Report("Disentanglement and controllable edits on Fonts: deae against the VAE family", f"fonts 32 px, "
                  "10 letters x 6 faces x 3 sizes x 5 font colours x 5 backgrounds, 3000 items; every model width 8, "
                  f"lr 1e-3, batch 16, 20-d code (deae and gsl: their default squared-error image losses), {budget_text(ctx)}; "
                  "`aegen evaluate` defaults",
                  table_rows(runs, paper, SCORE_KEYS, "model", ".3f"), comparisons,
                  notes=["deae and gsl learn from factor labels (pairs that share a factor); beta-VAE (beta 4), "
                         "btcvae (its default TC weight 6) and infovae (its default MMD weight) see no label",
                         "mig, dci_disentanglement, factorvae_score: disentanglement_lib's definitions on the codes; "
                         "edit_acc: as in deae-controllability"], data={"runs": runs})
