"""Training throughput: aegen's Trainer vs a hand-written PyTorch loop, same nets, same batches.

For each model, times training steps per second (a) through ``aegen fit``'s Trainer setup
(LightningCLI-built Trainer with its default callbacks, CSV logger and rich progress bar) on the
embedded digits, the time between epochs (checkpoint, image sheets) left out, and (b) in a plain PyTorch loop that does the same forward/backward/optimiser
work on the same in-memory batches (``_loops.py``). Prints the ratio (a)/(b); the goal is >= 0.95 on CPU.
For models with earlier forms of their step (``_loops.REFERENCE``: GAIA's five passes of D, its later two
backward passes, and the five passes at the earlier defaults: torch's layout, multi-tensor Adam), also times
those forms' hand-written loops in the same runs and prints the ratio of steps/s, step / earlier step. Every
hand loop runs in its model's memory format (channels-last by default).

    python benchmarks/throughput.py [--models ae,vae,aae,acai,gaia,latentgan] [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from typing import Callable, Sequence

import pytorch_lightning as pl
import torch
from _loops import HAND_WRITTEN, REFERENCE
from gpu_check import StepRate

from aegen.data.base import AEDataModule
from aegen.lightning_cli import AegenCLI, class_path
from aegen.models.base import GenerativeAE
from aegen.registry import get_data, get_model


def time_trainer(name: str, steps: int, warmup: int, root: str, data: str = "digits",
                 options: Sequence[str] = ()) -> float:
    """Minibatches per second of ``aegen fit``'s Trainer for the model at its defaults on ``data``, from the end of
    batch ``warmup`` on, leaving out the time between epochs (checkpoints, image sheets: ``gpu_check.StepRate``);
    ``options``: more ``aegen fit`` flags (e.g. ``--model.channels_last=false``)."""
    batches = steps + warmup
    cli = AegenCLI(
        GenerativeAE, AEDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
        args=[f"--model={class_path(get_model(name))}", f"--data={class_path(get_data(data))}",
              "--trainer.accelerator=cpu", "--trainer.max_epochs=1000", f"--trainer.default_root_dir={root}",
              "--trainer.limit_val_batches=0", "--trainer.enable_model_summary=false", *options],
        seed_everything_default=0, trainer_defaults={"log_every_n_steps": 10}, auto_configure_optimizers=False,
    )
    timer = StepRate(warmup, steps, report=False)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit_loop.epoch_loop.max_steps = -1
    cli.trainer.limit_train_batches = batches  # one "epoch" of exactly `batches` batches
    cli.trainer.fit_loop.max_epochs = 1
    loader_len = len(cli.datamodule.train_dataloader())
    if loader_len < batches:  # repeat epochs until enough batches ran
        cli.trainer.fit_loop.max_epochs = -(-batches // loader_len)
        cli.trainer.limit_train_batches = 1.0
    cli.trainer.fit(cli.model, cli.datamodule)
    return timer.rate


def time_hand_loop(name: str, steps: int, warmup: int, loop: Callable | None = None, **options) -> float:
    """Steps per second of ``loop`` (default: the model's hand-written loop) on the digits' batches, the model
    built with ``options`` (e.g. ``channels_last=False``)."""
    pl.seed_everything(0, verbose=False)
    model = get_model(name)(img_shape=(1, 32, 32), num_classes=10, **options)
    model = copy.deepcopy(model).train()
    model.use_memory_format()  # as aegen's Trainer does (configure_model), and its batches below
    datamodule: AEDataModule = get_data("digits")()
    loader = datamodule.train_dataloader()
    batches = []
    while len(batches) < steps + warmup:
        batches.extend(model._images(x) for x, _ in loader)
    step = (loop or HAND_WRITTEN[name])(model)
    for x in batches[:warmup]:
        step(x)
    start = time.perf_counter()
    for x in batches[warmup : warmup + steps]:
        step(x)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(HAND_WRITTEN))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs on each side")
    args = parser.parse_args()
    names = args.models.split(",")
    unknown = [name for name in names if name not in HAND_WRITTEN]
    if unknown:
        parser.error(f"no hand-written loop for {', '.join(unknown)}; choose from {', '.join(HAND_WRITTEN)}")
    rows, references = [], []
    with tempfile.TemporaryDirectory() as root:
        for name in names:
            lightning, hand, earlier = 0.0, 0.0, [0.0 for _ in REFERENCE.get(name, [])]
            for _ in range(args.repeats):  # interleaved, so drifts in machine load hit every side
                lightning = max(lightning, time_trainer(name, args.steps, args.warmup, root))
                hand = max(hand, time_hand_loop(name, args.steps, args.warmup))
                for i, (_, loop, options) in enumerate(REFERENCE.get(name, [])):
                    earlier[i] = max(earlier[i], time_hand_loop(name, args.steps, args.warmup, loop, **options))
            rows.append((name, lightning, hand, lightning / hand))
            for (label, _, _), reference in zip(REFERENCE.get(name, []), earlier):
                references.append((name, label, hand, reference, hand / reference))
    print(f"\n{'model':<10}{'aegen steps/s':>15}{'hand loop steps/s':>19}{'ratio':>8}")
    for name, lightning, hand, ratio in rows:
        print(f"{name:<10}{lightning:>15.2f}{hand:>19.2f}{ratio:>8.3f}")
    if references:
        print(f"\n{'model':<10}{'earlier step':<48}{'step/s':>9}{'earlier step/s':>16}{'ratio':>9}")
        for name, label, hand, reference, ratio in references:
            print(f"{name:<10}{label:<48}{hand:>9.2f}{reference:>16.2f}{ratio:>9.3f}")


if __name__ == "__main__":
    main()
