"""Learned priors for AAEs (Wang, Peng & Ko 2020): Table 1, the Table 3 ablation and the supervised setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from claims import Comparison, Context, Report, claim, missing_data, missing_gpu, ours

CIFAR_CONFIG = Path(__file__).resolve().parents[1] / "codegen_cifar10.yaml"
IS_SAMPLES = 50_000  # the Inception Score's standard protocol
TABLE1_PAPER = {"aae": "2.15", "vae": "3.00", "codegen_aae": "6.52"}
#: (row, learned_prior, perceptual_loss, decoder_in_both_phases, the paper's CIFAR-10 IS as our text gives it)
ABLATION = [
    ("baseline (AAE)", False, False, False, "the lowest (value not in our text)"),
    ("+ A learned prior", True, False, False, "baseline + about 0.9"),
    ("+ A + B perceptual loss", True, True, False, "3.69"),
    ("+ A + B + C decoder in both phases", True, True, True, "the highest (Table 1's full model: 6.52)"),
]


def cifar_needs(ctx: Context) -> list[str]:
    weights = [] if ctx.inception_weights else ["--inception-weights PATH (torch-fidelity's Inception weights)"]
    return missing_data(ctx, "cifar10") + missing_gpu() + weights


def mnist_needs(ctx: Context) -> list[str]:
    return missing_data(ctx, "mnist") + missing_gpu()


def cifar_flags(seed: int, epochs: int) -> list[Any]:
    """codegen_aae's `aegen fit` flags for CIFAR-10: the config file, then this seed and the epochs."""
    return ["--config", CIFAR_CONFIG, "--seed_everything", seed, "--trainer.max_epochs", epochs]


def sample_metrics(ctx: Context) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """(metrics, keys, evaluate flags): quick, the judge at ``aegen evaluate``'s defaults; paper, the IS."""
    return ctx.pick(("judge", ("fid_judge", "is_judge_mean"), {}), ("is", ("is_mean",), {"num_samples": IS_SAMPLES}))


def score(ctx: Context, model: str, seed: int, data: str, flags: list[Any], metrics: str, keys: tuple[str, ...],
          eval_flags: dict[str, Any] | None = None) -> dict[str, Any]:
    """``aegen fit`` then ``aegen evaluate``: the metrics among ``keys`` and the fit's seconds."""
    ckpt, seconds = ctx.fit(model, seed=seed, data=data, flags=flags)
    result = ctx.evaluate(ckpt, metrics, seed=seed, **(eval_flags or {}))
    return {k: result[k] for k in keys if k in result} | {"fit_s": seconds, "checkpoint": str(ckpt)}


def table_rows(runs: dict[str, list[dict]], paper: dict[str, str], keys: tuple[str, ...], label: str,
               spec: str = ".4g") -> list[dict]:
    """One row per entry: the paper's value ("-" if none) beside ours (mean ± std over seeds) per key."""
    return [{label: name, "paper": paper.get(name, "-"),
             **{f"{k} (ours)": ours([r[k] for r in per_seed], spec) if k in per_seed[0] else "-" for k in keys},
             "fit s/run": f"{sum(r['fit_s'] for r in per_seed) / len(per_seed):.0f}"}
            for name, per_seed in runs.items()]


def per_seed(runs: dict[str, list[dict]], name: str, key: str) -> list[float]:
    return [r[key] for r in runs[name]]


@claim("codegen-table1", "codegen_aae's samples beat aae's and vae's with the same code size (judge-FID / IS)",
       "Learned priors for AAEs, Wang, Peng & Ko 2020, Table 1: CIFAR-10 Inception Score with a 64-d code, AAE 2.15, "
       "VAE 3.00, VampPrior (value not in our text), the code generator 6.52", needs=cifar_needs)
