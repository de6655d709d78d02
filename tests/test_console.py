"""``aegen fit`` writing to a log (not a terminal): one plain line per epoch; validate/test of a checkpoint
log into that checkpoint's run."""

from __future__ import annotations

import contextlib
import csv
import io
import re

import pytest

from aegen.cli import main

TINY = ["--trainer.accelerator", "cpu", "--trainer.enable_model_summary", "false", "--model", "ae",
        "--model.latent_dim", "4", "--model.width", "8", "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1", "--data.batch_size", "16"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(stdout of a 2-epoch fit with the progress bar on, its root folder)."""
    root = tmp_path_factory.mktemp("console")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.chdir(root)
        mp.setenv("AEGEN_DATA", str(root / "data"))
        assert main(["fit", *TINY, "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1",
                     "--trainer.default_root_dir", str(root)]) == 0
    return out.getvalue(), root


def test_fit_prints_one_line_per_epoch_and_ends_with_the_checkpoint(fitted):
    out, root = fitted
    lines = out.strip().splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2, out
    assert re.match(r"epoch 0  step 2  train/recon [\d.]+  val/loss [\d.]+  [\d.]+s$", epochs[0]), epochs[0]
    assert epochs[1].startswith("epoch 1  step 4  ")
    # the epoch's mean of the logged steps (every step logged here)
    rows = list(csv.DictReader(open(next(root.glob("runs/ae-digits/version_*/metrics.csv")))))
    recon = [float(r["train/recon"]) for r in rows if r.get("train/recon") and int(r["step"]) < 2]
    assert len(recon) == 2
    assert epochs[0].split("train/recon ")[1].split()[0] == f"{sum(recon) / 2:.4g}"
    assert lines[-3].startswith("best val/loss ") and ".ckpt" in lines[-3]
    assert lines[-1].startswith("checkpoint: ") and lines[-1].endswith("last.ckpt")
    assert "\r" not in out and "\x1b[" not in out  # no redrawn bar, no colour codes


def test_validate_and_test_log_into_the_checkpoints_run(fitted, monkeypatch):
    _, root = fitted
    monkeypatch.chdir(root)
    monkeypatch.setenv("AEGEN_DATA", str(root / "data"))
    (ckpt,) = root.glob("runs/ae-digits/version_*/checkpoints/last.ckpt")
    run = ckpt.parents[1]
    before = sorted(p.name for p in run.parent.iterdir())
    for command in ("validate", "test"):
        assert main([command, *TINY, "--trainer.default_root_dir", str(root), "--ckpt_path", str(ckpt)]) == 0
        assert (run / "eval" / command / "metrics.csv").is_file()
    assert sorted(p.name for p in run.parent.iterdir()) == before  # no new version_N
    assert main(["validate", *TINY, "--trainer.default_root_dir", str(root), "--ckpt_path", str(ckpt)]) == 0  # again
