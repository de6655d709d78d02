import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parents[1]
FAST = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


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


def run_aegen(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess (as a user would), returning its output."""
    env = {**os.environ, "MASTER_PORT": str(free_port()), "MASTER_ADDR": "127.0.0.1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "aegen", *args], cwd=cwd, env=env, capture_output=True,
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
    """A digits judge (aegen.metrics.judge) trained once per session, briefly; returns its .pt file.

    Its cache key ignores the data root, so copying its folder to ``$AEGEN_DATA/judges`` makes
    evaluations of default-configured digits use it instead of training their own.
    """
    from aegen.data.digits import Digits
    from aegen.metrics.judge import judge_path, save_judge, train_judge

    datamodule = Digits(root=str(tmp_path_factory.mktemp("judge-data")))
    return save_judge(train_judge(datamodule, epochs=4), judge_path(datamodule))


@pytest.fixture
def one_thread():
    """Torch on one thread: judge training is many tiny steps, which two threads on two busy cores slow ~10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
