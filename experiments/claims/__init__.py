"""The paper claims ``experiments/reproduce.py`` runs: a registry, the run context and the verdict rule.

A claim is a function ``run(ctx) -> Report`` registered with ``@claim(NAME, summary, paper)``. It
trains and evaluates through ``ctx.fit`` and ``ctx.evaluate`` (``aegen fit`` / ``aegen evaluate`` in
a subprocess, exactly as a user runs them, cached under ``OUT/runs`` so that a rerun or another
claim with the same fits reuses them), and returns a ``Report``: rows of the paper's number beside
ours, and ``Comparison``s that decide whether the paper's claim holds.

The verdict rule (the project's bar): a claim holds only when it holds in the mean over at least
5 seeds, with the difference larger than twice its standard error (Welch: sqrt(s_a²/n_a + s_b²/n_b)),
at the library's defaults, threads included (``OMP_NUM_THREADS`` unset). Otherwise: "not shown".
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from harness import aegen, data_flags, last_checkpoint, markdown_table, model_flags, pm, write_json

Scale = Literal["quick", "paper"]
MIN_SEEDS = 5


@dataclass
class Context:
    """What a claim runs with: the scale, the seeds, the output folder and, for ``paper``, the data."""

    name: str
    scale: Scale
    seeds: list[int]
    out: Path
    data_root: Path | None = None
    inception_weights: Path | None = None
    epochs: int | None = None  # overrides the scale's epochs (the table says so)
    reused: int = 0  # fits found done under OUT/runs, trained before this run, and not trained again
    trained: set = field(default_factory=set)  # the run folders this run trained

    @property
    def threads(self) -> str:
        """``OMP_NUM_THREADS=N`` when set, else torch's default with its count."""
        if os.environ.get("OMP_NUM_THREADS"):
            return f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
        import torch

        return f"torch's default ({torch.get_num_threads()})"

    def pick(self, quick: Any, paper: Any) -> Any:
        """``quick`` or ``paper`` by the scale."""
        return quick if self.scale == "quick" else paper

    def run_dir(self, model: str, spec: Any, seed: int) -> Path:
        """OUT/runs/MODEL-HASH/seedN: one folder per (model, settings, seed)."""
        digest = hashlib.sha1(json.dumps([model, spec], sort_keys=True, default=str).encode()).hexdigest()[:10]
        return self.out / "runs" / f"{model}-{digest}" / f"seed{seed}"

    def fit(self, model: str, *, seed: int, data: str | None = "digits", model_options: dict | None = None,
            data_options: dict | None = None, flags: Sequence[Any] = ()) -> tuple[Path, float]:
        """``aegen fit --model MODEL --data DATA --seed_everything SEED`` with the options as flags;
        returns (checkpoint, seconds of the ``aegen fit`` process). Cached: a run whose checkpoint
        exists is not trained again."""
        args = [*(["--data", data] if data else []), *model_flags(model_options or {}),
                *data_flags(self.data_options(data, data_options)), *map(str, flags)]
        root = self.run_dir(model, args, seed)
        done = root / "fit.json"
        if done.exists():
            record = json.loads(done.read_text())
            if Path(record["checkpoint"]).exists():
                self.reused += root not in self.trained
                return Path(record["checkpoint"]), record["seconds"]
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        stdout = aegen("fit", "--model", model, "--seed_everything", seed, "--trainer.default_root_dir", root,
                       "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *args,
                       cwd=root)
        seconds = time.perf_counter() - start
        ckpt = last_checkpoint(stdout, root).resolve()
        write_json({"checkpoint": str(ckpt), "seconds": seconds, "args": [model, seed, *args]}, done)
        self.trained.add(root)
        return ckpt, seconds

    def data_options(self, data: str | None, options: dict | None) -> dict:
        """``options`` plus ``root`` from ``--data-root`` for the paper scale's real data."""
        options = dict(options or {})
        if self.data_root is not None and data not in (None, "digits", "fonts"):
            options.setdefault("root", str(self.data_root))
        return options

    def evaluate(self, ckpt: Path, metrics: str, **flags: Any) -> dict[str, Any]:
        """``aegen evaluate CKPT --metrics METRICS --out DIR`` (``num_samples=2000`` -> ``--num-samples 2000``);
        returns its metrics.json, cached beside the checkpoint's run by the arguments."""
        if self.inception_weights is not None and "inception_weights" not in flags and "is" in metrics.split(","):
            flags["inception_weights"] = self.inception_weights
        extra: list[Any] = []
        for key, value in flags.items():
            if value is not None and value is not False:
                extra += [f"--{key}"] + ([] if value is True else [value])
        digest = hashlib.sha1(json.dumps([metrics, extra], default=str).encode()).hexdigest()[:10]
        out = Path(ckpt).parent / f"eval-{digest}"
        if not (out / "metrics.json").exists():
            aegen("evaluate", ckpt, "--metrics", metrics, *extra, "--out", out, cwd=out.parent)
        return json.loads((out / "metrics.json").read_text())


