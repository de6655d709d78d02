"""``aegen evaluate``: a checkpoint -> ``metrics.json`` + ``report.md`` + image sheets, reproducibly.

Metrics come in named groups (``GROUPS``), each a function of an ``Evaluation`` context that
says whether it applies (a dataset without classes has no judge, one without factors no
disentanglement) and returns flat ``name -> number`` entries:

=============  ==========================================================================
group          keys
=============  ==========================================================================
fid, is, kid,  ``fid``, ``is_mean``/``is_std``, ``kid_mean``/``kid_std``, ``precision``/
pr             ``recall``/``f_score``: Inception features through torch-fidelity, samples vs
               the training split; need Inception weights, so never in the default set
judge          ``fid_judge``, ``kid_judge_mean``/``_std``, ``is_judge_mean``/``_std`` (judge
               features through torch-fidelity, samples vs the training split),
               ``cond_acc_judge`` (conditional models), ``judge_test_acc``
cluster        ``cluster_error_hungarian``/``_majority``/``_aae``, ``nmi``, ``ari``,
               ``probe_acc`` on the test split (``aegen.metrics.clustering``)
disentangle    ``mig``, ``dci_disentanglement``/``_completeness``/``_informativeness``,
               ``factorvae_score``, ``sap`` (datasets with factors)
edit           ``edit_acc_target``, ``edit_acc_keep``, ``edit_acc`` (+ per factor), ``recon_acc_keep``:
               per-factor judges read edited test images (datasets with factors;
               ``aegen.metrics.controllability``)
recon          ``recon_mse``, ``psnr``, ``ssim`` on the test split
interp         ``interp_fid_judge``: judge FID of decoded midpoints of random test pairs vs
               the test images
=============  ==========================================================================

The default set is every group that applies and needs no external weights. ``seeds`` > 1
repeats the sampling-based groups with seeds ``seed .. seed + seeds - 1`` and reports the mean
under each key and the standard deviation over seeds under ``<key>_seed_std``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aegen import __version__
from aegen.checkpoint import load, load_datamodule
from aegen.errors import AegenError
from aegen.latent import encode_all
from aegen.metrics import clustering, fidelity
from aegen.metrics.disentanglement import disentanglement_metrics
from aegen.metrics.judge import FEATURE_EXTRACTOR as JUDGE, JudgeNet, get_judge, judge_path
from aegen.metrics.reconstruction import interpolation_midpoints, reconstruction_metrics
from aegen.metrics.splits import labelled_batches
from aegen.registry import get_data
from aegen.viz import interpolation_sheet, recon_sheet, save_sheet

INCEPTION_GROUPS = ("fid", "is", "kid", "pr")


@dataclass
class Evaluation:
    """What a metric group sees: the model, its data, the settings, and values shared between groups."""

    model: Any
    datamodule: Any
    num_samples: int = 50_000
    interp_samples: int = 10_000
    seed: int = 0
    num_reference: int | None = None
    disentangle_points: int = 10_000
    requested: tuple[str, ...] = ()
    inception_weights: Path | None = None
    batch_size: int = 256
    info: dict[str, Any] = field(default_factory=dict)
    _cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # -- shared values -----------------------------------------------------------
    def class_labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        return self.datamodule.class_labels(labels)

    def has_classes(self) -> bool:
        x, y = self.datamodule.tensors("test", 2)
        return bool(self.datamodule.num_classes) and self.class_labels(y) is not None

    def judge(self) -> JudgeNet:
        def make() -> JudgeNet:
            net = get_judge(self.datamodule)
            self.info.update(judge_path=str(judge_path(self.datamodule)), judge_test_acc=net.meta["test_accuracy"])
            return net

        return self.cached("judge", make)

    def encoded(self, split: str, limit: int | None = None, pixels: bool = False) -> clustering.CodeSplit:
        """Codes, cluster-head probabilities and class labels of (a seeded random subset of) a split;
        ``pixels``: the raw pixels as codes, without a cluster head."""

        def make() -> clustering.CodeSplit:
            generator = torch.Generator().manual_seed(1234) if limit is not None else None
            model = clustering.Pixels() if pixels else self.model
            parts = [clustering.encode_split(model, x, y, self.batch_size)
                     for x, y in labelled_batches(self.datamodule, split, self.batch_size, limit, generator)]
            probs = None if parts[0].probs is None else torch.cat([p.probs for p in parts])
            return clustering.CodeSplit(torch.cat([p.codes for p in parts]), probs, torch.cat([p.labels for p in parts]))

        return self.cached(("encoded", split, limit, pixels), make)

    def inception(self) -> dict[str, float]:
        """One torch-fidelity call for every requested Inception group, per seed."""

        def make() -> dict[str, float]:
            wanted = tuple(g for g in INCEPTION_GROUPS if g in self.requested)
            return fidelity.fidelity(
                fidelity.model_samples(self.model, self.num_samples, self.seed, rgb=True),
                fidelity.SplitImages(self.datamodule, "train", self.num_reference, rgb=True),
                wanted, fidelity.INCEPTION, self.inception_weights, self.device, seed=self.seed)

        return self.cached(("inception", self.seed), make)


@dataclass(frozen=True)
class MetricGroup:
    """A named group of metrics: ``run`` returns its keys, ``skip_reason`` says why it does not apply."""

    name: str
    run: Callable[[Evaluation], dict[str, float]]
    skip_reason: Callable[[Evaluation], str | None] = lambda ev: None
    needs_weights: bool = False
    stochastic: bool = True


GROUPS: dict[str, MetricGroup] = {}


def metric_group(name: str, **options: Any) -> Callable[[Callable], Callable]:
    """Decorator: register ``run(ev) -> dict`` as metric group ``name`` (see ``MetricGroup``)."""

    def decorator(run: Callable[[Evaluation], dict[str, float]]) -> Callable:
        GROUPS[name] = MetricGroup(name, run, **options)
        return run

    return decorator


def _no_classes(ev: Evaluation) -> str | None:
    return None if ev.has_classes() else f"dataset {ev.datamodule.registry_name!r} has no class labels"


def _inception_group(name: str, keys: tuple[str, ...]) -> None:
    metric_group(name, needs_weights=True)(lambda ev: {k: v for k, v in ev.inception().items() if k in keys})


_inception_group("fid", ("fid",))
_inception_group("is", ("is_mean", "is_std"))
_inception_group("kid", ("kid_mean", "kid_std"))
_inception_group("pr", ("precision", "recall", "f_score"))


@metric_group("judge", skip_reason=_no_classes)
def judge_group(ev: Evaluation) -> dict[str, float]:
    ev.judge()
    out = fidelity.fidelity(
        fidelity.model_samples(ev.model, ev.num_samples, ev.seed),
        fidelity.SplitImages(ev.datamodule, "train", ev.num_reference),
        ("fid", "kid", "is"), JUDGE, judge_path(ev.datamodule), ev.device, seed=ev.seed, suffix="_judge")
    accuracy = conditional_accuracy(ev.model, ev.judge(), ev.datamodule.num_classes, ev.num_samples, ev.seed)
    if accuracy is None:
        ev.info.setdefault("notes", {})["cond_acc_judge"] = "the model has no class-conditional sampler"
    else:
        out["cond_acc_judge"] = accuracy
    return out


@torch.no_grad()
def conditional_accuracy(model, judge: JudgeNet, num_classes: int, num: int, seed: int = 0,
                         chunk_size: int = 500) -> float | None:
    """Share of samples generated for class s that the judge classifies as s (classes cycle 0..K-1).

    None when ``model.sample_conditional`` is not supported.
    """
    right = 0
    for start in range(0, num, chunk_size):
        classes = torch.arange(start, min(num, start + chunk_size)) % num_classes
        generator = torch.Generator(device=model.device).manual_seed(seed * 1_000_003 + start)
        images = model.sample_conditional(len(classes), classes.to(model.device), generator=generator)
        if images is None:
            return None
        right += (judge.predict(images.cpu()) == classes).sum().item()
    return right / num


@metric_group("cluster", skip_reason=_no_classes)
def cluster_group(ev: Evaluation) -> dict[str, float]:
    def classes(split: clustering.CodeSplit) -> clustering.CodeSplit:
        return split._replace(labels=ev.class_labels(split.labels))

    test, val = classes(ev.encoded("test")), classes(ev.encoded("val"))
    train = classes(ev.encoded("train", limit=20_000))
    out = clustering.clustering_scores(test, val, train, ev.datamodule.num_classes, ev.seed)
    ev.info.update(cluster_source=out.pop("cluster_source"), num_clusters=out.pop("num_clusters"))
    # the floor, on the same images: k-means (as many clusters as classes) on the raw pixels
    pixels = [classes(ev.encoded(split, limit, pixels=True)) for split, limit in (("test", None), ("val", None),
                                                                                  ("train", 20_000))]
    floor = clustering.clustering_scores(*pixels, ev.datamodule.num_classes, ev.seed, probe=False)
    return {**out, **{f"kmeans_pixels_{k}": v for k, v in floor.items() if k not in ("cluster_source", "num_clusters")}}


def _no_factors(ev: Evaluation) -> str | None:
    dm = ev.datamodule
    if not dm.factor_names:
        return f"dataset {dm.registry_name!r} has no factor labels"
    return None


@metric_group("disentangle", skip_reason=_no_factors, stochastic=False)
def disentangle_group(ev: Evaluation) -> dict[str, float]:
    n = ev.disentangle_points
    train, test = ev.encoded("train", limit=n), ev.encoded("test", limit=n // 2)
    if train.labels.dim() != 2:
        raise AegenError(f"dataset {ev.datamodule.registry_name!r} names factors but its labels are not (N, factors)")
    return disentanglement_metrics(train.codes, train.labels, test.codes, test.labels, n, n // 2, seed=ev.seed)


@metric_group("edit", skip_reason=_no_factors)
def edit_group(ev: Evaluation) -> dict[str, float]:
    """Controllable synthesis (``aegen.metrics.controllability``): ``edit_acc_target``, ``edit_acc_keep``, ``edit_acc``."""
    from aegen.metrics.controllability import edit_scores

    return edit_scores(ev.model, ev.datamodule, seed=ev.seed)


@metric_group("recon", stochastic=False)
def recon_group(ev: Evaluation) -> dict[str, float]:
    return reconstruction_metrics(ev.model, labelled_batches(ev.datamodule, "test", ev.batch_size))


@metric_group("interp", skip_reason=_no_classes)
def interp_group(ev: Evaluation) -> dict[str, float]:
    ev.judge()
    test = fidelity.SplitImages(ev.datamodule, "test")
    images = torch.cat([x for x, _ in labelled_batches(ev.datamodule, "test", ev.batch_size)])
    midpoints = interpolation_midpoints(ev.model, images, ev.interp_samples, ev.seed)
    out = fidelity.fidelity(midpoints, test, ("fid",), JUDGE, judge_path(ev.datamodule), ev.device,
                            seed=ev.seed, suffix="_judge")
    return {"interp_fid_judge": out["fid_judge"]}


def parse_groups(metrics: str | list[str] | None) -> tuple[str, ...] | None:
    """A comma-separated list of group names (None: the default set); unknown names are an AegenError."""
    if metrics is None:
        return None
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise AegenError(f"unknown metric group {', '.join(unknown) or '(none)'}; choose from: {', '.join(GROUPS)}")
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------------------- the command
def evaluate(
    checkpoint: str | Path,
    out: str | Path,
    metrics: str | list[str] | None = None,
    num_samples: int = 50_000,
    seeds: int = 1,
    seed: int = 0,
    inception_weights: str | Path | None = None,
    data: str | None = None,
    data_options: dict[str, Any] | None = None,
    interp_samples: int = 10_000,
    num_reference: int | None = None,
    disentangle_points: int = 10_000,
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint; write ``out/metrics.json``, ``out/report.md`` and image sheets.

    Args:
        checkpoint: an aegen checkpoint.
        out: output directory.
        metrics: group names (comma-separated or a list); None: every group that applies and
            needs no external weights.
        num_samples: generated images for the sample-quality groups (standard protocol: 50k).
        seeds: repeat the sampling-based groups with this many seeds (mean and std over seeds).
        seed: the first seed.
        inception_weights: torch-fidelity's Inception weights file (else $AEGEN_INCEPTION_WEIGHTS,
            else torch hub's cache); only the fid/is/kid/pr groups need it.
        data: evaluate on this dataset instead of the checkpoint's.
        data_options: datamodule settings replacing the checkpoint's (or the defaults of ``data``).
        interp_samples: decoded midpoints for ``interp_fid_judge``.
        num_reference: use only the first this many training images as the reference of the
            sample-quality groups (default: the whole training split, the standard protocol).
        disentangle_points: training points of the disentanglement metrics (test points: half);
            disentanglement_lib's default 10,000 (DCI's gradient-boosted trees dominate the time).
        device: "cuda" or "cpu" (default: CUDA when available).
    """
    if num_samples < 2 or interp_samples < 2 or seeds < 1:
        raise AegenError("--num-samples and --interp-samples must be at least 2 and --seeds at least 1")
    requested = parse_groups(metrics)
    weights = None
    if requested is not None and set(requested) & set(INCEPTION_GROUPS):
        weights = fidelity.inception_weights(inception_weights)  # fail before any work when absent
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load(checkpoint, map_location=device)
    options = {"device_cache": False, **(data_options or {})}
    datamodule = get_data(data)(**options) if data else load_datamodule(checkpoint, **options)
    datamodule.setup("test")
    if tuple(datamodule.img_shape) != tuple(model.img_shape):
        raise AegenError(f"the model takes {tuple(model.img_shape)} images but the data has {datamodule.img_shape}; "
                         "pass --data.image_size (or another dataset) to match")
    if num_reference is not None and num_reference < 2:
        raise AegenError("--num-reference must be at least 2")
    if disentangle_points < 10:
        raise AegenError("--disentangle-points must be at least 10")
    ev = Evaluation(model, datamodule, num_samples, interp_samples, seed, num_reference, disentangle_points,
                    inception_weights=weights)
    names = requested or tuple(n for n, g in GROUPS.items() if not g.needs_weights)
    ev.requested = names
    skipped = {n: r for n in names if (r := GROUPS[n].skip_reason(ev))}
    if requested is None:
        skipped.update({n: "needs Inception weights: --metrics fid,is,kid,pr --inception-weights PATH"
                        for n, g in GROUPS.items() if g.needs_weights})
    runs = [n for n in names if n not in skipped]

    per_seed: list[dict[str, float]] = []
    values: dict[str, float] = {}
    for name in runs:
        if not GROUPS[name].stochastic:
            values.update(GROUPS[name].run(ev))
    for s in range(seeds):
        ev.seed = seed + s
        row: dict[str, float] = {}
        for name in runs:
            if GROUPS[name].stochastic:
                row.update(GROUPS[name].run(ev))
        per_seed.append(row)
    for key in per_seed[0]:
        series = np.array([row[key] for row in per_seed], dtype=np.float64)
        values[key] = float(series.mean())
        if seeds > 1:
            values[f"{key}_seed_std"] = float(series.std(ddof=1))

    extractors = [name for name, used in ((fidelity.INCEPTION, weights is not None and set(runs) & set(INCEPTION_GROUPS)),
                                          (JUDGE, "judge_path" in ev.info)) if used]
    result: dict[str, Any] = {
        **values,
        "num_samples": num_samples,
        "reference_split": "train" if num_reference is None else f"train[:{num_reference}]",
        "split": "test",
        "interp_num_samples": interp_samples if "interp" in runs else None,
        "interp_reference_split": "test" if "interp" in runs else None,
        "feature_extractor": ", ".join(extractors) or None,
        **{k: v for k, v in ev.info.items() if k != "notes"},
        "inception_weights": None if weights is None else str(weights),
        "seed": seed,
        "seeds": seeds,
        "groups": runs,
        "skipped": {**skipped, **ev.info.get("notes", {})},
        "model": model.registry_name,
        "data": datamodule.registry_name,
        "checkpoint": str(Path(checkpoint).resolve()),
        "aegen_version": __version__,
    }
    result = {k: v for k, v in result.items() if v is not None}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sheets = write_sheets(model, datamodule, out, seed)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(report(result, sheets))
    return result