def table1(ctx: Context) -> Report:
    """aae, vae (code 64) and codegen_aae (its defaults; code 64) as ``aegen fit`` trains them (quick: the
    embedded digits, 10 epochs, ``aegen evaluate --metrics judge`` at its defaults; paper: CIFAR-10 with
    experiments/codegen_cifar10.yaml and the same data and trainer settings for the baselines, 100
    epochs, the Inception Score of 50,000 samples)."""
    epochs = ctx.epochs or ctx.pick(10, 100)
    data = ctx.pick("digits", "cifar10")
    keys = sample_metrics(ctx)[1]
    runs: dict[str, list[dict]] = {name: [] for name in TABLE1_PAPER}
    for seed in ctx.seeds:
        for model in runs:
            if model == "codegen_aae":
                flags = ctx.pick(["--trainer.max_epochs", epochs], cifar_flags(seed, epochs))
            else:
                flags = ["--model.latent_dim", 64, *ctx.pick([], ["--data.batch_size", 64]),
                         "--trainer.max_epochs", epochs]
            runs[model].append(score(ctx, model, seed, data, flags, *sample_metrics(ctx)))
    rows = table_rows(runs, TABLE1_PAPER, keys, "model")
    rows.insert(2, {"model": "vamp (VampPrior)", "paper": "in Table 1; value not in our text",
                    **{f"{k} (ours)": "not run" for k in keys}, "fit s/run": "-"})
    comparisons = [Comparison(f"codegen_aae's samples beat {base}'s ({key}, {'lower' if low else 'higher'} is better)",
                              per_seed(runs, "codegen_aae", key), per_seed(runs, base, key), lower_is_better=low)
                   for base in ("aae", "vae") for key, low in zip(keys, ctx.pick((True, False), (False,)))]
    setting = ctx.pick(f"embedded digits; aae and vae with --model.latent_dim 64, codegen_aae at its defaults "
                       "(code 64); "
                       f"{epochs} epochs; `aegen evaluate --metrics judge` defaults",
                       f"CIFAR-10 32 px; codegen_aae from experiments/codegen_cifar10.yaml (the paper preset, code 64, "
                       f"batch 64), aae and vae with code 64 and batch 64; {epochs} epochs; IS of {IS_SAMPLES} samples")
    return Report("Sample quality of the learned prior against AAE and VAE with the same code size", setting, rows,
                  comparisons, notes=["fid_judge / is_judge_mean: FID and IS in the features of a digit classifier "
                                      "(the judge), samples against the training split; IS: torch-fidelity's Inception",
                                      "the VampPrior row is not run (the paper runs it with the paper's autoencoder)"],
                  data={"runs": runs})


@claim("codegen-table3", "Each of the paper's three design choices, enabled in turn, improves the samples",
       "Learned priors for AAEs, Wang, Peng & Ko 2020, Table 3: CIFAR-10 Inception Score of the AAE baseline (the "
       "lowest), + A learned prior (about +0.9), + B perceptual loss (3.69), + C decoder in both phases (the highest)",
       needs=cifar_needs)
def table3(ctx: Context) -> Report:
    """The ablation's four rows, each ``aegen fit --model codegen_aae`` with the paper's training and the
    switches ``--model.learned_prior`` / ``perceptual_loss`` / ``decoder_in_both_phases`` (quick: the
    embedded digits, ``--preset paper``, 4 epochs, the judge; paper: CIFAR-10 with
    experiments/codegen_cifar10.yaml, 100 epochs, the Inception Score of 50,000 samples)."""
    epochs = ctx.epochs or ctx.pick(4, 100)
    data = ctx.pick("digits", "cifar10")
    metrics, keys, eval_flags = sample_metrics(ctx)
    runs: dict[str, list[dict]] = {row[0]: [] for row in ABLATION}
    for seed in ctx.seeds:
        for name, a, b, c, _ in ABLATION:
            head = ctx.pick(["--preset", "paper", "--trainer.max_epochs", epochs], cifar_flags(seed, epochs))
            switches = ["--model.learned_prior", str(a).lower(), "--model.perceptual_loss", str(b).lower(),
                        "--model.decoder_in_both_phases", str(c).lower()]
            runs[name].append(score(ctx, "codegen_aae", seed, data, [*head, *switches], metrics, keys, eval_flags))
    rows = table_rows(runs, {row[0]: row[4] for row in ABLATION}, keys, "row")
    key, low = keys[0], ctx.scale == "quick"
    comparisons = [Comparison(f"{after} beats {before} ({key}, {'lower' if low else 'higher'} is better)",
                              per_seed(runs, after, key), per_seed(runs, before, key), lower_is_better=low)
                   for before, after in zip(runs, list(runs)[1:])]
    setting = ctx.pick(f"embedded digits; codegen_aae --preset paper with the three switches; {epochs} epochs; "
                       "`aegen evaluate --metrics judge` defaults",
                       f"CIFAR-10 32 px; experiments/codegen_cifar10.yaml with the three switches; {epochs} epochs; "
                       f"IS of {IS_SAMPLES} samples")
    return Report("The ablation: learned prior (A), perceptual loss (B), decoder in both phases (C)", setting, rows,
                  comparisons, notes=["every row has the paper preset's other settings (CG fixed in the AAE phase, "
                                      "the encoder's D_C weight 1, Q on generated images only)",
                                      "the last row is the paper preset itself"], data={"runs": runs})


