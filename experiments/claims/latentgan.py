"""LatentGAN autoencoder (Kalwar, Aich & Dixit): unsupervised classification (Table 1) and its codes (Figs. 2-4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from claims import Comparison, Context, Report, claim, missing_data, ours

MODELS = ("latentgan", "infogan", "aae_cluster")
PAPER_ERROR = {"latentgan": "2.38 ± 0.38", "infogan": "5 ± 0.01", "aae_cluster": "4.10 ± 1.13 (K = 30, AAE rule)",
               "kmeans_pixels": "-"}
#: the baselines' paper-scale settings (MNIST 32 px, 50 epochs), read with ``--config``
CONFIGS = {"infogan": "infogan_mnist.yaml", "aae_cluster": "aae_cluster_mnist.yaml"}
EXPERIMENTS = Path(__file__).resolve().parent.parent
FIG2 = "Fig. 2: each row one class (no number)"
PER_CATEGORY = 200  # generated images per category for the judge


def needs(ctx: Context) -> list[str]:
    return missing_data(ctx, "mnist")


def epochs(ctx: Context) -> int:
    return ctx.epochs or ctx.pick(10, 50)


def fit(ctx: Context, model: str, seed: int) -> tuple[Path, float]:
    """The training both claims share (cached by ``ctx.fit``): quick, ``aegen fit --model MODEL`` on the
    digits; paper, MNIST with latentgan's ``--preset paper`` and the baselines' configs."""
    if ctx.scale == "quick":
        return ctx.fit(model, seed=seed, flags=["--trainer.max_epochs", epochs(ctx)])
    if model == "latentgan":
        return ctx.fit(model, seed=seed, data="mnist", flags=["--preset", "paper", "--trainer.max_epochs", epochs(ctx)])
    # a config sets seed_everything and max_epochs itself: the flags after it win
    return ctx.fit(model, seed=seed, data=None, flags=["--config", EXPERIMENTS / CONFIGS[model], "--data.root",
                                                       ctx.data_root, "--seed_everything", seed,
                                                       "--trainer.max_epochs", epochs(ctx)])


def load(ckpt: Path) -> tuple[Any, Any]:
    """The trained model (on the GPU when there is one) and the datamodule it was trained on."""
    import aegen

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return aegen.load(ckpt, map_location=device), aegen.load_datamodule(ckpt)


def labelled(dm: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = dm.tensors(split)
    return images, dm.class_labels(labels)


def cached(path: Path, make) -> dict[str, Any]:
    """``make()``, stored as JSON at ``path`` and read back on a rerun."""
    if path.exists():
        return json.loads(path.read_text())
    result = make()
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def head_scores(ckpt: Path) -> dict[str, Any]:
    """The model's own cluster head on the test split (``aegen.metrics.clustering.clustering_metrics``):
    Hungarian, majority and AAE-rule errors, NMI, ARI; a latentgan adds every restart's I(X; c) and error."""

    def make() -> dict[str, Any]:
        from aegen.metrics.clustering import clustering_metrics

        model, dm = load(ckpt)
        out = clustering_metrics(model, labelled(dm, "test"), labelled(dm, "val"))
        if getattr(model, "restarts", 1) > 1:
            out["restarts"] = restart_report(model, dm)
        return out

    return cached(ckpt.with_suffix(".cluster.json"), make)


def restart_report(model: Any, dm: Any) -> list[dict[str, Any]]:
    """Every restart of a latentgan: I(X; c) of its Q on the training codes (the label-free criterion
    that picks ``gans.kept``) and its test Hungarian error (which the criterion never sees)."""
    from aegen.metrics.clustering import cluster_errors

    (train_x, _), (test_x, test_y) = labelled(dm, "train"), labelled(dm, "test")
    report = []
    for i, (train_p, test_p) in enumerate(zip(model.restart_probs(train_x), model.restart_probs(test_x))):
        mean = train_p.mean(0)
        information = -(mean * mean.log()).sum() + (train_p * train_p.clamp_min(1e-12).log()).sum(1).mean()
        error = cluster_errors(test_p.argmax(1).cpu(), test_y)["cluster_error_hungarian"]
        report.append({"restart": i, "kept": i == int(model.gans.kept), "information": float(information),
                       "error": error})
    return report


def kmeans_pixels(ckpt: Path, seed: int, limit: int = 20_000) -> dict[str, float]:
    """The floor on the data ``ckpt`` was trained on: k-means (one cluster per class, ``seed``) fitted on
    (at most ``limit``) training pixels, assigning the test pixels."""
    import aegen
    from aegen.metrics.clustering import cluster_errors, fit_kmeans, kmeans_confidence

    dm = aegen.load_datamodule(ckpt)
    (train_x, _), (test_x, test_y), (val_x, val_y) = (labelled(dm, s) for s in ("train", "test", "val"))
    if len(train_x) > limit:
        train_x = train_x[torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))[:limit]]
    kmeans = fit_kmeans(train_x.flatten(1), dm.num_classes, seed)
    clusters = torch.from_numpy(kmeans.predict(test_x.flatten(1).double().numpy())).long()
    return cluster_errors(clusters, test_y, None, val_y, kmeans_confidence(kmeans, val_x.flatten(1)))


