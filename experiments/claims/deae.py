"""DEAE (the disentangled exploration autoencoder) on Fonts: de-biasing, data augmentation and controllable edits.

Quick scale: the embedded fonts at 32 px; DEAE (and the models it is compared with) at conv width
8, Adam lr 1e-3, batch 16, a fixed number of Adam steps, no validation. Paper scale: the authors'
setting, ``aegen fit --model deae --preset paper`` (full Fonts at 128 px, width 64, batch 4, lr 1e-4,
1e6 steps), on a GPU. Nothing is tuned on a test split: every setting is fixed here.
"""

from __future__ import annotations

import torch
from aegen.models.deae import PAPER_BLOCKS
from claims import Comparison, Context, Report, claim, missing_gpu, ours
from claims.deae_common import FEW_FONTS, STYLE, SUBSET, accuracy, fonts, load, synthesise, train_classifier

PAPER = "DEAE, Generative autoencoder: controllable synthesis with disentangled exploration"
QUICK_DATA = {"image_size": 32, "batch_size": 16}
QUICK_NETS = {"width": 8, "lr": 1e-3}
#: deae's and gsl's code layout and swap and composite weights in every claim: the paper's 20 dims and
#: weight 1 (their defaults: a code four times as large, weights 0.1)
PAPER_GSL = {"blocks": PAPER_BLOCKS, "swap_weight": 1.0, "composite_weight": 1.0}
#: deae's image distance in deae-debias and deae-augmentation: the paper's L1 (the default, which
#: deae-controllability and fonts-disentanglement use, is squared error)
L1 = {"pixel_loss": "l1"}
#: what QUICK_NETS, PAPER_GSL and L1 set, as the setting texts of deae-debias and deae-augmentation say it
QUICK_L1_TEXT = "width 8, lr 1e-3, batch 16, 20-d code, L1 image losses, swap and composite weights 1"
PAPER_DATA = {"image_size": 128, "num_items": 20000}  # batch 4 and the rest from the preset
STEPS = {"quick": 1500, "paper": 1_000_000}
CLASSIFIER_STEPS = {"quick": 1000, "paper": 5000}
#: the scarce augmentation setting: the paper's 52 letters, 5 real training images per letter on average
SCARCE_LETTERS, SCARCE_TRAIN = 52, 260


def paper_needs(ctx: Context) -> list[str]:
    return missing_gpu()


def budget(ctx: Context, preset: bool = True) -> list:
    """The trainer flags of every fit: quick, a fixed number of Adam steps without validation;
    paper, DEAE's preset (``preset``) and its 1e6 steps; ``--epochs`` replaces the steps by epochs."""
    steps = (["--trainer.max_epochs", ctx.epochs, "--trainer.max_steps", -1] if ctx.epochs else
             ["--trainer.max_steps", STEPS[ctx.scale], "--trainer.max_epochs", -1])
    return [*(["--preset", "paper"] if preset and ctx.scale == "paper" else []), *steps,
            *ctx.pick(["--trainer.limit_val_batches", 0], [])]


def budget_text(ctx: Context) -> str:
    return f"{ctx.epochs} epochs" if ctx.epochs else f"{STEPS[ctx.scale]} Adam steps"


