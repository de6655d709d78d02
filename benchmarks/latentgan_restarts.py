"""What latentgan's restarts cost: training steps per second against the number of restarts.

Trains ``latentgan`` (its defaults: 16 latent-GAN updates per minibatch) on the
embedded digits through a Lightning Trainer for ``--steps`` minibatches after a warm-up, once per
restart count, and prints steps/s and the time per step relative to one restart. The restarts'
G and D/Q run side by side in batched matmuls (aegen.nets.EnsembleMLP), so the ratio should stay
far below the restart count.

    python benchmarks/latentgan_restarts.py [--restarts 1,8,32] [--steps 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import pytorch_lightning as pl
import torch

from aegen.registry import get_data, get_model


class Timer(pl.Callback):
    """Wall time of the training batches after ``warmup`` of them."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.batches = warmup, 0.0, 0.0, 0

    def on_train_batch_end(self, trainer, *args) -> None:
        self.batches += 1
        self.end = time.perf_counter()
        if self.batches == self.warmup:
            self.start = self.end

    def steps_per_second(self) -> float:
        return (self.batches - self.warmup) / (self.end - self.start)


def steps_per_second(restarts: int, steps: int, warmup: int = 5) -> float:
    pl.seed_everything(0, verbose=False)
    data = get_data("digits")(batch_size=64)
    model = get_model("latentgan")(img_shape=data.img_shape, num_classes=data.num_classes, restarts=restarts)
    timer = Timer(warmup)
    # one epoch of warmup + steps minibatches (max_steps would count every optimiser's steps)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=warmup + steps, logger=False, callbacks=[timer],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(model, data)
    return timer.steps_per_second()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", default="1,8,32", help="comma-separated restart counts")
    parser.add_argument("--steps", type=int, default=15, help="timed minibatches per count (at most 17: one epoch of digits)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    counts = [int(r) for r in args.restarts.split(",")]
    rates = {r: steps_per_second(r, args.steps) for r in counts}
    print(f"| restarts | steps/s | time per step vs {counts[0]} restart(s) |\n|---:|---:|---:|")
    for r, rate in rates.items():
        print(f"| {r} | {rate:.2f} | {rates[counts[0]] / rate:.2f} |")


if __name__ == "__main__":
    main()
