"""Unsupervised classification on the embedded digits: LatentGAN vs InfoGAN vs the clustering AAE vs k-means.

The LatentGAN paper's Table 1 protocol on the data every aegen install has: each model is trained
with its default hyperparameters for ``--epochs`` epochs (the same training as
``aegen fit --model NAME --trainer.max_epochs EPOCHS``) for each of ``--seeds`` seeds, then its
own cluster head assigns the test split (``aegen.metrics.clustering``). k-means (10 clusters,
scikit-learn, fitted on the training pixels) on the raw test pixels is the floor. Errors name their cluster -> label rule:
Hungarian (one-to-one), majority (many-to-one) and the AAE paper's most-confident-validation-
example rule; NMI and ARI need no mapping. Prints a Markdown table (mean ± std over seeds) and
the wall time, and writes every number to ``--out`` (the table beside it, ``.md`` for ``.json``).
Training runs ``aegen fit --trainer.limit_val_batches 0`` in a subprocess (``experiments/harness.py``).

    python experiments/clustering_digits.py                 # 3 models x 5 seeds x 30 epochs
    python experiments/clustering_digits.py --epochs 5 --seeds 1 --models latentgan
    python experiments/clustering_digits.py --models latentgan --seeds 3 --model-args '{"gan_steps": 16}'
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from harness import fit, markdown_table, mean_std, md_beside, model_flags, pm, write_results
from scipy.stats import spearmanr

import aegen
from aegen.metrics.clustering import cluster_errors, clustering_metrics, fit_kmeans, kmeans_confidence

KEYS = ("cluster_error_hungarian", "cluster_error_majority", "cluster_error_aae", "nmi", "ari")


def train(name: str, seed: int, epochs: int, options: dict | None, root: Path,
          threads: int) -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    ckpt = fit(name, "--trainer.max_epochs", epochs, "--trainer.accelerator", "cpu", "--trainer.limit_val_batches", 0,
               *model_flags(options or {}), seed=seed, root=root, threads=threads)
    seconds = time.perf_counter() - start  # since the harness: the whole `aegen fit` process, start-up included
    # scored in-process: `aegen evaluate --metrics cluster` also trains a probe and k-means, and restart_report needs Q
    model, dm = aegen.load(ckpt), aegen.get_data("digits")()
    metrics = clustering_metrics(model, dm.tensors("test"), dm.tensors("val"))
    if getattr(model, "restarts", 1) > 1:
        metrics["restarts"] = restart_report(model, dm)
    return metrics, seconds


def restart_report(model, dm) -> list[dict[str, float]]:
    """Every restart of a latentgan: I(X; c) of its Q on the training codes (the label-free
    criterion that picks ``gans.kept``) and its test Hungarian error (which the criterion never sees)."""
    (train_x, _), (test_x, test_y) = dm.tensors("train"), dm.tensors("test")
    report = []
    for i, (train_p, test_p) in enumerate(zip(model.restart_probs(train_x), model.restart_probs(test_x))):
        mean = train_p.mean(0)
        information = -(mean * mean.log()).sum() + (train_p * train_p.clamp_min(1e-12).log()).sum(1).mean()
        error = cluster_errors(test_p.argmax(1), test_y)["cluster_error_hungarian"]
        report.append({"restart": i, "kept": i == int(model.gans.kept), "information": float(information), "error": error})
    return report


def kmeans_pixels(seed: int) -> dict[str, float]:
    dm = aegen.get_data("digits")()
    (test_x, test_y), (val_x, val_y) = dm.tensors("test"), dm.tensors("val")
    kmeans = fit_kmeans(dm.tensors("train")[0].flatten(1), 10, seed)  # fitted on the training pixels, as the models
    clusters = torch.from_numpy(kmeans.predict(test_x.flatten(1).double().numpy())).long()
    return cluster_errors(clusters, test_y, None, val_y, kmeans_confidence(kmeans, val_x.flatten(1)))


def summary(runs: list[dict[str, float]], key: str, percent: bool) -> str:
    # the population std (ddof=0), as in the tables of experiments/README.md
    mean, std = mean_std([{key: r[key] * (100 if percent else 1)} for r in runs], [key], ddof=0)[key]
    return pm(mean, std, ".2f" if percent else ".3f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="latentgan,infogan,aae_cluster")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, ..., first-seed + seeds - 1")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--model-args", type=json.loads, default={},
                        help='JSON options for every model, e.g. \'{"gan_steps": 16}\' (default: none)')
    parser.add_argument("--out", default="experiments/results/clustering_digits.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)

    start = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    results: dict[str, dict] = {"kmeans_pixels": {"runs": [kmeans_pixels(s) for s in seeds], "seconds": []}}
    tmp = tempfile.TemporaryDirectory()  # the checkpoints, scored and then removed
    for name in filter(None, args.models.split(",")):
        results[name] = {"runs": [], "seconds": []}
        for seed in seeds:
            metrics, seconds = train(name, seed, args.epochs, args.model_args, Path(tmp.name) / f"{name}-{seed}",
                                     args.threads)
            results[name]["runs"].append(metrics)
            results[name]["seconds"].append(seconds)
            print(f"{name} seed {seed}: hungarian {metrics['cluster_error_hungarian']:.3f} ({seconds:.0f} s)", flush=True)
            save(args, time.perf_counter() - start, results)  # partial results survive an interrupted run
    tmp.cleanup()
    wall = time.perf_counter() - start

    print(f"\nseeds {seeds.start}-{seeds.stop - 1}, {args.epochs} epochs, digits test split (180 images), errors in %\n")
    columns = ["method", "Hungarian", "majority", "AAE rule", "NMI", "ARI", "train s/run"]
    table = markdown_table([dict(zip(columns, [name, *(summary(record["runs"], k, k.startswith("cluster_error")) for k in KEYS),
                                               f"{np.mean(record['seconds']):.0f}" if record["seconds"] else "-"]))
                            for name, record in results.items()], columns)
    print(table)
    for name, record in results.items():
        reports = [r["restarts"] for r in record["runs"] if "restarts" in r]
        if reports:
            rho = [spearmanr([x["information"] for x in r], [x["error"] for x in r]).statistic for r in reports]
            kept = [next(x["error"] for x in r if x["kept"]) for r in reports]
            print(f"\n{name} restarts: kept error {100 * np.mean(kept):.2f} %, mean over all restarts "
                  f"{100 * np.mean([x['error'] for r in reports for x in r]):.2f} %, best restart "
                  f"{100 * np.mean([min(x['error'] for x in r) for r in reports]):.2f} %; Spearman(information, "
                  f"error) within a seed: {np.mean(rho):.2f} (per seed {', '.join(f'{v:.2f}' for v in rho)})")
    print(f"\nwall time: {wall:.0f} s")
    save(args, wall, results, table)


def save(args: argparse.Namespace, wall: float, results: dict, table: str | None = None) -> None:
    """The JSON to ``--out`` (and, once the run is complete, the table beside it, ``.md``)."""
    write_results(table or "", args.out, md_beside(args.out) if table else None,
                  data={"args": vars(args), "wall_seconds": wall, "results": results})


if __name__ == "__main__":
    main()