@dataclass
class Comparison:
    """One testable statement of a paper: ``ours`` better than ``other`` (per-seed values)."""

    statement: str
    ours: Sequence[float]
    other: Sequence[float]
    lower_is_better: bool

    def verdict(self, threads_default: bool) -> dict[str, Any]:
        a, b = np.asarray(self.ours, float), np.asarray(self.other, float)
        gain = (b.mean() - a.mean()) if self.lower_is_better else (a.mean() - b.mean())

        def var(x: np.ndarray) -> float:
            return float(x.var(ddof=1)) if len(x) > 1 else 0.0

        se = float(np.sqrt(var(a) / len(a) + var(b) / len(b)))
        enough = len(a) >= MIN_SEEDS and (len(b) >= MIN_SEEDS or np.ptp(b) == 0)
        holds = bool(enough and threads_default and gain > 2 * se)
        why = ("" if holds else "; fewer than 5 seeds" if not enough else "; threads not the default"
               if not threads_default else "; the gain is not above 2 SE" if gain > 0 else "; the other way")
        return {"statement": self.statement, "gain": float(gain), "two_se": 2 * se, "seeds": [len(a), len(b)],
                "verdict": ("holds" if holds else "not shown") + why}


@dataclass
class Report:
    """A claim's result: rows (the paper's number beside ours), comparisons, notes and raw data."""

    title: str
    setting: str  # the data, nets and budget in one line
    rows: list[dict[str, Any]]
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    name: str
    summary: str
    paper: str
    run: Callable[[Context], Report]
    needs: Callable[[Context], list[str]]


CLAIMS: dict[str, Claim] = {}
MODULES = ("gaia", "latentgan", "codegen", "deae", "baselines", "defaults")


def claim(name: str, summary: str, paper: str, needs: Callable[[Context], list[str]] | None = None):
    """Register ``run(ctx) -> Report`` as claim NAME; ``needs(ctx)`` lists what a paper-scale run lacks."""

    def register(run: Callable[[Context], Report]) -> Callable[[Context], Report]:
        CLAIMS[name] = Claim(name, summary, paper, run, needs or (lambda ctx: []))
        return run

    return register


def load_claims() -> dict[str, Claim]:
    for module in MODULES:
        importlib.import_module(f"claims.{module}")
    return CLAIMS


def ours(values: Sequence[float], spec: str = ".3g") -> str:
    """``mean ± std`` (ddof 1) of per-seed values."""
    values = np.asarray(values, float)
    return pm(float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0, spec)


def missing_data(ctx: Context, data: str, **options: Any) -> list[str]:
    """The one-line reason the datamodule ``data`` cannot load from ``--data-root``, or nothing."""
    if ctx.data_root is None:
        return [f"--data-root DIR holding the {data} files"]
    import aegen
    from aegen.errors import AegenError

    try:
        aegen.get_data(data)(root=str(ctx.data_root), **options).setup("fit")
    except AegenError as err:
        return [str(err)]
    return []


def missing_gpu() -> list[str]:
    import torch

    return [] if torch.cuda.is_available() else ["a CUDA GPU (none is visible)"]


def render(ctx: Context, claim: Claim, report: Report, seconds: float) -> tuple[str, dict[str, Any]]:
    """The markdown table and the JSON record of a finished claim."""
    import platform

    import torch

    threads_default = "OMP_NUM_THREADS" not in os.environ
    verdicts = [c.verdict(threads_default) for c in report.comparisons]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    hardware = f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}"
    head = [f"## {claim.name}: {report.title}", "",
            f"- Paper: {claim.paper}", f"- Setting ({ctx.scale}): {report.setting}",
            f"- Seeds: {', '.join(map(str, ctx.seeds))}; threads: {ctx.threads}; hardware: {hardware}; "
            f"wall time: {seconds / 60:.1f} min"
            + (f" ({ctx.reused} fits reused from earlier runs under OUT/runs; the fit times are theirs)" if ctx.reused
               else ""), ""]
    table = markdown_table(report.rows)
    lines = [*head, table]
    if verdicts:
        lines += ["", markdown_table([{"claim": v["statement"], "gain (mean)": f"{v['gain']:.4g}",
                                       "2 SE": f"{v['two_se']:.4g}", "verdict": v["verdict"]} for v in verdicts])]
    lines += [""] + [f"- {note}" for note in report.notes] if report.notes else []
    record = {"claim": claim.name, "title": report.title, "paper": claim.paper, "scale": ctx.scale,
              "setting": report.setting, "seeds": ctx.seeds, "threads": ctx.threads, "hardware": hardware,
              "wall_s": seconds, "reused_fits": ctx.reused, "rows": report.rows, "verdicts": verdicts, "notes": report.notes,
              "comparisons": [vars(c) | {"ours": list(map(float, c.ours)), "other": list(map(float, c.other))}
                              for c in report.comparisons], "data": report.data}
    return "\n".join(lines) + "\n", record
