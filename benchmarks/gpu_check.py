"""GPU check: steps/s and peak memory per model at fp32, bf16-mixed and compiled; gaia's DDP scaling; FID+IS time.

Three tables, one line per measurement (a cell that fails reads ``error`` and its one-line reason follows):

* every registered model (``aegen.registry``) trained by the Trainer ``aegen fit`` builds (digits; fonts for
  models that need factors), one GPU: training steps/s from batch ``--warmup`` on (the time between epochs
  left out) and ``torch.cuda.max_memory_allocated`` at ``--trainer.precision 32-true``, ``bf16-mixed`` and
  with ``--model.compile true`` (fp32);
* gaia under DDP on 1 and on all local GPUs: ``aegen fit --trainer.devices N`` subprocesses, per-rank steps/s,
  samples/s and the scaling (steps/s on N / steps/s on 1, the batch per GPU fixed);
* the wall time of FID + IS over ``--num-samples`` samples of a model against the digits training split,
  through aegen's evaluation path (``aegen.metrics.fidelity``) with the Inception weights ``--inception-weights``.

``--dry-run`` runs it all on the CPU with tiny sizes (ae and gaia at width 8, a few steps, DDP as 2 gloo
processes, random Inception weights, 16 samples): a check that the script works, its numbers meaningless.

    python benchmarks/gpu_check.py --inception-weights weights-inception-2015-12-05-6726825d.pth
    python benchmarks/gpu_check.py --dry-run
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

MARK = "gpu_check steps/s"
VARIANTS = {"fp32": ["--trainer.precision=32-true"], "bf16": ["--trainer.precision=bf16-mixed"],
            "compiled": ["--trainer.precision=32-true", "--model.compile=true"]}


class StepRate(pl.Callback):
    """Training batches per second after ``warmup`` batches, leaving out the time between epochs; stops
    the fit after ``warmup + steps`` batches; ``report`` prints the rate on rank 0 at the end."""

    def __init__(self, warmup: int = 10, steps: int = 50, report: bool = True) -> None:
        self.warmup, self.steps, self.report = warmup, steps, report
        self.batches, self.timed, self.seconds, self.last = 0, 0, 0.0, None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        now = time.perf_counter()
        self.batches += 1
        if self.last is not None and self.batches > self.warmup:
            self.timed, self.seconds = self.timed + 1, self.seconds + now - self.last
        self.last = now
        if self.batches >= self.warmup + self.steps:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.report and trainer.is_global_zero:
            print(f"{MARK} {self.rate:.6g}", flush=True)

    @property
    def rate(self) -> float:
        return self.timed / self.seconds if self.seconds else math.nan


def fit_args(name: str, args: argparse.Namespace, root: str) -> list[str]:
    """``aegen fit`` flags shared by every run: model, data, sizes, no validation, no progress bar."""
    from aegen.lightning_cli import class_path
    from aegen.registry import get_data, get_model

    model = get_model(name)
    data = get_data("fonts" if getattr(model, "requires_factors", False) else "digits")
    tiny = ["--model.width", "8", "--model.latent_dim", "8", "--data.batch_size", "16"] if args.dry_run else []
    return [f"--model={class_path(model)}", f"--data={class_path(data)}", *tiny, "--trainer.max_epochs", "1000",
            "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", root]


def time_in_process(name: str, variant: str, args: argparse.Namespace, root: str) -> tuple[float, float]:
    """(steps/s, peak MiB or nan on the CPU) of one model trained on one device by aegen's LightningCLI."""
    from aegen.data.base import AEDataModule
    from aegen.lightning_cli import AegenCLI, GenerativeAE

    cuda = args.accelerator == "gpu"
    argv = [*fit_args(name, args, root), "--trainer.accelerator", args.accelerator, "--trainer.devices", "1",
            *VARIANTS[variant]]
    cli = AegenCLI(GenerativeAE, AEDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
                   args=argv, seed_everything_default=0, auto_configure_optimizers=False,
                   parser_kwargs={"exit_on_error": False})
    timer = StepRate(args.warmup, args.steps, report=False)
    cli.trainer.callbacks.append(timer)
    if variant == "compiled":  # models share their nets' forward code: without a reset, dynamo's recompile
        torch._dynamo.reset()  # limit would leave later models running eagerly
    gc.collect()  # the previous fit's trainer and model hold each other: free their memory first
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    cli.trainer.fit(cli.model, cli.datamodule)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else math.nan
    return timer.rate, peak


