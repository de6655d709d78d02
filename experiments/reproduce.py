"""One command per paper table or figure: train, evaluate and print the paper's numbers beside ours.

    python experiments/reproduce.py --list
    python experiments/reproduce.py latentgan-table1 --scale quick --out results/
    python experiments/reproduce.py gaia-interpolation --scale paper --data-root ~/data --inception-weights pt_inception.pth --out results/

``quick`` runs on the data every install carries (digits, fonts) within about 30 minutes on 2 CPU
cores; ``paper`` uses the paper's data and scale and stops in one line naming what is missing (the
data under ``--data-root``, a GPU, Inception weights). Both print the same markdown table and write
``OUT/NAME.json`` and ``OUT/NAME.md``; the trained runs stay under ``OUT/runs`` and are reused by a
rerun. A claim "holds" only over at least 5 seeds, with the difference above twice its standard
error, at torch's default threads (see ``claims/__init__.py``); otherwise the table says "not shown".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from claims import Context, load_claims, render
from harness import write_json


def parser(names: list[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", choices=names, metavar="NAME", help="the claim (see --list)")
    p.add_argument("--list", action="store_true", help="print every claim with one line each")
    p.add_argument("--scale", choices=("quick", "paper"), default="quick")
    p.add_argument("--out", type=Path, default=Path("reproduce"), help="output folder (default: reproduce/)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5; fewer cannot show a claim)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None,
                   help="override the scale's training epochs (e.g. GAIA at 10, 30, 100 epochs)")
    p.add_argument("--data-root", type=Path, default=None, help="--scale paper: the folder holding the paper's data")
    p.add_argument("--inception-weights", type=Path, default=None,
                   help="--scale paper: torch-fidelity's pt_inception-2015-12-05 weights for IS/FID")
    return p


def main(argv: list[str] | None = None) -> int:
    claims = load_claims()
    args = parser(sorted(claims)).parse_args(argv)
    if args.list or args.name is None:
        width = max(map(len, claims))
        for name in sorted(claims):
            print(f"{name:<{width}}  {claims[name].summary}")
        return 0
    chosen = claims[args.name]
    ctx = Context(args.name, args.scale, list(range(args.first_seed, args.first_seed + args.seeds)), args.out.resolve(),
                  args.data_root, args.inception_weights, args.epochs)
    if args.scale == "paper" and (missing := chosen.needs(ctx)):
        print(f"reproduce.py: {args.name} --scale paper needs {'; '.join(missing)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        report = chosen.run(ctx)
    except RuntimeError as err:  # a failed aegen subprocess: its last stderr line says why
        print(f"reproduce.py: {args.name}: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
        return 1
    table, record = render(ctx, chosen, report, time.perf_counter() - start)
    suffix = "" if args.scale == "quick" and args.epochs is None else f"-{args.scale}" + (
        f"-{args.epochs}ep" if args.epochs else "")
    write_json(record, ctx.out / f"{args.name}{suffix}.json")
    (ctx.out / f"{args.name}{suffix}.md").write_text(table)
    print(table)
    print(f"wrote {ctx.out / (args.name + suffix)}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
