"""Long runs that survive: exact resume, preemption, kills, divergence, concurrent starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aegen.registry import models
from tests.conftest import FAST, REPO, fit_cli, subprocess_env

SMALL = ["--model.width", "8", "--data.batch_size", "32", "--trainer.limit_train_batches", "3",
         "--trainer.limit_val_batches", "1", "--images.num", "4"]
TINY = ["--model.latent_dim", "8", *SMALL]
FONTS = ["--data", "fonts", "--data.num_items", "400", "--data.batch_size", "8"]
#: per-model settings that keep the test tiny (the resume logic is the same at any size)
OPTIONS = {
    "latentgan": ["--model.gan_steps", "2", "--model.restarts", "2"],
    "gsl": FONTS,
    "deae": FONTS,
}


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_state(a: dict, b: dict) -> None:
    """Bitwise-equal weights, buffers and optimiser states."""
    assert a["state_dict"].keys() == b["state_dict"].keys()
    different = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    for i, (oa, ob) in enumerate(zip(a["optimizer_states"], b["optimizer_states"], strict=True)):
        for param, state in oa["state"].items():
            for key, value in state.items():
                assert torch.equal(value, ob["state"][param][key]), f"optimizer {i} {key} of {param}"
        assert [g["lr"] for g in oa["param_groups"]] == [g["lr"] for g in ob["param_groups"]]


def fit(capsys, root: Path, *args: str) -> Path:
    return fit_cli(capsys, "--trainer.default_root_dir", str(root), *args)


@pytest.mark.parametrize("name", sorted(models()))
def test_resume_equals_the_uninterrupted_run(name, capsys, tmp_path):
    """2 epochs in one go == 1 epoch, then resumed to 2 with --ckpt_path last, in the same run folder."""
    args = ["--model", name, *(SMALL if name in ("gsl", "deae") else TINY), *OPTIONS.get(name, [])]
    whole = fit(capsys, tmp_path / "whole", *args, "--trainer.max_epochs", "2")
    first = fit(capsys, tmp_path / "parts", *args, "--trainer.max_epochs", "1")
    resumed = fit(capsys, tmp_path / "parts", *args, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert resumed == first, "the resumed run writes into its own folder"
    assert_same_state(load(whole), load(resumed))
    run = resumed.parent.parent
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    epochs = {line.split(",")[0] for line in (run / "metrics.csv").read_text().splitlines()[1:]}
    assert {"0", "1"} <= epochs, "metrics.csv holds both epochs"


def test_resume_from_the_run_folder_alone_and_refuse_changed_settings(capsys, tmp_path):
    args = ["--model", "ae", *TINY]
    ckpt = fit(capsys, tmp_path, *args, "--trainer.max_epochs", "1")
    run = ckpt.parent.parent
    config = (run / "config.yaml").read_text()
    # nothing but the run folder: its config.yaml supplies the model and data
    assert fit(capsys, tmp_path, "--ckpt_path", str(run), "--trainer.max_epochs", "2") == ckpt
    assert load(ckpt)["epoch"] == 1 and (run / "config.yaml").read_text() == config

    from aegen.cli import main

    assert main(["fit", *FAST, "--trainer.default_root_dir", str(tmp_path), *args, "--model.lr", "0.01",
                 "--trainer.max_epochs", "3", "--ckpt_path", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to resume" in err[0] and "--model.lr" in err[0]


def test_sigterm_inside_an_epoch_resumes_exactly(capsys, tmp_path, monkeypatch):
    """SIGTERM after batch 4 of epoch 0 writes last.ckpt; resuming from it repeats the uninterrupted run."""
    from aegen.models.base import GenerativeAE

    args = ["--model", "aae", *TINY, "--trainer.limit_train_batches", "6", "--trainer.max_epochs", "2"]
    whole = fit(capsys, tmp_path / "whole", *args)
    original = GenerativeAE.on_train_batch_end

    def preempt(self, outputs, batch, batch_idx):
        original(self, outputs, batch, batch_idx)
        if self.current_epoch == 0 and batch_idx == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(GenerativeAE, "on_train_batch_end", preempt)
    # the signal goes to this very process: should Lightning's handler ever be missing, pytest lives on
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        part = fit(capsys, tmp_path / "parts", *args)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert load(part)["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] == 4
    monkeypatch.setattr(GenerativeAE, "on_train_batch_end", original)
    resumed = fit(capsys, tmp_path / "parts", *args, "--ckpt_path", "last")
    assert resumed == part
    assert_same_state(load(whole), load(resumed))


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aegen", "fit", *FAST, "--trainer.default_root_dir", str(tmp_path),
                             *args], cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_saves_a_resumable_checkpoint(capsys, tmp_path):
    args = ["--model", "ae", *TINY, "--trainer.max_epochs", "1000"]
    proc = _start(tmp_path, *args)
    ckpt = tmp_path / "runs" / "ae-digits" / "version_0" / "checkpoints" / "last.ckpt"
    _wait_for(ckpt, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped by a signal" in err and "resume with `aegen fit --ckpt_path" in err
    state = load(ckpt)
    assert state["epoch"] < 50
    # the resumed run needs no process of its own
    assert fit(capsys, tmp_path, "--ckpt_path", "last", "--trainer.max_epochs", str(state["epoch"] + 1)) == ckpt


def test_kill_9_at_random_moments_then_resume(tmp_path):
    """kill -9 at random moments leaves a loadable last.ckpt (atomic writes), and each
    `--ckpt_path last` resumes and trains on (AEGEN_KILL_TRIES kills, default 3)."""
    tries = int(os.environ.get("AEGEN_KILL_TRIES", "3"))
    ckpt = tmp_path / "runs" / "ae-digits" / "version_0" / "checkpoints" / "last.ckpt"
    proc = _start(tmp_path, "--model", "ae", *TINY, "--trainer.limit_train_batches", "2", "--trainer.max_epochs", "100000")
    _wait_for(ckpt, proc)
    generator = torch.Generator().manual_seed(0)
    for _ in range(tries):
        time.sleep(float(torch.rand((), generator=generator)) * 2)
        proc.kill()
        proc.communicate()
        epoch = load(ckpt)["epoch"]  # never half-written
        proc = _start(tmp_path, "--ckpt_path", "last", "--trainer.max_epochs", "100000")
        deadline = time.time() + 120
        while load(ckpt)["epoch"] <= epoch:  # the resumed run trains on from where the kill left it
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "the resumed run wrote no new checkpoint"
            time.sleep(0.1)
    proc.kill()
    proc.communicate()
    assert sorted(p.name for p in ckpt.parents[2].iterdir()) == ["version_0"]


def test_nan_at_a_chosen_step_stops_at_once_and_writes_nothing_bad(capsys, tmp_path, monkeypatch):
    """A NaN in batch 5 of epoch 1 with log_every_n_steps longer than the epoch: caught at that step."""
    from aegen.cli import main
    from aegen.models.ae import AE

    original = AE.training_phases

    def poisoned(self, x, y):
        losses = original(self, x, y)
        if self.current_epoch == 1 and self.trainer.fit_loop.epoch_loop.batch_progress.current.ready == 3:
            losses = {k: v * float("nan") for k, v in losses.items()}
        return losses

    monkeypatch.setattr(AE, "training_phases", poisoned)
    code = main(["fit", *FAST, "--model", "ae", *TINY, "--trainer.limit_train_batches", "5",
                 "--trainer.log_every_n_steps", "50", "--trainer.max_epochs", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "became NaN/inf at epoch 1, batch 2" in err[0] and "last good checkpoint" in err[0]
    for ckpt in Path("runs").rglob("*.ckpt"):
        state = load(ckpt)
        assert state["epoch"] == 0
        assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


@pytest.mark.parametrize("lr", ["1e30", "1e6"])
def test_divergent_learning_rates_exit_non_zero_without_bad_checkpoints(lr, capsys, tmp_path):
    from aegen.cli import main

    code = main(["fit", *FAST, "--model", "ae", "--model.lr", lr, "--trainer.max_epochs", "1",
                 "--trainer.log_every_n_steps", "50", "--model.width", "8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "NaN/inf" in err[0], err
    for ckpt in Path("runs").rglob("*.ckpt"):
        state = load(ckpt)
        assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    if not list(Path("runs").rglob("*.ckpt")):
        assert not list(Path("runs").glob("*/version_*")), "a run that wrote no checkpoint leaves no folder"


def test_concurrent_starts_get_distinct_run_folders(tmp_path):
    procs = [_start(tmp_path, "--model", "ae", *TINY, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1")
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    runs = {line.removeprefix("run: ") for out, _ in outs for line in out.splitlines() if line.startswith("run: ")}
    assert len(runs) == 3
    assert sorted(p.name for p in (tmp_path / "runs" / "ae-digits").iterdir()) == ["version_0", "version_1", "version_2"]


def test_fit_from_a_truncated_or_missing_checkpoint_gets_one_line(capsys, tmp_path):
    from aegen.cli import main

    ckpt = fit(capsys, tmp_path, "--model", "ae", *TINY, "--trainer.max_epochs", "1")
    cut = tmp_path / "truncated.ckpt"
    cut.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    for path, says in ((cut, "truncated.ckpt is not readable"), (tmp_path / "nothing.ckpt", "no checkpoint at")):
        assert main(["fit", *FAST, "--model", "ae", "--ckpt_path", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0] and "Traceback" not in err[0], err
    assert [p.name for p in (tmp_path / "runs").glob("*/version_*")] == ["version_0"], "no run was started"
