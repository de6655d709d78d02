"""`aegen evaluate CKPT` at its defaults against the former GPU-sized default (50,000 samples), judge cached.

Trains a digits ae with ``aegen fit --model ae --trainer.max_epochs EPOCHS`` (or takes ``--checkpoint``),
runs one warm-up evaluation so that the judge is trained and cached, then times the two commands
alternately, ``--repeats`` times each, as whole processes (``aegen evaluate CKPT --out DIR``, and the
same with ``--num-samples 50000``), at torch's default threads. Prints the seconds of each run, the
sample counts metrics.json states, the ratio of the medians, and fid_judge under both.

    python benchmarks/evaluate_defaults.py --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OLD_DEFAULT = ["--num-samples", "50000"]


def aegen(*args: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "aegen", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"aegen {' '.join(args)} failed: {result.stderr.strip().splitlines()[-1]}")
    return result.stdout


def timed_evaluate(ckpt: str, out: Path, extra: list[str], cwd: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    aegen("evaluate", ckpt, "--out", str(out), *extra, cwd=cwd)
    return time.perf_counter() - start, json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a digits checkpoint (default: train an ae)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the ae trained when no --checkpoint")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ckpt = args.checkpoint or aegen("fit", "--model", "ae", "--trainer.max_epochs", str(args.epochs),
                                        "--trainer.enable_progress_bar", "false", cwd=root
                                        ).strip().splitlines()[-1].removeprefix("checkpoint: ")
        ckpt = str((root / ckpt).resolve()) if not Path(ckpt).is_absolute() else ckpt
        aegen("evaluate", ckpt, "--metrics", "judge", "--num-samples", "100", "--out", str(root / "warm"), cwd=root)
        runs: dict[str, list[tuple[float, dict]]] = {"default": [], "50,000 samples": []}
        for i in range(args.repeats):
            for name, extra in (("default", []), ("50,000 samples", OLD_DEFAULT)):
                runs[name].append(timed_evaluate(ckpt, root / f"{name[:2]}{i}", extra, root))
                print(f"{name}: {runs[name][-1][0]:.1f} s", flush=True)
    medians = {name: statistics.median(s for s, _ in r) for name, r in runs.items()}
    for name, r in runs.items():
        metrics = r[-1][1]
        print(f"{name}: median {medians[name]:.1f} s, num_samples {metrics.get('num_samples')}, "
              f"fid_judge {metrics.get('fid_judge', float('nan')):.3f}")
    print(f"ratio default / 50,000 samples: {medians['default'] / medians['50,000 samples']:.2f}")


if __name__ == "__main__":
    main()
