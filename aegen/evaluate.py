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
edit           ``edit_acc_target``, ``edit_acc_keep``, ``edit_acc`` (+ per factor), ``recon_acc_keep``
               (+ ``recon_acc/<factor>``), ``real_acc_keep``:
               per-factor judges read edited test images (datasets with factors;
               ``aegen.metrics.controllability``)
recon          ``recon_mse``, ``psnr``, ``ssim`` on the test split; ``recon_judge_acc`` on labelled data
interp         ``interp_fid_judge``: judge FID of decoded midpoints of random test pairs vs
               the test images
codes          no keys: ``codes_tsne.png``, a t-SNE of generated codes (the codes ``sample``
               decodes) against encoder codes of test images (Wang, Peng & Ko 2020, Figs. 11
               and 13); in the default set unless the model samples from a Gaussian fitted
               to its codes (plain autoencoders' default sampler)
=============  ==========================================================================

The default set is every group that applies and needs no external weights (``codes`` only as
said above). A model without an encoder (``has_encoder`` False: dcgan, lsgan, wgan_gp) skips the groups
that encode test images (recon, cluster, disentangle, edit, codes; ``skipped`` in metrics.json says why),
and its ``interp_fid_judge`` decodes midpoints of pairs of generator inputs (``interp_between`` says so). ``seeds`` > 1 repeats the sampling-based groups with seeds ``seed .. seed + seeds - 1``
and reports the mean under each key and the standard deviation over seeds under ``<key>_seed_std``.
Progress goes to stderr: a line as each group starts and ends (with its seconds), one per sampling
pass when ``seeds`` > 1, and one when a judge is trained (and where it is cached).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aegen import __version__
from aegen.argtypes import AtLeast2, AtLeast10, Count, OutputDir, Seed
from aegen.errors import AegenError

# the metric groups and the report import torch: loaded on first use (``aegen.evaluate.GROUPS``), so that
# `aegen --help` stays fast (no TYPE_CHECKING block either: jsonargparse runs those to resolve annotations)
_LAZY = {**dict.fromkeys(("GROUPS", "INCEPTION_GROUPS", "Evaluation", "MetricGroup", "conditional_accuracy",
                          "metric_group", "parse_groups"), "aegen.metric_groups"),
         **dict.fromkeys(("code_scatter", "codes_tsne", "report", "write_sheets"), "aegen.report")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aegen.evaluate' has no attribute {name!r}")


def out_folder(checkpoint: str | Path, out: str | Path | None) -> Path:
    """``out``, or by default the checkpoint's run's ``eval/`` (an exported model folder: its own ``eval/``), created."""
    if out is None:
        source = Path(checkpoint).resolve()
        out = source / "eval" if source.is_dir() else source.parent.parent / "eval"
    Path(out).mkdir(parents=True, exist_ok=True)
    return Path(out)


def evaluate(
    checkpoint: str | Path,
    out: OutputDir | None = None,
    metrics: str | list[str] | None = None,
    num_samples: AtLeast2 | None = None,
    seeds: Count = 1,
    seed: Seed = 0,
    inception_weights: str | Path | None = None,
    download_inception: bool = False,
    data: str | None = None,
    data_options: dict[str, Any] | None = None,
    interp_samples: AtLeast2 | None = None,
    num_reference: AtLeast2 | None = None,
    disentangle_points: AtLeast10 = 10_000,
    tsne_points: AtLeast10 = 500,
    device: str | None = None,
) -> dict[str, Any]:
    """Metrics of a checkpoint -> DIR/metrics.json, DIR/report.md and image sheets (--data NAME and
    --data.x VALUE evaluate on another dataset or with other data settings); prints where they went and
    the headline numbers (--json: the whole result).

    Args:
        checkpoint: an aegen checkpoint.
        out: output directory (default: the checkpoint's run folder's ``eval``).
        metrics: group names, comma-separated (or a list): fid, is, kid, pr (Inception), judge,
            cluster, disentangle, edit, recon, interp, codes; default: every group that applies and
            needs no external weights (codes: unless the model samples a Gaussian fitted to its codes).
        num_samples: generated images for the sample-quality groups (default: 10,000, or the size of
            the reference split when it is smaller; the number used is ``num_samples`` in metrics.json;
            Inception FID's standard protocol: 50,000).
        seeds: repeat the sampling-based groups with this many seeds (mean and std over seeds).
        seed: the first seed.
        inception_weights: torch-fidelity's Inception weights file (else $AEGEN_INCEPTION_WEIGHTS,
            else torch hub's checkpoint cache); only the fid/is/kid/pr groups need it.
        download_inception: fetch torch-fidelity's Inception weights into torch hub's checkpoint cache
            when no file is given and the cache lacks them ($AEGEN_DOWNLOAD_MIRROR: from
            <mirror>/inception/); off by default: nothing is downloaded otherwise.
        data: evaluate on this dataset instead of the checkpoint's.
        data_options: datamodule settings replacing the checkpoint's (or the defaults of ``data``);
            on the command line, ``--data.x VALUE``.
        interp_samples: decoded midpoints of random test pairs for ``interp_fid_judge`` (default 10,000;
            recorded as ``interp_num_samples``).
        num_reference: use only the first this many training images as the reference of the
            sample-quality groups (default: the whole training split, the standard protocol).
        disentangle_points: training points of the disentanglement metrics (test points: half);
            disentanglement_lib's default 10,000 (DCI's gradient-boosted trees dominate the time).
        tsne_points: generated codes, and encoder codes of test images, in the t-SNE of ``codes``.
        device: cuda or cpu (default: cuda when available).
    """
    from aegen.metric_groups import Evaluation, parse_groups

    _check_numbers(num_samples=num_samples, seeds=seeds, interp_samples=interp_samples, num_reference=num_reference,
                   disentangle_points=disentangle_points, tsne_points=tsne_points)
    requested = parse_groups(metrics)
    weights = _inception_weights(requested, inception_weights, download_inception)  # fail before any work
    model, datamodule = _model_and_data(checkpoint, data, data_options, device)
    out = out_folder(checkpoint, out)
    num_samples, interp_samples = _sizes(datamodule, num_samples, interp_samples, num_reference)
    ev = Evaluation(model, datamodule, num_samples, interp_samples, seed, num_reference, disentangle_points,
                    inception_weights=weights, tsne_points=tsne_points, out=out)
    runs, skipped = _plan(ev, requested)
    result = _result(ev, _measure(ev, runs, seed, seeds), runs, skipped, checkpoint, seed, seeds)
    _write(ev, result, seed)
    return result


def _write(ev: Evaluation, result: dict[str, Any], seed: int) -> None:
    """``metrics.json``, the image sheets and ``report.md`` into ``ev.out``."""
    from aegen.report import report, write_sheets

    with _step("image sheets"):
        sheets = write_sheets(ev.model, ev.datamodule, ev.out, seed)
    (ev.out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    (ev.out / "report.md").write_text(report(result, {**sheets, **ev.figures}))


#: the default of ``num_samples`` (when the training split is at least that large) and of ``interp_samples``
DEFAULT_SAMPLES = 10_000


def _sizes(datamodule, num_samples: int | None, interp_samples: int | None,
           num_reference: int | None) -> tuple[int, int]:
    """``num_samples`` and ``interp_samples``; their defaults (None): ``DEFAULT_SAMPLES`` samples, or fewer
    when the training split (its first ``num_reference`` images) is smaller; ``DEFAULT_SAMPLES`` midpoints
    of random test pairs (many more pairs than test images, so not capped)."""
    from aegen.metrics.splits import split_size

    train = split_size(datamodule, "train")
    reference = train if num_reference is None else min(num_reference, train)
    return num_samples or min(DEFAULT_SAMPLES, reference), interp_samples or DEFAULT_SAMPLES


def progress(message: str) -> None:
    """One progress line on stderr (stdout keeps what a command prints as its result)."""
    print(f"aegen evaluate: {message}", file=sys.stderr, flush=True)


@contextmanager
def _step(name: str) -> Iterator[None]:
    """A progress line as ``name`` starts and one with its seconds as it ends."""
    progress(f"{name} ...")
    start = time.perf_counter()
    yield
    progress(f"{name} done ({time.perf_counter() - start:.1f} s)")


def _check_numbers(**values: int | None) -> None:
    """The checks the command line's types make, for callers from Python: an AegenError naming the option."""
    kinds = {"num_samples": AtLeast2, "interp_samples": AtLeast2, "num_reference": AtLeast2, "seeds": Count,
             "disentangle_points": AtLeast10, "tsne_points": AtLeast10}
    for name, value in values.items():
        try:
            if value is not None:
                kinds[name](value)
        except ValueError as err:
            raise AegenError(f"--{name} {err}") from None


def _inception_weights(requested: tuple[str, ...] | None, given: str | Path | None, download: bool) -> Path | None:
    """The Inception weights file when an Inception group is requested (an AegenError when there is none);
    ``download`` fetches it into torch hub's cache first when missing, even when no Inception group runs."""
    from aegen.metric_groups import INCEPTION_GROUPS
    from aegen.metrics import fidelity

    wanted = requested is not None and bool(set(requested) & set(INCEPTION_GROUPS))
    if not wanted and not download:
        return None
    found = fidelity.inception_weights(given, download=download)
    return found if wanted else None


def _model_and_data(checkpoint: str | Path, data: str | None, data_options: dict[str, Any] | None,
                    device: str | None) -> tuple[Any, Any]:
    """The checkpoint's model on ``device`` and its (or ``data``'s) datamodule, set up for testing."""
    import torch

    from aegen.checkpoint import load, load_datamodule
    from aegen.registry import get_data

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load(checkpoint, map_location=device)
    options = {"device_cache": False, **(data_options or {})}
    datamodule = get_data(data)(**options) if data else load_datamodule(checkpoint, **options)
    datamodule.setup("test")
    if tuple(datamodule.img_shape) != tuple(model.img_shape):
        raise AegenError(f"the model takes {tuple(model.img_shape)} images but the data has {datamodule.img_shape}; "
                         "pass --data.image_size (or another dataset) to match")
    return model, datamodule


def _plan(ev: Evaluation, requested: tuple[str, ...] | None) -> tuple[list[str], dict[str, str]]:
    """The groups to run, in order, and why each of the others is skipped."""
    from aegen.metric_groups import GROUPS

    names = requested or tuple(n for n, g in GROUPS.items() if not g.needs_weights)
    ev.requested = names
    skipped = {n: r for n in names if (r := GROUPS[n].skip_reason(ev))}
    if requested is None:
        skipped.update({n: r for n in names if n not in skipped and (r := GROUPS[n].off_by_default(ev))})
        skipped.update({n: "needs Inception weights: --metrics fid,is,kid,pr with --inception_weights PATH "
                           "or --download-inception"
                        for n, g in GROUPS.items() if g.needs_weights})
    return [n for n in names if n not in skipped], skipped


def _measure(ev: Evaluation, runs: list[str], seed: int, seeds: int) -> dict[str, float]:
    """Each group's values: deterministic groups once, sampling-based ones per seed (the mean, and the
    standard deviation over seeds under ``<key>_seed_std`` when ``seeds`` > 1)."""
    import numpy as np

    from aegen.metric_groups import GROUPS

    values: dict[str, float] = {}
    for name in runs:
        if not GROUPS[name].stochastic:
            with _step(name):
                values.update(GROUPS[name].run(ev))
    per_seed: list[dict[str, float]] = []
    for s in range(seeds):
        ev.seed = seed + s
        if seeds > 1:
            progress(f"sampling pass {s + 1}/{seeds} (seed {ev.seed})")
        row: dict[str, float] = {}
        for name in runs:
            if GROUPS[name].stochastic:
                with _step(name):
                    row.update(GROUPS[name].run(ev))
        per_seed.append(row)
    for key in per_seed[0]:
        series = np.array([row[key] for row in per_seed], dtype=np.float64)
        values[key] = float(series.mean())
        if seeds > 1:
            values[f"{key}_seed_std"] = float(series.std(ddof=1))
    return values


def _result(ev: Evaluation, values: dict[str, float], runs: list[str], skipped: dict[str, str],
            checkpoint: str | Path, seed: int, seeds: int) -> dict[str, Any]:
    """``metrics.json``: the values and what they were measured on (None entries left out)."""
    from aegen.metric_groups import INCEPTION_GROUPS
    from aegen.metrics.fidelity import INCEPTION
    from aegen.metrics.judge import FEATURE_EXTRACTOR as JUDGE

    weights = ev.inception_weights
    extractors = [name for name, used in ((INCEPTION, weights is not None and set(runs) & set(INCEPTION_GROUPS)),
                                          (JUDGE, "judge_path" in ev.info)) if used]
    result: dict[str, Any] = {
        **values,
        "num_samples": ev.num_samples,
        "reference_split": "train" if ev.num_reference is None else f"train[:{ev.num_reference}]",
        "split": "test",
        "interp_num_samples": ev.interp_samples if "interp" in runs else None,
        "interp_reference_split": "test" if "interp" in runs else None,
        "feature_extractor": ", ".join(extractors) or None,
        **{k: v for k, v in ev.info.items() if k != "notes"},
        "inception_weights": None if weights is None else str(weights),
        "seed": seed,
        "seeds": seeds,
        "groups": runs,
        "skipped": {**skipped, **ev.info.get("notes", {})},
        "model": ev.model.registry_name,
        "data": ev.datamodule.registry_name,
        "checkpoint": str(Path(checkpoint).resolve()),
        "aegen_version": __version__,
    }
    return {k: v for k, v in result.items() if v is not None}