def restart_note(runs: list[dict[str, Any]]) -> list[str]:
    """One line on latentgan's restarts: the kept one's error against the mean and best restart's."""
    reports = [r["restarts"] for r in runs if "restarts" in r]
    if not reports:
        return []
    rho = [spearmanr([x["information"] for x in r], [x["error"] for x in r]).statistic for r in reports]
    kept = [next(x["error"] for x in r if x["kept"]) for r in reports]
    return [f"latentgan's {len(reports[0])} restarts: kept restart {100 * np.mean(kept):.2f} % Hungarian error, mean "
            f"restart {100 * np.mean([x['error'] for r in reports for x in r]):.2f} %, best restart "
            f"{100 * np.mean([min(x['error'] for x in r) for r in reports]):.2f} %; Spearman(I(X; c), error) within "
            f"a seed {np.nanmean(rho):.2f}"]


def percent(runs: list[dict[str, Any]], key: str) -> str:
    return ours([100 * r[key] for r in runs], ".2f")


def table1_rows(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, str]]:
    """One row per method: the paper's error beside ours under each mapping rule, NMI and the fit time."""
    return [{"method": name, "paper error %": PAPER_ERROR[name],
             "Hungarian error % (ours)": percent(r, "cluster_error_hungarian"),
             "majority %": percent(r, "cluster_error_majority"), "AAE rule %": percent(r, "cluster_error_aae"),
             "NMI": ours([x["nmi"] for x in r], ".3f"),
             "fit s/run": f"{np.mean([x['fit_s'] for x in r]):.0f}" if "fit_s" in r[0] else "-"}
            for name, r in runs.items()]


@claim("latentgan-table1", "LatentGAN's cluster head classifies digits better than InfoGAN's, the clustering "
       "AAE's and k-means on pixels (test error)",
       "LatentGAN, Kalwar et al., Table 1: MNIST unsupervised classification test error, LatentGAN 2.38 ± 0.38 %, "
       "InfoGAN 5 ± 0.01 %, AAE 4.10 ± 1.13 % (K = 30 in the AAE paper)", needs=needs)
def table1(ctx: Context) -> Report:
    """latentgan, infogan and aae_cluster as ``aegen fit`` trains them, each clustering the test split
    with its own head; k-means on the raw test pixels (fitted on the training pixels) is the floor."""
    runs: dict[str, list[dict[str, Any]]] = {"kmeans_pixels": [], **{m: [] for m in MODELS}}
    for seed in ctx.seeds:
        for model in MODELS:
            ckpt, seconds = fit(ctx, model, seed)
            runs[model].append(head_scores(ckpt) | {"fit_s": seconds})
        ckpt = fit(ctx, "latentgan", seed)[0]
        runs["kmeans_pixels"].append(cached(ckpt.with_suffix(".kmeans.json"), lambda: kmeans_pixels(ckpt, seed)))
    rows = table1_rows(runs)

    def errors(name: str, key: str = "cluster_error_hungarian") -> list[float]:
        return [100 * r[key] for r in runs[name]]

    aae_key = ctx.pick("cluster_error_hungarian", "cluster_error_aae")  # the AAE paper's rule for its K = 30
    comparisons = [Comparison("latentgan's test error is below k-means on the raw pixels (Hungarian, %)",
                              errors("latentgan"), errors("kmeans_pixels"), lower_is_better=True),
                   Comparison("latentgan's test error is below infogan's (Hungarian, %)",
                              errors("latentgan"), errors("infogan"), lower_is_better=True),
                   Comparison(f"latentgan's test error is below aae_cluster's (latentgan Hungarian; aae_cluster "
                              f"{ctx.pick('Hungarian', 'AAE rule, K = 30')}, %)",
                              errors("latentgan"), errors("aae_cluster", aae_key), lower_is_better=True)]
    setting = ctx.pick(
        f"embedded digits (test split 180 images), each model's `aegen fit --model NAME` defaults (validation on), "
        f"{epochs(ctx)} epochs; its own cluster head on the test split; k-means: 10 clusters, 10 inits, on pixels",
        f"MNIST 32 px, latentgan --preset paper (Table 2), infogan and aae_cluster (K = 30) from "
        f"experiments/{CONFIGS['infogan']} and {CONFIGS['aae_cluster']}, {epochs(ctx)} epochs")
    notes = ["errors map clusters to labels: Hungarian one-to-one, majority many-to-one, AAE rule: each cluster takes "
             "the label of its most confident validation image; the paper does not state its rule",
             "fit s/run: the whole `aegen fit` process, start-up and validation included",
             *restart_note(runs["latentgan"])]
    return Report("unsupervised classification of digits: test error of each model's own cluster head", setting, rows,
                  comparisons, notes, data={"runs": runs})


def relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def purity(classes: torch.Tensor, num_classes: int) -> float:
    """Mean over groups (rows of ``classes``) of the share of the group in its most frequent class."""
    counts = torch.nn.functional.one_hot(classes, num_classes).sum(1)
    return float((counts.max(1).values / classes.shape[1]).mean())


@torch.no_grad()
def category_scores(ckpt: Path, seed: int, per_category: int = PER_CATEGORY) -> dict[str, Any]:
    """The judge's classes of ``per_category`` samples of each category (the model's ``sample(category=k)``)
    and of as many unconditional samples in arbitrary groups of that size; writes the traversal sheets."""
    from aegen.commands import sheet_path
    from aegen.metrics.judge import get_judge
    from aegen.viz import save_sheet

    model, dm = load(ckpt)
    judge, k, classes = get_judge(dm), model.num_categories, dm.num_classes
    generator = torch.Generator(device=model.device).manual_seed(seed)
    conditional = torch.stack([judge.predict(model.sample(per_category, generator, category=c).cpu())
                               for c in range(k)])
    unconditional = judge.predict(model.sample(k * per_category, generator).cpu()).view(k, per_category)
    sheets = []
    for code in range(model.num_continuous or 1):  # Figs. 3 and 4: one sheet per continuous code
        sheet = model.traversal(steps=10, code=code, generator=torch.Generator(device=model.device).manual_seed(seed))
        path = sheet_path(ckpt, None, "traverse")
        sheets.append(str(save_sheet(sheet.cpu(), path.with_name(f"{path.stem}_code{code}.png"))))
    majority = conditional.mode(1).values
    return {"purity": purity(conditional, classes), "baseline": purity(unconditional, classes),
            "max_share": float(torch.bincount(unconditional.flatten(), minlength=classes).max() / unconditional.numel()),
            "classes_covered": len(set(majority.tolist())), "majority_class": majority.tolist(),
            "judge_test_acc": judge.meta.get("test_accuracy"), "sheets": sheets}


@claim("latentgan-traversals", "Each LatentGAN category generates one digit class (judge purity of per-category "
       "samples against arbitrary groups of unconditional samples)",
       "LatentGAN, Kalwar et al., Figs. 2-4: varying Cat(K) changes the digit class, U1 the thickness, U2 the "
       "rotation (shown in pictures; no number)", needs=needs)
def traversals(ctx: Context) -> Report:
    """latentgan as table1 trains it; the digits judge classifies samples of each category (purity,
    classes covered) and as many unconditional samples grouped arbitrarily (the baseline)."""
    runs = []
    for seed in ctx.seeds:
        ckpt, seconds = fit(ctx, "latentgan", seed)
        runs.append(cached(ckpt.with_suffix(f".categories{PER_CATEGORY}.json"), lambda: category_scores(ckpt, seed))
                    | {"fit_s": seconds})

    def per_seed(key: str, spec: str = ".3f") -> str:
        return ours([r[key] for r in runs], spec)

    rows = [{"quantity": "purity of each category's samples (judge, mean over categories)", "paper": FIG2,
             "ours": per_seed("purity")},
            {"quantity": "classes covered by the categories' majority classes", "paper": FIG2,
             "ours": per_seed("classes_covered", ".1f")},
            {"quantity": "baseline: purity of unconditional samples in groups of the same size", "paper": "-",
             "ours": per_seed("baseline")},
            {"quantity": "largest class share of the unconditional samples", "paper": "-", "ours": per_seed("max_share")}]
    comparison = Comparison("samples of one category are purer than arbitrary groups of unconditional samples "
                            "(judge purity, higher is better)", [r["purity"] for r in runs], [r["baseline"] for r in runs],
                            lower_is_better=False)
    setting = ctx.pick(f"embedded digits, latentgan's `aegen fit` defaults, {epochs(ctx)} epochs (the latentgan-table1 "
                       f"fits); {PER_CATEGORY} samples per category", f"MNIST 32 px, latentgan --preset paper, "
                       f"{epochs(ctx)} epochs (the latentgan-table1 fits); {PER_CATEGORY} samples per category")
    notes = [f"judge: the dataset's small CNN classifier (`aegen.metrics.judge`), test accuracy "
             f"{runs[0]['judge_test_acc']:.3f}",
             "traversal sheets (rows: categories; columns: one continuous code from -1.5 to 1.5, Figs. 3-4): "
             + ", ".join(relative(Path(sheet), ctx.out) for r in runs for sheet in r["sheets"])]
    return Report("one category, one digit class: the judge's purity of per-category samples", setting, rows,
                  [comparison], notes, data={"runs": runs})