def model_table(args: argparse.Namespace, root: str, errors: list[str]) -> list[str]:
    """One line per model: steps/s and peak MiB per variant."""
    from aegen.models.base import GenerativeAE
    from aegen.registry import models

    variants = list(VARIANTS)
    if "compile" not in inspect.signature(GenerativeAE.__init__).parameters:
        variants.remove("compiled")
        errors.append("compiled: skipped (GenerativeAE has no compile option)")
    elif args.dry_run:
        variants.remove("compiled")
        errors.append("compiled: skipped in --dry-run (inductor compiles for minutes on a CPU)")
    names = args.models.split(",") if args.models else list(models())
    lines = [f"{'model':<14}" + "".join(f"{v + ' steps/s':>18}{v + ' peak MiB':>18}" for v in variants)]
    for name in names:
        cells = []
        for variant in variants:
            try:
                rate, peak = time_in_process(name, variant, args, root)
                cells.append(f"{rate:>18.1f}" + (f"{'-':>18}" if math.isnan(peak) else f"{peak:>18.0f}"))
            except Exception as err:  # noqa: BLE001 - one failing cell must not hide the others
                errors.append(f"{name} {variant}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
                cells.append(f"{'error':>18}{'error':>18}")
        lines.append(f"{name:<14}" + "".join(cells))
    return lines


def ddp_rate(devices: int, args: argparse.Namespace, root: str) -> float:
    """Per-rank steps/s of gaia fitted by an ``aegen fit`` subprocess on ``devices`` devices."""
    callback = {"class_path": "gpu_check.StepRate", "init_args": {"warmup": args.warmup, "steps": args.steps}}
    command = [sys.executable, "-m", "aegen", "fit", *fit_args("gaia", args, str(Path(root) / f"ddp{devices}")),
               "--trainer.accelerator", args.accelerator, "--trainer.devices", str(devices),
               "--trainer.callbacks", json.dumps([callback])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout, check=False)
    found = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not found:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {reason}")
    return float(found[-1].split()[-1])


def ddp_table(args: argparse.Namespace, root: str, errors: list[str]) -> list[str]:
    """gaia on 1 and on all local devices (2 gloo CPU processes in --dry-run)."""
    count = 2 if args.dry_run else torch.cuda.device_count()
    if count < 2:
        errors.append(f"gaia DDP: {count} GPU(s) here, so only the 1-device row")
    batch = 16 if args.dry_run else 64
    lines = [f"{'gaia DDP devices':<18}{'steps/s':>10}{'samples/s':>12}{'scaling':>10}"]
    base = math.nan
    for devices in sorted({1, max(count, 1)}):
        try:
            rate = ddp_rate(devices, args, root)
        except Exception as err:  # noqa: BLE001
            errors.append(f"gaia DDP {devices}: {err}")
            lines.append(f"{devices:<18}{'error':>10}{'error':>12}{'error':>10}")
            continue
        base = rate if devices == 1 else base
        lines.append(f"{devices:<18}{rate:>10.1f}{rate * devices * batch:>12.0f}{rate / base:>10.3f}")
    return lines


def fid_is_line(args: argparse.Namespace, root: str, errors: list[str]) -> list[str]:
    """Seconds of FID + IS over ``--num-samples`` samples of an untrained ae (the time does not depend on
    its weights) against the digits training split, through ``aegen.metrics.fidelity``."""
    head = f"FID+IS {args.num_samples} samples vs {args.num_reference or 'all'} training images on {args.accelerator}"
    try:
        from aegen.metrics import fidelity
        from aegen.registry import get_data, get_model

        weights = args.inception_weights
        if args.dry_run and weights is None:
            weights = Path(root) / fidelity.INCEPTION_FILE
            torch.save(fidelity.random_inception_state_dict(), weights)
        if weights is None:
            raise RuntimeError("no --inception-weights PATH given")
        device = "cuda" if args.accelerator == "gpu" else "cpu"
        model = get_model("ae")(img_shape=(1, 32, 32), num_classes=10).to(device).eval()
        reference = fidelity.SplitImages(get_data("digits")(), "train", args.num_reference, rgb=True)
        start = time.perf_counter()
        fidelity.fidelity(fidelity.model_samples(model, args.num_samples, rgb=True), reference, ("fid", "is"),
                          fidelity.INCEPTION, weights, device)
        return [f"{head}: {time.perf_counter() - start:.1f} s"]
    except Exception as err:  # noqa: BLE001
        errors.append(f"FID+IS: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        return [f"{head}: error"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check that the script works")
    parser.add_argument("--models", default=None, help="comma-separated model names (default: all registered)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 50; dry run 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10; dry run 2)")
    parser.add_argument("--num-samples", type=int, default=None, help="FID+IS samples (default 10000; dry run 16)")
    parser.add_argument("--num-reference", type=int, default=None, help="training images for FID (default: all)")
    parser.add_argument("--inception-weights", type=Path, default=None, help="torch-fidelity's InceptionV3 file")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed to each DDP subprocess")
    args = parser.parse_args(argv)
    small = args.dry_run
    args.models = args.models or ("ae,gaia" if small else None)
    args.steps = args.steps or (3 if small else 50)
    args.warmup = args.warmup or (2 if small else 10)
    args.num_samples = args.num_samples or (16 if small else 10_000)  # 299 px Inception: ~0.4 s an image on a core
    args.num_reference = args.num_reference or (16 if small else None)
    args.accelerator = "cpu" if small else "gpu"
    if not small and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run with --dry-run on a CPU machine")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from aegen import console

    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    warnings.filterwarnings("ignore", message=".*(does not have many workers|`trainer.should_stop`).*")
    console.quiet_known_noise()
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as root:
        lines = [*model_table(args, root, errors), "", *ddp_table(args, root, errors), "",
                 *fid_is_line(args, root, errors)]
    gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "none"
    print(f"\ntorch {torch.__version__}, pytorch-lightning {pl.__version__}, GPUs: {gpus}, "
          f"{args.steps} timed steps after {args.warmup}{', dry run (CPU, tiny)' if args.dry_run else ''}")
    print("\n".join(lines))
    for line in errors:
        print(f"note: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
