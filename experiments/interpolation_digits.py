"""GAIA's claim on the embedded digits: are decoded midpoints more realistic than a plain AE's?

Trains gaia, acai and ae at the same budget (same epochs, batch size, latent size, nets and
learning rate), through `aegen fit` with the defaults a user gets, then evaluates each checkpoint:
``interp_fid_judge`` (judge-FID of decoded midpoints of random test pairs against real test
images; lower = more realistic midpoints), ``fid_judge`` of samples, ``recon_mse`` and ``psnr``.
Prints a markdown table (mean ± std over seeds) and writes it as JSON.

    python experiments/interpolation_digits.py --epochs 10 --seeds 3 --out interp.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from aegen.cli import main as aegen
from aegen.evaluate import evaluate

KEYS = ("interp_fid_judge", "fid_judge", "recon_mse", "psnr")


def train(model: str, epochs: int, seed: int, root: Path) -> Path:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = aegen(["fit", "--model", model, "--trainer.max_epochs", str(epochs), "--seed_everything", str(seed),
                      "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                      "--trainer.enable_model_summary", "false"])
    if code:
        raise SystemExit(f"aegen fit --model {model} failed")
    return Path(out.getvalue().strip().splitlines()[-1].removeprefix("checkpoint: "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gaia,acai,ae")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=10_000, help="samples for fid_judge")
    parser.add_argument("--out", default="interpolation_digits.json")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            runs, start = [], time.perf_counter()
            for seed in range(args.seeds):
                ckpt = train(model, args.epochs, seed, Path(tmp))
                metrics = evaluate(ckpt, Path(tmp) / f"eval-{model}-{seed}", metrics="recon,interp,judge",
                                   num_samples=args.num_samples, seed=seed)
                runs.append({k: metrics[k] for k in KEYS})
            results[model] = {
                **{k: statistics.mean(r[k] for r in runs) for k in KEYS},
                **{f"{k}_std": statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0 for k in KEYS},
                "runs": runs,
                "wall_s": time.perf_counter() - start,
            }
    Path(args.out).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2) + "\n")
    print(f"\n| model | {' | '.join(KEYS)} | wall time (train + eval, all seeds) |")
    print("|---|" + "---|" * (len(KEYS) + 1))
    for model, r in results.items():
        cells = " | ".join(f"{r[k]:.4g} ± {r[k + '_std']:.2g}" for k in KEYS)
        print(f"| {model} | {cells} | {r['wall_s'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
