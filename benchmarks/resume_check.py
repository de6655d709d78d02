"""Exact resume at the defaults, through the CLI as a user runs it.

For each model: `aegen fit --model M --trainer.max_epochs 4 --seed_everything 0` in one go, and
the same run stopped at 2 epochs and resumed with `--ckpt_path last --trainer.max_epochs 4`.
Prints, per model, how many weight/buffer tensors and optimiser-state tensors are bitwise equal,
whether the resumed run stayed in its version folder, and the wall times.

    python benchmarks/resume_check.py --models aae,gaia,latentgan --out /tmp/resume
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch


def fit(root: Path, *args: str) -> tuple[Path, float]:
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "aegen", "fit", "--trainer.default_root_dir", str(root),
                          "--trainer.enable_progress_bar", "false", *args], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"aegen fit {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1].removeprefix("checkpoint: ")), time.time() - start


def tensors(state: dict) -> dict[str, torch.Tensor]:
    """Weights, buffers and optimiser-state tensors of a checkpoint, by name."""
    out = {f"state_dict.{k}": v for k, v in state["state_dict"].items()}
    for i, optimizer in enumerate(state["optimizer_states"]):
        for param, values in optimizer["state"].items():
            out.update({f"optimizer{i}.{param}.{k}": v for k, v in values.items() if torch.is_tensor(v)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="aae,gaia,latentgan")
    parser.add_argument("--epochs", type=int, default=4, help="the whole run; the first part is half of it")
    parser.add_argument("--out", type=Path, default=Path("resume-check"))
    args = parser.parse_args()
    print(f"{'model':<12} {'equal tensors':>14} {'same folder':>12} {'whole s':>8} {'parts s':>8}")
    for name in args.models.split(","):
        common = ["--model", name, "--seed_everything", "0"]
        whole, t_whole = fit(args.out / name / "whole", *common, "--trainer.max_epochs", str(args.epochs))
        first, t_first = fit(args.out / name / "parts", *common, "--trainer.max_epochs", str(args.epochs // 2))
        resumed, t_rest = fit(args.out / name / "parts", *common, "--trainer.max_epochs", str(args.epochs),
                              "--ckpt_path", "last")
        a, b = (tensors(torch.load(p, map_location="cpu", weights_only=True)) for p in (whole, resumed))
        equal = sum(k in b and torch.equal(v, b[k]) for k, v in a.items())
        print(f"{name:<12} {f'{equal}/{len(a)}':>14} {str(resumed == first):>12} {t_whole:8.0f} {t_first + t_rest:8.0f}",
              flush=True)


if __name__ == "__main__":
    main()
