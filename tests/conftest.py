import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import aegen
import tests.test_user_model  # noqa: F401  (a user's own model: registered before the model-generic tests collect)
from aegen.data.base import AEDataModule

os.environ.setdefault("WANDB_MODE", "disabled")
# One thread: the test models are tiny, so a second thread gains little even on a quiet machine,
# and two threads on busy cores (another process running) make each step ~10x slower.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
FAST = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


class TinyBatch(AEDataModule):
    """The same 16 digits for train, val and test (``image_size`` px): for overfitting and quick fits."""

    channels = 1
    registry_name = "digits"

    def load_splits(self):
        images, labels = aegen.get_data("digits")(image_size=self.image_size).split("train")
        images, labels = images[:16], labels[:16]
        return {name: (images, labels) for name in ("train", "val", "test")}


def fast_trainer(root: Path, steps: int, val_batches: int = 0) -> pl.Trainer:
    """A CPU trainer for ``steps`` optimiser steps without logger, checkpoints or progress bar; the training
    losses reach ``callback_metrics`` at every step."""
    return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False, log_every_n_steps=1,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=val_batches,
                      default_root_dir=root)


@pytest.fixture
def tiny_batch():
    """``tiny_batch(batch_size=16, image_size=32)``: a TinyBatch datamodule."""
    return lambda batch_size=16, image_size=32: TinyBatch(batch_size=batch_size, image_size=image_size)


@pytest.fixture
def trainer(tmp_path):
    """``trainer(steps, val_batches=0)``: a fast CPU trainer writing under this test's directory."""
    return lambda steps, val_batches=0: fast_trainer(tmp_path, steps, val_batches)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test runs in its own directory with its own data root."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AEGEN_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("AEGEN_DEBUG", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    """The environment of a CLI subprocess: a free DDP port, one torch thread per process, this checkout importable."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "MASTER_PORT": str(free_port()), "MASTER_ADDR": "127.0.0.1", "PYTHONWARNINGS": "ignore",
            "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def run_aegen(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess (as a user would), returning its output."""
    return subprocess.run([sys.executable, "-m", "aegen", *args], cwd=cwd, env=subprocess_env(), capture_output=True,
                          text=True, timeout=timeout)


def fit_cli(capsys, *args: str) -> Path:
    """`aegen fit` in-process; returns the checkpoint path printed on the last line."""
    from aegen.cli import main

    assert main(["fit", *FAST, *args]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("checkpoint: ")
    return Path(last.removeprefix("checkpoint: "))


@pytest.fixture(scope="session")
def digits_judge(tmp_path_factory) -> Path:
    """A digits judge (aegen.metrics.judge) trained once per test run, briefly; returns its .pt file.

    It is a stand-in: trained for 4 epochs but saved under the default judge's key (its ``.json`` keeps
    its own key), and the key ignores the data root, so copying its folder to ``$AEGEN_DATA/judges``
    makes evaluations of default-configured digits use it instead of training their own.
    """
    from aegen.data.digits import Digits
    from aegen.metrics.judge import judge_path, save_judge, train_judge

    datamodule = Digits(root=str(tmp_path_factory.mktemp("judge-data")))
    return save_judge(train_judge(datamodule, epochs=4), judge_path(datamodule))


@pytest.fixture
def one_thread():
    """Torch on one thread (the suite's default, kept by this fixture whatever a test sets before): judge
    training is many tiny steps, which two threads on two busy cores slow ~10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_ae_checkpoint(root: Path) -> Path:
    """Train a tiny AE for two steps on digits through ``aegen fit`` in ``root`` (its own data cache);
    return its last.ckpt. For module-scoped fixtures (``tmp_path_factory.mktemp(...)``)."""
    from aegen.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("AEGEN_DATA", str(root / "data"))
        assert main(["fit", *FAST, "--model", "ae", "--model.latent_dim", "4", "--model.width", "8",
                     "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                     "--trainer.limit_val_batches", "1", "--data.batch_size", "16",
                     "--trainer.default_root_dir", str(root)]) == 0
    (path,) = root.glob("runs/ae-digits/version_*/checkpoints/last.ckpt")
    return path
