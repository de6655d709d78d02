"""The metric groups of ``aegen evaluate`` (see ``aegen.evaluate`` for what each reports).

A group is a function of an ``Evaluation`` context registered under a name with ``metric_group``;
it says whether it applies (a dataset without classes has no judge, one without factors no
disentanglement) and returns flat ``name -> number`` entries; a group may also draw a figure into
``Evaluation.out`` and name it in ``Evaluation.figures``, which ``report.md`` links.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aegen.errors import AegenError
from aegen.metrics import clustering, fidelity
from aegen.metrics.disentanglement import disentanglement_metrics
from aegen.metrics.judge import FEATURE_EXTRACTOR as JUDGE, JudgeNet, get_judge, judge_path
from aegen.metrics.reconstruction import interpolation_midpoints, reconstruction_metrics
from aegen.metrics.splits import labelled_batches

INCEPTION_GROUPS = ("fid", "is", "kid", "pr")


@dataclass
class Evaluation:
    """What a metric group sees: the model, its data, the settings, and values shared between groups."""

    model: Any
    datamodule: Any
    num_samples: int = 10_000
    interp_samples: int = 10_000
    seed: int = 0
    num_reference: int | None = None
    disentangle_points: int = 10_000
    requested: tuple[str, ...] = ()
    inception_weights: Path | None = None
    batch_size: int = 256
    tsne_points: int = 500
    out: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: figures the groups drew into ``out``: title -> file name, linked from ``report.md``
    figures: dict[str, str] = field(default_factory=dict)
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
    """A named group of metrics: ``run`` returns its keys, ``skip_reason`` says why it does not apply,
    ``off_by_default`` why it is left out of the default set (it still runs when named)."""

    name: str
    run: Callable[[Evaluation], dict[str, float]]
    skip_reason: Callable[[Evaluation], str | None] = lambda ev: None
    off_by_default: Callable[[Evaluation], str | None] = lambda ev: None
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


def _no_encoder(ev: Evaluation) -> str | None:
    """Why a group that encodes real images does not apply: the model has no encoder."""
    if getattr(ev.model, "has_encoder", True):
        return None
    return f"{ev.model.registry_name} has no encoder: it cannot encode or reconstruct test images"


def _either(*reasons: Callable[[Evaluation], str | None]) -> Callable[[Evaluation], str | None]:
    """The first of ``reasons`` that says a group does not apply."""
    return lambda ev: next((r for reason in reasons if (r := reason(ev))), None)


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


@metric_group("cluster", skip_reason=_either(_no_encoder, _no_classes))
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


@metric_group("disentangle", skip_reason=_either(_no_encoder, _no_factors), stochastic=False)
def disentangle_group(ev: Evaluation) -> dict[str, float]:
    n = ev.disentangle_points
    train, test = ev.encoded("train", limit=n), ev.encoded("test", limit=n // 2)
    if train.labels.dim() != 2:
        raise AegenError(f"dataset {ev.datamodule.registry_name!r} names factors but its labels are not (N, factors)")
    return disentanglement_metrics(train.codes, train.labels, test.codes, test.labels, n, n // 2, seed=ev.seed)


@metric_group("edit", skip_reason=_either(_no_encoder, _no_factors))
def edit_group(ev: Evaluation) -> dict[str, float]:
    """Controllable synthesis (``aegen.metrics.controllability``): ``edit_acc_target``, ``edit_acc_keep``, ``edit_acc``."""
    from aegen.metrics.controllability import edit_scores

    return edit_scores(ev.model, ev.datamodule, seed=ev.seed)


def judge_reads(ev: Evaluation) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
    """How a judge reads images against their labels, for ``recon_judge_acc``: the class judge on
    class labels (-1: unlabelled), every factor judge on factor labels; None without labels."""
    if ev.datamodule.factor_names:
        from aegen.metrics.controllability import factor_judges

        judges = list(factor_judges(ev.datamodule).values())

        def factors_read(images, factors):
            read = torch.stack([judge.predict(images) for judge in judges], dim=1)
            return (read == factors).all(1), torch.ones(len(images), dtype=torch.bool)

        return factors_read
    if not ev.has_classes():
        return None
    judge = ev.judge()

    def class_read(images, labels):
        classes = ev.class_labels(labels)
        return judge.predict(images) == classes, classes >= 0

    return class_read


@metric_group("recon", skip_reason=_no_encoder, stochastic=False)
def recon_group(ev: Evaluation) -> dict[str, float]:
    """``recon_mse``, ``psnr``, ``ssim`` and, on labelled data, ``recon_judge_acc``: the share of test
    reconstructions the judge reads as their class (factor data: every factor read right)."""
    return reconstruction_metrics(ev.model, labelled_batches(ev.datamodule, "test", ev.batch_size), judge_reads(ev))


@metric_group("interp", skip_reason=_no_classes)
def interp_group(ev: Evaluation) -> dict[str, float]:
    ev.judge()
    test = fidelity.SplitImages(ev.datamodule, "test")
    if getattr(ev.model, "has_encoder", True):
        images = torch.cat([x for x, _ in labelled_batches(ev.datamodule, "test", ev.batch_size)])
        midpoints = interpolation_midpoints(ev.model, images, ev.interp_samples, ev.seed)
    else:
        ev.info["interp_between"] = "generator inputs (the model has no encoder)"
        midpoints = generator_midpoints(ev.model, ev.interp_samples, ev.seed)
    out = fidelity.fidelity(midpoints, test, ("fid",), JUDGE, judge_path(ev.datamodule), ev.device,
                            seed=ev.seed, suffix="_judge")
    return {"interp_fid_judge": out["fid_judge"]}


def generator_midpoints(model, num: int, seed: int = 0, chunk_size: int = 500) -> fidelity.ChunkedImages:
    """``num`` decoded midpoints ``decode((z_a + z_b) / 2)`` of pairs of generated codes, for models without an
    encoder; chunk i draws its pairs from seed ``(seed, i)``."""

    @torch.no_grad()
    def make_chunk(index: int, size: int) -> torch.Tensor:
        generator = torch.Generator(device=model.device).manual_seed(seed * 1_000_003 + index)
        codes = model.generated_codes(2 * size, generator)
        return model.decode((codes[:size] + codes[size:]) / 2)

    return fidelity.ChunkedImages(make_chunk, num, chunk_size)


def _no_generated_codes(ev: Evaluation) -> str | None:
    if ev.out is None:
        return "no output folder to draw the figure in"
    from aegen.report import has_generated_codes

    if not has_generated_codes(ev.model):
        return f"{type(ev.model).__name__} has no generated codes (neither a prior nor a sampler)"
    return None


def _codes_from_fitted_gaussian(ev: Evaluation) -> str | None:
    from aegen.samplers.gaussian import GaussianSampler

    if isinstance(ev.model.sampler, GaussianSampler):
        return "the model samples from a Gaussian fitted to its codes: --metrics codes draws it anyway"
    return None


@metric_group("codes", skip_reason=_either(_no_encoder, _no_generated_codes),
              off_by_default=_codes_from_fitted_gaussian, stochastic=False)
def codes_group(ev: Evaluation) -> dict[str, float]:
    """``codes_tsne.png``: a t-SNE of ``tsne_points`` generated codes (the codes ``sample`` decodes) and as
    many encoder codes of test images (fewer when the test split is smaller); no numbers."""
    from aegen.report import codes_tsne

    real = ev.encoded("test", limit=ev.tsne_points).codes
    generator = torch.Generator(device=ev.device).manual_seed(ev.seed)
    with torch.no_grad():
        fake = ev.model.generated_codes(len(real), generator).float().cpu()
    path = codes_tsne(fake, real, ev.out / "codes_tsne.png", ev.seed)
    ev.figures["generated codes against encoder codes of test images, t-SNE"] = path.name
    return {}


def parse_groups(metrics: str | list[str] | None) -> tuple[str, ...] | None:
    """A comma-separated list of group names (None: the default set); unknown names are an AegenError."""
    if metrics is None:
        return None
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise AegenError(f"unknown metric group {', '.join(unknown) or '(none)'}; choose from: {', '.join(GROUPS)}")
    return tuple(dict.fromkeys(names))

