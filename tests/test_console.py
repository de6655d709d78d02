"""``aegen fit``'s console: one plain line per epoch when writing to a log (not a terminal), the mean losses on the
rich bar in a terminal, known third-party noise filtered; validate/test of a checkpoint log into that checkpoint's
run."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import warnings

import pytest

import aegen
from aegen.cli import main
from tests.conftest import subprocess_env

TINY = ["--trainer.accelerator", "cpu", "--model", "ae",
        "--model.latent_dim", "4", "--model.width", "8", "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1", "--data.batch_size", "16"]
#: known third-party messages that buried the useful lines: torch's LeafSpec deprecation, Lightning's
#: litlogger/litmodels tips, a model summary's "Total FLOPs: 0", the CSV logger's false "Previous log files"
NOISE = ("LeafSpec", "Tip:", "litlogger", "litmodels", "Total FLOPs", "FLOPs", "Previous log files")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(stdout, stderr, root folder) of a 2-epoch ``aegen fit`` process logging to TensorBoard, its progress display
    and model summary on, warnings shown as a user sees them."""
    root = tmp_path_factory.mktemp("console")
    env = {**subprocess_env(), "AEGEN_DATA": str(root / "data")}
    del env["PYTHONWARNINGS"]
    result = subprocess.run([sys.executable, "-m", "aegen", "fit", *TINY, "--trainer.max_epochs", "2",
                             "--trainer.log_every_n_steps", "1", "--trainer.logger", "tensorboard",
                             "--trainer.default_root_dir", str(root)],
                            cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, result.stderr, root


def test_known_third_party_noise_is_filtered(fitted):
    out, err, _ = fitted
    assert "Trainable params" in out  # the model summary is there, without its FLOPs
    for noise in NOISE:
        assert noise not in out and noise not in err, (noise, out, err)


def test_the_noise_filters_are_narrow():
    from aegen.console import quiet_known_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()
        leaf = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."
        warnings.warn_explicit(leaf, FutureWarning, "_pytree.py", 21, module="pytorch_lightning.utilities._pytree")
        warnings.warn_explicit(leaf, FutureWarning, "mine.py", 1, module="mine")  # the same text from elsewhere
        warnings.warn_explicit("something else is deprecated", FutureWarning, "_pytree.py", 22,
                               module="pytorch_lightning.utilities._pytree")
    assert [w.filename for w in caught] == ["mine.py", "_pytree.py"]


def test_fit_prints_one_line_per_epoch_and_ends_with_the_checkpoint(fitted):
    out, _, root = fitted
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
    _, _, root = fitted
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


def test_rich_bar_shows_the_epoch_mean_losses_not_v_num(tmp_path, tiny_batch):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from aegen.console import LossBar

    class Record(pl.Callback):
        values: list[float] = []

        def on_train_batch_end(self, trainer, *args):
            self.values.append(float(trainer.callback_metrics["train/recon"]))

    bar, record = LossBar(every=0), Record()
    model = aegen.get_model("ae")(latent_dim=4, width=8)
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", logger=CSVLogger(tmp_path), callbacks=[bar, record],
                         enable_checkpointing=False, enable_model_summary=False, limit_train_batches=3,
                         limit_val_batches=1, log_every_n_steps=1, default_root_dir=tmp_path)
    trainer.fit(model, tiny_batch(batch_size=4))
    shown = bar.get_metrics(trainer, model)
    assert "v_num" not in shown
    assert shown["train/recon"] == f"{sum(record.values) / 3:.4g}"  # EpochLines' mean and format
    assert shown["val/loss"] == f"{trainer.callback_metrics['val/loss'].item():.4g}"


def test_epoch_line_is_the_mean_of_every_step_when_fewer_are_logged(tmp_path, tiny_batch, capsys, monkeypatch):
    import pytorch_lightning as pl

    from aegen.console import EpochLines

    model = aegen.get_model("ae")(latent_dim=4, width=8)
    seen: list[float] = []
    phases = type(model).training_phases

    def record(self, x, y):
        losses = phases(self, x, y)
        seen.append(losses["recon"].item())
        return losses

    monkeypatch.setattr(type(model), "training_phases", record)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, callbacks=[EpochLines()],
                         enable_checkpointing=False, enable_model_summary=False, limit_train_batches=4,
                         limit_val_batches=0, log_every_n_steps=3, default_root_dir=tmp_path)
    trainer.fit(model, tiny_batch(batch_size=4))
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(seen) == 4 and len(set(seen)) == 4
    assert line.split("train/recon ")[1].split()[0] == f"{sum(seen) / 4:.4g}"  # not the one logged step's value