def letters_of(dm, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and letter labels of a split."""
    images, factors = dm.split(name)
    return images.cpu(), factors[:, 0].cpu()


def classify(ctx: Context, dm, parts: list[tuple[torch.Tensor, torch.Tensor]], seed: int) -> float:
    """Test accuracy of a letter classifier trained on the (images, letters) ``parts`` together."""
    images, letters = (torch.cat(t) for t in zip(*parts))
    net = train_classifier(images, letters, dm.num_classes, CLASSIFIER_STEPS[ctx.scale], seed)
    return accuracy(net, *letters_of(dm, "test"))


def per_seed_rows(runs: dict[str, list[float]], paper: dict[str, str], column: str) -> list[dict]:
    return [{"classifier trained on": label, "paper": paper[label], f"{column} (ours)": ours(values, ".3f")}
            for label, values in runs.items()]


@claim("deae-debias", "biased fonts plus DEAE's background syntheses train a better letter classifier "
       "(unbiased test accuracy) than the biased fonts alone",
       f"{PAPER}: removing dataset bias (abstract and the de-biasing experiment; no number in the paper's text)",
       needs=paper_needs)
def debias(ctx: Context) -> Report:
    """DEAE (exploring the background block) on fonts whose training split ties each letter to one
    background; per seed, one DEAE and two letter classifiers (biased images alone, and with 2
    syntheses per image: its background block taken from a random training image, its letter kept)."""
    data = {**ctx.pick({**QUICK_DATA, "subset": SUBSET, "num_items": 4500}, PAPER_DATA),
            "bias": ["letter", "background_colour"]}
    dm = fonts(**data)
    train = letters_of(dm, "train")
    runs: dict[str, list[float]] = {"biased fonts": [], "biased + DEAE de-biasing syntheses": []}
    fit_s = []
    for seed in ctx.seeds:
        ckpt, seconds = ctx.fit("deae", seed=seed, data="fonts", data_options=data, flags=budget(ctx),
                                model_options=ctx.pick({**QUICK_NETS, **PAPER_GSL, **L1,
                                                        "explore": ["background_colour"]}, {}))
        syntheses, kept = synthesise(load(ckpt), dm.split("train")[0].cpu(), ["background_colour"], 2, seed, "swap")
        runs["biased fonts"].append(classify(ctx, dm, [train], seed))
        runs["biased + DEAE de-biasing syntheses"].append(
            classify(ctx, dm, [train, (syntheses, train[1][kept])], seed))
        fit_s.append(seconds)
    paper = {"biased fonts": "lower (no number)", "biased + DEAE de-biasing syntheses": "higher (no number)"}
    rows = per_seed_rows(runs, paper, "unbiased test accuracy")
    comparison = Comparison("de-biased > biased (unbiased test accuracy of the letter classifier)",
                            runs["biased + DEAE de-biasing syntheses"], runs["biased fonts"], lower_is_better=False)
    subset = ctx.pick("10 letters x 6 faces x 3 sizes x 5 font colours x 5 backgrounds, 4500 items",
                      "all of Fonts (52 letters, 21 faces, 3 sizes, 10 colours each), 20000 items")
    setting = (f"fonts {ctx.pick(32, 128)} px, {subset}; training split biased (letter i only on background "
               f"i mod the backgrounds), {len(train[1])} images; DEAE "
               + ctx.pick(f"{QUICK_L1_TEXT}, background block explored", "--preset paper")
               + f", {budget_text(ctx)}; classifier: aegen's judge CNN, Adam 1e-3, batch 64, "
               f"{CLASSIFIER_STEPS[ctx.scale]} steps")
    return Report("A letter classifier on biased fonts, with and without DEAE's de-biasing syntheses", setting,
                  rows, [comparison], notes=[f"{len(dm.split('test')[1])} unbiased test images; chance "
                                             f"{1 / dm.num_classes:.3f}; one DEAE per seed, the seed also "
                                             f"the classifiers'",
                                             f"DEAE fit: {sum(fit_s) / len(fit_s):.0f} s per seed"],
                  data={"runs": runs, "fit_s": fit_s})


AUGMENTED = {"real only": "-", "real + block-swap syntheses": "no number (not the paper's generator)",
             "real + in-block interpolation syntheses": "higher than real only (no number)"}


@claim("deae-augmentation", "DEAE's syntheses (block swaps; interpolations inside a block) improve a letter "
       "classifier trained on scarce real fonts images", f"{PAPER}: attribute-controllable data augmentation "
       "improves a downstream classifier (abstract; no number in the paper's text)", needs=paper_needs)
def augmentation(ctx: Context) -> Report:
    """Per seed, DEAE on the few real training images, 3 syntheses per image of each kind (the four
    style blocks swapped from, or drawn between the image's and, a random training image; the
    letter kept), and three letter classifiers: real only, real + swaps, real + interpolations."""
    data = {**ctx.pick({**QUICK_DATA, "subset": {**SUBSET, "letter": SCARCE_LETTERS}, "num_items": 6000}, PAPER_DATA),
            "train_items": SCARCE_TRAIN}
    dm = fonts(**data)
    train = letters_of(dm, "train")
    runs: dict[str, list[float]] = {label: [] for label in AUGMENTED}
    fit_s = []
    for seed in ctx.seeds:
        ckpt, seconds = ctx.fit("deae", seed=seed, data=FEW_FONTS, data_options=data, flags=budget(ctx),
                                model_options=ctx.pick({**QUICK_NETS, **PAPER_GSL, **L1}, {}))
        model = load(ckpt)
        parts = {"real only": [train]}
        for label, how in (("real + block-swap syntheses", "swap"), ("real + in-block interpolation syntheses",
                                                                     "interpolate")):
            syntheses, kept = synthesise(model, dm.split("train")[0].cpu(), STYLE, 3, seed, how)
            parts[label] = [train, (syntheses, train[1][kept])]
        for label in AUGMENTED:
            runs[label].append(classify(ctx, dm, parts[label], seed))
        fit_s.append(seconds)
    rows = per_seed_rows(runs, AUGMENTED, "test accuracy")
    comparisons = [Comparison(f"{label} > real only (test accuracy)", runs[label], runs["real only"], False)
                   for label in AUGMENTED if label != "real only"]
    subset = ctx.pick("52 letters x 6 faces x 3 sizes x 5 font colours x 5 backgrounds, 6000 items",
                      "all of Fonts (52 letters, 21 faces, 3 sizes, 10 colours each), 20000 items")
    setting = (f"fonts {ctx.pick(32, 128)} px, {subset}; {SCARCE_TRAIN} real training images (the first of the "
               f"seeded training split); DEAE "
               + ctx.pick(f"{QUICK_L1_TEXT}, every block explored", "--preset paper") +
               f", {budget_text(ctx)}; classifier: aegen's judge CNN, Adam 1e-3, batch 64, "
               f"{CLASSIFIER_STEPS[ctx.scale]} steps")
    notes = [f"scarce data, chosen from the paper's description before any run of it: the paper's Fonts has 52 "
             f"letters and it stresses small training sets, so {SCARCE_TRAIN} real images of all 52 letters "
             f"(5 per letter on average) instead of 300 images of 10 letters, where the classifier is near 97 % "
             f"without any synthesis", "block swap recombines seen attribute values; in-block interpolation "
             "(the authors' generator) draws new ones between two training images' codes, dimension by "
             "dimension, as DEAE's exploration does",
             f"{len(dm.split('test')[1])} test images; chance {1 / dm.num_classes:.3f}; one DEAE per seed, the "
             f"seed also the classifiers'; DEAE fit: {sum(fit_s) / len(fit_s):.0f} s per seed"]
    return Report("A letter classifier on scarce real fonts, with and without DEAE's syntheses", setting, rows,
                  comparisons, notes, data={"runs": runs, "fit_s": fit_s})


#: label -> (registered model, quick options, paper options); the quick nets add QUICK_NETS
EDITORS = {
    "deae": ("deae", PAPER_GSL, {}),
    "ae": ("ae", {"latent_dim": 20}, {"latent_dim": 20, "width": 64, "lr": 1e-4}),
    "gsl": ("gsl", PAPER_GSL, {**PAPER_GSL, "width": 64, "lr": 1e-4, "reduction": "sum", **L1}),
    "beta-VAE": ("vae", {"latent_dim": 20, "beta": 4.0}, {"latent_dim": 20, "beta": 4.0, "width": 64, "lr": 1e-4}),
}
EDIT_KEYS = ("edit_acc", "edit_acc_target", "edit_acc_keep", "recon_acc_keep")
QUICK_EDITORS = ("deae", "ae", "gsl", "beta-VAE")


@claim("deae-controllability", "DEAE's block edits change the asked attribute and keep the others more often "
       "than a plain autoencoder's latent swaps (edit_acc)", f"{PAPER}: precise attribute-controllable "
       "synthesis (Fig. 2 and the controllable synthesis figures; no number)", needs=paper_needs)
def controllability(ctx: Context) -> Report:
    """Each model for the same budget on the same fonts (20-d codes), then ``aegen evaluate --metrics
    edit`` (per-factor judges read edited test images: deae and gsl swap their factor blocks, ae and
    beta-VAE the code dimensions most informative of the factor)."""
    data = ctx.pick({**QUICK_DATA, "subset": SUBSET, "num_items": 3000}, {**PAPER_DATA, "batch_size": 4})
    labels = ctx.pick(QUICK_EDITORS, tuple(EDITORS))
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    for seed in ctx.seeds:
        for label in labels:
            model, quick, paper = EDITORS[label]
            ckpt, seconds = ctx.fit(model, seed=seed, data="fonts", data_options=data,
                                    model_options=ctx.pick({**QUICK_NETS, **quick}, paper),
                                    flags=budget(ctx, preset=model == "deae"))
            result = ctx.evaluate(ckpt, "edit", seed=seed)
            runs[label].append({k: result[k] for k in EDIT_KEYS} | {"fit_s": seconds})
    paper = {"deae": "precise edits (figures, no number)"}
    rows = [{"model": label, "paper": paper.get(label, "-"),
             **{f"{k} (ours)": ours([r[k] for r in per_seed], ".3f") for k in EDIT_KEYS},
             "fit s/run": f"{sum(r['fit_s'] for r in per_seed) / len(per_seed):.0f}"} for label, per_seed in runs.items()]
    comparisons = [Comparison(f"deae's edit_acc > {other}'s", [r["edit_acc"] for r in runs["deae"]],
                              [r["edit_acc"] for r in runs[other]], lower_is_better=False)
                   for other in ("ae", "gsl") if other in runs]
    setting = ctx.pick(
        f"fonts 32 px, 10 letters x 6 faces x 3 sizes x 5 font colours x 5 backgrounds, 3000 items; every model "
        f"width 8, lr 1e-3, batch 16 (deae and gsl: one partner per factor per anchor, their default squared-error "
        f"image losses, the paper's swap and composite weights 1), 20-d code, "
        f"{budget_text(ctx)}; `aegen evaluate --metrics edit` at its defaults",
        f"all of Fonts at 128 px; deae --preset paper, the others with its nets and budget (width 64, lr 1e-4, "
        f"batch 4, 20-d code), {budget_text(ctx)}; `aegen evaluate --metrics edit`")
    notes = ["edit_acc: share of edits whose judges read the new value of the edited factor and the old value "
             "of every other, averaged over factors; edit_acc_target / edit_acc_keep: each half alone; "
             "recon_acc_keep: every factor read right on plain reconstructions (the ceiling of edit_acc_keep)",
             "deae vs gsl is the exploration loss alone (gsl is deae without it)"]
    return Report("Controllable edits: deae against gsl, beta-VAE and a plain autoencoder", setting, rows,
                  comparisons, notes, data={"runs": runs})
