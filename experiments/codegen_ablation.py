"""The learned-prior AAE's ablation (Table 3): A = learned prior, B = perceptual loss, C = decoder
updated in both phases, enabled one after another from the AAE baseline, as in the paper.

On the embedded digits (default) it scores samples with the judge (``fid_judge``, ``is_judge_mean``);
on real data with Inception weights present (``--data cifar10 --inception``) with the Inception
Score, the paper's metric. Every row is `aegen fit --model codegen_aae --preset paper` with the switches, then
`aegen evaluate`.

    python experiments/codegen_ablation.py --epochs 15
    python experiments/codegen_ablation.py --data cifar10 --data-root /data --epochs 100 --inception \
        --inception-weights /path/to/weights-inception-2015-12-05-6726825d.pth --num-samples 50000
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import evaluate, fit, markdown_table, write_results

#: (row name, learned_prior, perceptual_loss, decoder_in_both_phases): the paper's incremental rows
ROWS = [
    ("baseline (AAE)", False, False, False),
    ("A", True, False, False),
    ("A + B", True, True, False),
    ("A + B + C", True, True, True),
]


def run(row: tuple, args: argparse.Namespace, out: Path) -> dict:
    name, a, b, c = row
    tag = "".join(k for k, on in zip("ABC", (a, b, c)) if on) or "baseline"
    ckpt = fit("codegen_aae", *(["--data.root", args.data_root] if args.data_root else []), "--preset", "paper",
               "--model.learned_prior", str(a).lower(), "--model.perceptual_loss", str(b).lower(),
               "--model.decoder_in_both_phases", str(c).lower(), "--trainer.max_epochs", args.epochs,
               data=args.data, seed=args.seed, root=out / tag, threads=1)
    return evaluate(ckpt, metrics="is" if args.inception else "judge", out=out / tag / "eval", cwd=out, threads=1,
                    num_samples=args.num_samples, inception_weights=args.inception_weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--inception", action="store_true", help="score with the Inception Score (needs the weights)")
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="experiments/results/codegen_ablation")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda r: run(r, args, out), ROWS))
    keys = ["is_mean"] if args.inception else ["fid_judge", "is_judge_mean"]
    rows = [{"row": name, **{k: "x" if on else "" for k, on in zip("ABC", (a, b, c))}, **{k: f"{m[k]:.2f}" for k in keys}}
            for (name, a, b, c), m in zip(ROWS, results)]
    wall = time.time() - start
    table = markdown_table(rows)
    print(table)
    print(f"\nwall time {wall:.0f} s; {args.data}, {args.epochs} epochs, seed {args.seed}, {args.num_samples} samples")
    write_results(table, out / "results.json", out / "results.md", data={
        "table": table, "wall_s": wall, "args": vars(args), "metrics": dict(zip([r[0] for r in ROWS], results))})


if __name__ == "__main__":
    main()