# ---------------------------------------------------------------------------- report
@torch.no_grad()
def write_sheets(model, datamodule, out: Path, seed: int = 0) -> dict[str, str]:
    """Samples, reconstructions, interpolations, per-dimension traversals and a 2-D map of test codes."""
    x, y = datamodule.tensors("test", 512)
    x = x.to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    sheets = {
        "samples": save_sheet(model.sample(64, generator=generator), out / "samples.png"),
        "reconstructions": save_sheet(recon_sheet(model, x[:32]), out / "reconstructions.png"),
        "interpolations": save_sheet(interpolation_sheet(model, x[:16]), out / "interpolations.png"),
        "traversals (one code dimension per row)": save_sheet(model.traversal(x[:1], steps=10), out / "traversals.png"),
        "test codes, first two principal components": code_scatter(model, x, datamodule.class_labels(y), out / "codes_pca.png"),
    }
    return {title: path.name for title, path in sheets.items()}


@torch.no_grad()
def code_scatter(model, images: torch.Tensor, labels: torch.Tensor | None, path: Path) -> Path:
    """A PNG scatter plot of the codes' first two principal components, coloured by class label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    codes = encode_all(model, images, device="cpu").double().numpy()
    points = PCA(n_components=2).fit_transform(codes) if codes.shape[1] >= 2 else np.c_[codes, np.zeros(len(codes))]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    scatter = ax.scatter(points[:, 0], points[:, 1], s=6, c=None if labels is None else labels.numpy(), cmap="tab10")
    if labels is not None and len(labels.unique()) <= 20:
        ax.legend(*scatter.legend_elements(), title="class", fontsize=6, loc="best", markerscale=0.8)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"{len(codes)} test codes")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def report(result: dict[str, Any], sheets: dict[str, str]) -> str:
    """``report.md``: the metrics table, what they were measured on, skipped groups and image sheets."""
    numbers = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and k not in ("num_samples", "seed", "seeds", "interp_num_samples")}
    lines = [f"# Evaluation of `{result['model']}` on `{result['data']}`", "",
             f"Checkpoint: `{result['checkpoint']}` (aegen {result['aegen_version']}).", "",
             f"Sample-quality metrics use {result['num_samples']} generated images against the "
             f"`{result['reference_split']}` split; reconstruction and clustering use the `{result['split']}` split; "
             f"`interp_fid_judge` uses {result.get('interp_num_samples', '-')} midpoints against the test split. "
             f"Feature extractors: {result.get('feature_extractor', 'none')}. Seeds: {result['seeds']} from {result['seed']}.",
             "", "| metric | value |", "|---|---|"]
    lines += [f"| `{k}` | {_fmt(v)} |" for k, v in numbers.items()]
    if result.get("skipped"):
        lines += ["", "## Not measured", ""] + [f"- `{k}`: {v}" for k, v in result["skipped"].items()]
    lines += ["", "## Image sheets", ""] + [f"### {title}\n\n![{title}]({name})\n" for title, name in sheets.items()]
    return "\n".join(lines) + "\n"
