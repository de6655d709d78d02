"""The thresholds of ``tests/test_defaults_guard.py``, read from the full default runs of the defaults table.

After ``python experiments/reproduce.py defaults --out DIR``, this reads each digits model's default fits
under ``DIR/runs`` (every seed) and prints, per model, the largest ``val/recon_mse`` after epoch ``--epochs``
across the seeds, and the guard's threshold: that value times ``--margin``. Paste the printed dict into the
test's ``RECORDED``.

    python experiments/guard_thresholds.py DIR [--epochs 3] [--margin 1.5]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from aegen.cli import DEFAULT_EPOCHS


def default_fit(record: dict) -> str | None:
    """The model of a fit record made as ``aegen fit --model NAME --data digits`` at the default epochs, or None."""
    model, _seed, *flags = record["args"]
    return model if [str(f) for f in flags] == ["--data", "digits", "--trainer.max_epochs", str(DEFAULT_EPOCHS)] else None


def val_recon(run: Path) -> list[float]:
    """``val/recon_mse`` after each epoch of a fit (its run's metrics.csv)."""
    with next(run.glob("runs/*/version_0/metrics.csv")).open() as f:
        return [float(r["val/recon_mse"]) for r in csv.DictReader(f) if r.get("val/recon_mse")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the --out folder of `reproduce.py defaults`")
    parser.add_argument("--epochs", type=int, default=3, help="the guard's epochs (default 3)")
    parser.add_argument("--margin", type=float, default=1.5, help="threshold / largest recorded value (default 1.5)")
    args = parser.parse_args()
    recorded: dict[str, list[float]] = {}
    for fit in sorted((args.out / "runs").glob("*/seed*/fit.json")):
        model = default_fit(json.loads(fit.read_text()))
        curve = val_recon(fit.parent) if model else []
        if len(curve) >= args.epochs:
            recorded.setdefault(model, []).append(curve[args.epochs - 1])
    if not recorded:
        parser.error(f"no default digits fits with val/recon_mse under {args.out / 'runs'}")
    print(f"# val/recon_mse after epoch {args.epochs}: largest of the seeds (seeds), threshold x{args.margin}")
    for model, values in sorted(recorded.items()):
        print(f"#   {model}: {max(values):.3f} ({len(values)} seeds)")
    print({model: round(args.margin * max(values), 3) for model, values in sorted(recorded.items())})


if __name__ == "__main__":
    main()