@claim("codegen-supervised", "Supervised codegen_aae: samples conditioned on a label are judged that class",
       "Learned priors for AAEs, Wang, Peng & Ko 2020, Fig. 10: in the supervised setting (10-d label + 54-d noise "
       "-> 64-d code) each column of samples shares the label and shows that class (a figure; no number)",
       needs=mnist_needs)
def supervised(ctx: Context) -> Report:
    """codegen_aae ``--model.setting supervised`` and the unsupervised setting (quick: the embedded digits,
    the defaults, 10 epochs; paper: MNIST with ``--preset paper``, 50 epochs), then ``aegen evaluate
    --metrics judge`` at its defaults; a sheet of the first seed's supervised samples (rows: noise,
    columns: label)."""
    epochs = ctx.epochs or ctx.pick(10, 50)
    data = ctx.pick("digits", "mnist")
    keys = ("cond_acc_judge", "fid_judge", "is_judge_mean")
    head = ctx.pick([], ["--preset", "paper"])
    settings = {"supervised": ["--model.setting", "supervised"], "unsupervised": []}
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    for seed in ctx.seeds:
        for name, flags in settings.items():
            runs[name].append(score(ctx, "codegen_aae", seed, data, [*head, *flags, "--trainer.max_epochs", epochs],
                                    "judge", keys))
    sheet = label_sheet(Path(runs["supervised"][0]["checkpoint"]),
                        ctx.out / f"{ctx.name}-{ctx.scale}-{epochs}ep-labels.png")
    rows = table_rows(runs, {"supervised": "Fig. 10: each column one class (no number)", "unsupervised": "-"},
                      keys, "setting")
    accuracy = per_seed(runs, "supervised", "cond_acc_judge")
    comparison = Comparison("samples given label s are judged class s above chance (cond_acc_judge > 0.10)",
                            accuracy, [0.1] * len(accuracy), lower_is_better=False)
    setting = ctx.pick(f"embedded digits; codegen_aae at its defaults (supervised: 10 + 54 -> 64, unsupervised: "
                       f"10 + 90 -> 64); {epochs} epochs; `aegen evaluate --metrics judge` defaults",
                       f"MNIST; codegen_aae --preset paper, supervised and unsupervised; {epochs} epochs; "
                       "`aegen evaluate --metrics judge` defaults")
    return Report("The label controls the class of supervised samples", setting, rows, [comparison],
                  notes=["cond_acc_judge: share of samples drawn for class s that the judge classifies as s "
                         "(chance 0.10)", f"{sheet.name} (beside this table): seed {ctx.seeds[0]}'s supervised "
                         "samples, rows = noise, columns = label"],
                  data={"runs": runs})


def label_sheet(ckpt: Path, path: Path, rows: int = 8) -> Path:
    """Samples of a supervised codegen_aae, rows = noise, columns = label (the same noise along a row)."""
    import torch

    import aegen
    from aegen.viz import save_sheet

    model = aegen.load(ckpt)
    k = model.condition.size
    noise = torch.randn(rows, model.prior_noise_dim, generator=torch.Generator().manual_seed(0))
    s = model.condition.of_classes(torch.arange(k).repeat(rows))
    with torch.no_grad():
        images = model.decode(model.codes_from(s, noise.repeat_interleave(k, 0)))
    return save_sheet(images.unflatten(0, (rows, k)), path)
