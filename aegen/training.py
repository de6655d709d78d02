"""What keeps long runs alive: run folders, exact resume, preemption and the divergence guard.

- ``reserve_version``: a run's ``version_N`` folder is created with an exclusive ``mkdir``, so
  concurrent starts never share one.
- ``resolve_resume``: ``--ckpt_path last``, a run folder or a checkpoint file -> the checkpoint,
  and ``changed_settings`` refuses a resume whose settings differ from the run's config.yaml
  (only trainer limits such as ``max_epochs`` may change).
- ``rng_record`` / ``restore_rng``: every random number generator a step depends on, saved per
  process in each checkpoint (``GenerativeAE`` does this), so a resumed run repeats the
  uninterrupted one bit for bit on CPU.
- ``AtomicCheckpointIO``: checkpoints are written to a temporary file beside the target and
  renamed into place, so a kill at any moment leaves the previous checkpoint intact.
- ``plain``: hyperparameters as plain Python types, for weights-only checkpoints.
- ``Preemption``: SIGTERM (and SIGUSR1 outside SLURM) saves ``last.ckpt`` at the end of the
  current batch and stops the run cleanly.
"""

from __future__ import annotations

import csv
import os
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import yaml
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from aegen.errors import AegenError
from aegen.io import save_atomic

LAST = "last.ckpt"
#: trainer settings a resumed run may change: limits and display, nothing the weights depend on
RESUMABLE_TRAINER_KEYS = {
    "max_epochs", "min_epochs", "max_steps", "min_steps", "max_time", "limit_val_batches", "limit_test_batches",
    "limit_predict_batches", "enable_progress_bar", "enable_model_summary", "num_sanity_val_steps", "logger",
    "callbacks", "devices", "num_nodes", "accelerator", "strategy", "default_root_dir", "profiler",
    "log_every_n_steps", "fast_dev_run", "plugins", "sync_batchnorm", "use_distributed_sampler",
}
#: data settings that do not change what a model sees
RESUMABLE_DATA_KEYS = {"root", "download", "num_workers", "pin_memory", "device_cache"}


# ---------------------------------------------------------------------- run folders
def is_rank_zero() -> bool:
    """Whether this process is the first of its job (before any process group exists)."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def reserve_version(parent: str | Path) -> int:
    """Create the next free ``parent/version_N`` with an exclusive mkdir (retrying on a collision)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    taken = [p.name.removeprefix("version_") for p in parent.glob("version_*")]
    version = max((int(t) for t in taken if t.isdigit()), default=-1) + 1
    while True:
        try:
            (parent / f"version_{version}").mkdir()
            return version
        except FileExistsError:
            version += 1


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, but a run's existing metrics.csv is continued, not deleted."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = next(csv.reader(f), [])


class RunCSVLogger(CSVLogger):
    """``CSVLogger`` that appends to the metrics.csv of the run it continues."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/x.ckpt`` with ``<run>/config.yaml``)."""
    checkpoint = Path(checkpoint)
    run = checkpoint.parent.parent
    if checkpoint.parent.name == "checkpoints" and (run / "config.yaml").is_file():
        return run
    return None


def resolve_resume(value: str, root: Path, run_name: str | None = None) -> Path | None:
    """``--ckpt_path`` -> a checkpoint file.

    ``last``: the newest ``last.ckpt`` under ``root/runs/<run_name>/`` (any run when ``run_name`` is
    None), or None when there is none; a run folder: its ``checkpoints/last.ckpt``; else the file.
    """
    if value == "last":
        pattern = f"{run_name or '*'}/version_*/checkpoints/{LAST}"
        found = sorted((root / "runs").glob(pattern), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None
    path = Path(value)
    if path.is_dir():
        for candidate in (path / "checkpoints" / LAST, path / LAST):
            if candidate.is_file():
                return candidate
        raise AegenError(f"--ckpt_path {value}: no checkpoints/{LAST} in that folder; pass a run folder "
                         "(runs/<model>-<data>/version_N) or a .ckpt file")
    from aegen.checkpoint import read_checkpoint

    read_checkpoint(path)  # one-line errors for missing, truncated or foreign files
    return path


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): tree}


def changed_settings(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Settings of ``new`` that differ from a run's ``saved`` config and may not change on resume."""

    def relevant(key: str) -> bool:
        top, _, rest = key.partition(".")
        last = rest.rsplit(".", 1)[-1]
        if top == "trainer":
            return rest.split(".")[0] not in RESUMABLE_TRAINER_KEYS
        if top == "data":
            return last not in RESUMABLE_DATA_KEYS
        return top in ("model", "seed_everything")

    old, now = _flatten(saved), _flatten(new)
    keys = sorted(k for k in old.keys() | now.keys() if relevant(k) and old.get(k) != now.get(k))
    return [f"--{k.replace('init_args.', '')} {old.get(k)!r} -> {now.get(k)!r}" for k in keys]


def read_config(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f) or {}


# ---------------------------------------------------------------------- random state
def rng_record(noise: torch.Generator) -> dict[str, Any]:
    """This process's random number generators (the model's noise, torch, CUDA, numpy, Python)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    record = {
        "noise": noise.get_state(),
        "noise_device": str(noise.device),
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        record["cuda"] = torch.cuda.get_rng_state_all()
    return record


def restore_rng(record: dict[str, Any], noise: torch.Generator) -> None:
    """Undo ``rng_record``: set every generator to the saved state."""
    noise.set_state(record["noise"])
    torch.set_rng_state(record["torch"])
    n = record["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    python = record["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in record and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(record["cuda"])


def gather_per_process(record: Any) -> list[Any]:
    """``[record of process 0, record of process 1, ...]``; every process must call it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, record)
        return out
    return [record]


# ---------------------------------------------------------------------- divergence guard
class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but through a temporary file in the checkpoint's own folder."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        save_atomic(checkpoint, path)


# ---------------------------------------------------------------------- preemption
class Preemption(pl.Callback):
    """SIGTERM or SIGUSR1 (SLURM, Kubernetes): save ``last.ckpt`` after the current batch and stop.

    Lightning turns SIGTERM into a clean stop at the end of the batch (``SIGTERMException``); this
    callback writes the resumable checkpoint then. SIGUSR1 is sent on as SIGTERM, except under
    SLURM with auto-requeue, where Lightning's own handler saves and requeues the job.
    """

    def __init__(self) -> None:
        self.saved: Path | None = None
        self._previous: Any = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        import threading

        if (stage == "fit" and hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)):
            self._previous = signal.signal(signal.SIGUSR1, lambda *_: os.kill(os.getpid(), signal.SIGTERM))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous is not None:  # the process's own SIGUSR1 handling again after the run
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        folder = next((c.dirpath for c in trainer.checkpoint_callbacks if c.dirpath), None)
        if folder is None:
            return
        self.saved = Path(folder) / LAST
        trainer.save_checkpoint(self.saved)


def plain(value: Any) -> Any:
    """Hyperparameters as plain Python types (safe for a weights-only checkpoint): also subclasses
    of int, float and str (e.g. jsonargparse's ``PositiveInt``) become the type itself."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and type(value) is not str:
        return str.__str__(value)
    if isinstance(value, (int, float)) and type(value) not in (bool, int, float):
        return (int if isinstance(value, int) else float)(value)
    return value
