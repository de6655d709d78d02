"""How long ``aegen fit --model NAME`` takes at its defaults, projected from timed minibatches.

For each model, times ``--batches`` minibatches (after ``--warmup``) through ``aegen fit``'s Trainer at the
model's defaults on its default data (digits; fonts for the factor models: deae, gsl), then multiplies the
time per minibatch by the minibatches of the default run (training batches per epoch x ``aegen fit``'s
default epochs). Prints seconds per minibatch, the default run's minibatches and the projected minutes
(training only: data setup, validation and checkpoints add to it). The defaults floor is 10 minutes.

    python benchmarks/default_fit_time.py [--models deae,gsl] [--batches 20] [--warmup 5]
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from throughput import time_trainer

from aegen.cli import DEFAULT_EPOCHS
from aegen.registry import get_data, get_model, models


def default_data(name: str) -> str:
    return "fonts" if getattr(get_model(name), "requires_factors", False) else "digits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="deae,gsl", help="comma-separated registry names (default: deae,gsl)")
    parser.add_argument("--batches", type=int, default=20, help="timed minibatches per model")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(models()))
    if unknown:
        parser.error(f"unknown models: {', '.join(unknown)}; see `aegen list`")
    print(f"torch threads: {torch.get_num_threads()}; default epochs: {DEFAULT_EPOCHS}")
    print(f"{'model':>12} {'data':>7} {'s/minibatch':>12} {'minibatches':>12} {'projected min':>14}")
    for name in names:
        data = default_data(name)
        datamodule = get_data(data)()
        datamodule.setup("fit")
        per_epoch = len(datamodule.train_dataloader())
        with tempfile.TemporaryDirectory() as root:
            seconds = 1 / time_trainer(name, args.batches, args.warmup, root, data)
        total = per_epoch * DEFAULT_EPOCHS
        print(f"{name:>12} {data:>7} {seconds:12.3f} {total:12d} {seconds * total / 60:14.1f}", flush=True)


if __name__ == "__main__":
    main()
