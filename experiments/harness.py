"""What every experiment script shares: train, evaluate, loop over seeds, write results.

Training and evaluation go through the ``aegen`` command in a subprocess, exactly as a user runs
it (``aegen fit ...`` prints ``checkpoint: PATH`` last; ``aegen evaluate CKPT --out DIR`` writes
``DIR/metrics.json``). The scripts run as ``python experiments/NAME.py``; Python puts
``experiments/`` on ``sys.path``, so they import this module as ``from harness import fit``. The
``aegen`` subprocesses get ``experiments/`` on their import path too, so a script's own classes
can be named by class path (``fit("deae", data="claims.deae_common.FewFonts")``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = str(Path(__file__).resolve().parent)  # experiments/


def aegen(*args: str, cwd: str | Path | None = None, threads: int | None = None) -> str:
    """Run ``aegen ARGS`` in a subprocess and return its stdout; raise RuntimeError with the end of
    stderr if it fails. ``threads`` sets OMP_NUM_THREADS (torch's CPU threads) for it; otherwise
    the subprocess inherits this process's environment, with ``experiments/`` added to PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run([sys.executable, "-m", "aegen", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"aegen {' '.join(map(str, args))} failed: {result.stderr[-2000:]}")
    return result.stdout


def last_checkpoint(stdout: str, cwd: str | Path = ".") -> Path:
    """The path of the ``checkpoint: PATH`` line that ends the output of ``aegen fit``/``aegen prior``."""
    lines = stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("checkpoint: "):
        raise RuntimeError(f"no `checkpoint: PATH` line at the end of aegen's output: {stdout[-500:]!r}")
    return Path(cwd) / lines[-1].removeprefix("checkpoint: ")


def fit(model: str, *flags: Any, data: str | None = "digits", seed: int = 0, root: str | Path = ".",
        threads: int | None = None) -> Path:
    """``aegen fit --model MODEL --data DATA --seed_everything SEED --trainer.default_root_dir ROOT FLAGS``
    (progress bar and model summary off) in a subprocess run in ROOT; returns the checkpoint it names.

    ``flags`` are further ``aegen fit`` arguments (``"--trainer.max_epochs", 10``), given last so that
    they win; ``data=None`` leaves ``--data`` out (the CLI's default, the embedded digits).
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    stdout = aegen("fit", "--model", model, *(["--data", data] if data else []), "--seed_everything", seed,
                   "--trainer.default_root_dir", root, "--trainer.enable_progress_bar", "false",
                   "--trainer.enable_model_summary", "false", *flags, cwd=root, threads=threads)
    return last_checkpoint(stdout, root)


def model_flags(options: dict[str, Any], group: str = "model") -> list[str]:
    """``{"gan_steps": 16}`` -> ``["--model.gan_steps=16"]`` (non-string values as JSON); ``group``
    names another config group (``data``, ``trainer``)."""
    return [f"--{group}.{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in options.items()]


def data_flags(options: dict[str, Any]) -> list[str]:
    """``{"batch_size": 16}`` -> ``["--data.batch_size=16"]``, as ``model_flags``."""
    return model_flags(options, "data")


def evaluate(ckpt: str | Path, metrics: str = "judge", out: str | Path = "eval", threads: int | None = None,
             cwd: str | Path | None = None, **flags: Any) -> dict[str, Any]:
    """``aegen evaluate CKPT --metrics METRICS --out OUT`` in a subprocess; returns OUT/metrics.json.

    ``flags``: further options, ``num_samples=2000`` -> ``--num-samples 2000`` (None: left out;
    True: a bare flag)."""
    out = Path(out).resolve()
    extra: list[Any] = []
    for key, value in flags.items():
        if value is None or value is False:
            continue
        extra += [f"--{key.replace('_', '-')}"] + ([] if value is True else [value])
    aegen("evaluate", ckpt, "--metrics", metrics, *extra, "--out", out, cwd=cwd, threads=threads)
    return json.loads((out / "metrics.json").read_text())


def mean_std(runs: Sequence[dict[str, Any]], keys: Iterable[str] | None = None,
             ddof: int = 1) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation (numpy, ``ddof``; 0.0 for a single run) of each key over runs.

    ``keys`` default to the numeric (non-bool) values every run has."""
    if keys is None:
        keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                and all(k in r for r in runs)]
    out = {}
    for key in keys:
        values = np.array([r[key] for r in runs], dtype=float)
        out[key] = (float(values.mean()), float(values.std(ddof=ddof)) if len(values) > ddof else 0.0)
    return out


def over_seeds(run: Callable[[int], dict[str, Any]], seeds: Iterable[int], keys: Iterable[str] | None = None,
               ddof: int = 1, after: Callable[[int, dict[str, Any]], None] | None = None,
               ) -> tuple[list[dict[str, Any]], dict[str, tuple[float, float]]]:
    """``run(seed)`` for each seed (``after(seed, result)`` once each is done, e.g. to save partial
    results); returns the runs and ``mean_std`` of them."""
    runs = []
    for seed in seeds:
        runs.append(run(seed))
        if after is not None:
            after(seed, runs[-1])
    return runs, mean_std(runs, keys, ddof)


def pm(mean: float, std: float, spec: str = ".3f", std_spec: str | None = None) -> str:
    """``"mean ± std"`` with format specs (``std_spec`` defaults to ``spec``)."""
    return f"{mean:{spec}} ± {std:{std_spec or spec}}"


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".4g") -> str:
    """A markdown table: one line per row dict, columns (default: the first row's keys) as header;
    floats are formatted with ``floatfmt``, other cells are ``str(value)`` (format them before)."""
    columns = list(columns or rows[0])

    def cell(value: Any) -> str:
        return f"{value:{floatfmt}}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_json(data: Any, path: str | Path) -> None:
    """``data`` as indented JSON with a final newline (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def md_beside(json_path: str | Path) -> Path:
    """Where the markdown table of ``X.json`` goes: ``X.md`` (``X.md.md`` should the JSON be named ``X.md``)."""
    path = Path(json_path)
    return path.with_name(path.name + ".md") if path.suffix == ".md" else path.with_suffix(".md")


def write_results(rows: Sequence[dict[str, Any]] | str, json_path: str | Path | None, md_path: str | Path | None = None,
                  data: Any = None, columns: Sequence[str] | None = None) -> str:
    """Write ``data`` (default: ``rows``) as JSON to ``json_path`` and the markdown table of ``rows``
    (or ``rows`` itself when it is a table already) to ``md_path`` (either None or empty: not written);
    return the table."""
    table = rows if isinstance(rows, str) else markdown_table(rows, columns)
    if json_path:
        write_json(rows if data is None else data, json_path)
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(table + "\n")
    return table
