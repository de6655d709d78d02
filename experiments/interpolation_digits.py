"""GAIA's claim on the embedded digits: are decoded midpoints more realistic than a plain AE's?

Trains gaia, acai and ae at the same budget (same epochs, batch size, latent size, nets and
learning rate), through `aegen fit` with the defaults a user gets, then evaluates each checkpoint:
``interp_fid_judge`` (judge-FID of decoded midpoints of random test pairs against real test
images; lower = more realistic midpoints), ``fid_judge`` of samples, ``recon_mse`` and ``psnr``.
Prints a markdown table (mean ± std over seeds) and writes it as JSON (``--out``; the table also
beside it, ``.md`` for ``.json``).

    python experiments/interpolation_digits.py --epochs 10 --seeds 3 --out interp.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import evaluate, fit, md_beside, over_seeds, pm, write_results

KEYS = ("interp_fid_judge", "fid_judge", "recon_mse", "psnr")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gaia,acai,ae")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=10_000, help="samples for fid_judge")
    parser.add_argument("--out", default="interpolation_digits.json")
    args = parser.parse_args(argv)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            start = time.perf_counter()

            def run(seed: int) -> dict[str, float]:
                ckpt = fit(model, "--trainer.max_epochs", args.epochs, data=None, seed=seed, root=tmp)
                metrics = evaluate(ckpt, metrics="recon,interp,judge", out=Path(tmp) / f"eval-{model}-{seed}",
                                   num_samples=args.num_samples, seed=seed)
                return {k: metrics[k] for k in KEYS}

            runs, stats = over_seeds(run, range(args.seeds), KEYS)
            results[model] = {
                **{k: stats[k][0] for k in KEYS},
                **{f"{k}_std": stats[k][1] for k in KEYS},
                "runs": runs,
                "wall_s": time.perf_counter() - start,
            }
    rows = [{"model": model, **{k: pm(r[k], r[k + "_std"], ".4g", ".2g") for k in KEYS},
             "wall time (train + eval, all seeds)": f"{r['wall_s'] / 60:.1f} min"} for model, r in results.items()]
    table = write_results(rows, args.out, md_beside(args.out),
                          data={"settings": vars(args), "results": results})
    print(f"\n{table}")


if __name__ == "__main__":
    main()
