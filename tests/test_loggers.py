"""Image sheets and metrics reach TensorBoard and wandb; the wandb options; ``trainer: {logger: NAME}`` in configs."""

from pathlib import Path

import pytest

from tests.conftest import fit_cli

TINY_FIT = ["--model", "vae", "--model.latent_dim", "8", "--model.width", "8", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--data.batch_size", "16",
            "--images.num", "4"]
SHEETS = {"images/recon", "images/samples", "images/interp"}


def _tensorboard_tags(run: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (run / "tensorboard").glob("events.out.tfevents.*")
    return EventAccumulator(str(events)).Reload().Tags()


def test_tensorboard_gets_the_image_sheets(capsys):
    run = fit_cli(capsys, *TINY_FIT, "--logger", "tensorboard").parent.parent
    tags = _tensorboard_tags(run)
    assert set(tags["images"]) == SHEETS
    assert "hp_metric" not in tags["scalars"]  # hyperparameters go without TensorBoard's placeholder metric


def test_logger_name_in_a_config_file(capsys, tmp_path):
    config = tmp_path / "fit.yaml"
    config.write_text("trainer:\n  logger: tensorboard\n")
    run = fit_cli(capsys, "--config", str(config), *TINY_FIT).parent.parent
    assert set(_tensorboard_tags(run)["images"]) == SHEETS
    # the run's saved config trains again as it was set up
    again = fit_cli(capsys, "--config", str(run / "config.yaml")).parent.parent
    assert again != run and set(_tensorboard_tags(again)["images"]) == SHEETS


def test_wandb_gets_the_sheets_and_options(capsys, monkeypatch):
    from pytorch_lightning import loggers

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    made = []

    class Recording(loggers.WandbLogger):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(loggers, "WandbLogger", Recording)
    with pytest.warns() as caught:
        run = fit_cli(capsys, *TINY_FIT, "--trainer.logger", "wandb", "--wandb.project", "zoo",
                      "--wandb.entity", "lab", "--wandb.tags", "[vae, tiny]").parent.parent
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]
    (options,) = made
    assert (options["project"], options["entity"], options["tags"]) == ("zoo", "lab", ["vae", "tiny"])
    assert options["log_model"] is False and options["offline"]
    (media,) = (run / "wandb").glob("offline-run-*/files/media/images")
    assert {p.name.split("_")[0] for p in media.rglob("*.png")} == {"recon", "samples", "interp"}
