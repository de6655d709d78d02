"""A guard on every registered model's defaults: a short run at its default learning rate, width and code size
must make it learn, so that a default that breaks training fails here rather than in a user's first hour.

Models whose full default runs reconstruct (``RECORDED``): ``aegen fit --model NAME``'s first ``EPOCHS`` epochs
(digits at their default batch, seed 0, the model's defaults) must bring ``val/recon_mse`` to the threshold
recorded from the full runs of the defaults table: 1.5 times the largest value any of its 5 seeds had after
the same epochs (``python experiments/guard_thresholds.py DIR`` prints them from ``reproduce.py defaults --out
DIR``; torch's default threads there, one thread here).

The others have no reconstruction curve in the full runs to record from (the GANs without an encoder; InfoGAN,
whose Q only infers its codes) or train on fonts (deae, gsl: a full default run takes 5 to 7 minutes). They
train ``STEPS`` optimiser steps on 16 digits (factor models: 48 fonts items at 16 px, minibatches of 8 groups),
and the pixel MSE of their (eval-mode) reconstructions of those images (for the GANs without an encoder, the
MSE between their mean sample and the images' mean) must fall below ``RATIO`` times its value at
initialisation. InfoGAN is checked on its logged information loss instead (``LOGGED``: the mean of its last
5 minibatch values against its first 5). These thresholds come from the short runs themselves (seed 0, one
thread; the ratios in ``MEASURED``): ``RATIO`` (0.8) sits well above them, so only a default that stops
training (or slows it several-fold) fails.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

import aegen
from aegen.registry import models
from tests.conftest import TinyBatch, fast_trainer

DEFAULT_MODELS = sorted(n for n, cls in models().items() if cls.__module__.startswith("aegen."))
EPOCHS = 3
#: val/recon_mse thresholds after EPOCHS epochs: 1.5 x the largest of the full default runs' 5 seeds
#: (experiments/guard_thresholds.py on the defaults table's runs)
RECORDED = {"aae": 0.49, "aae_cluster": 0.405, "acai": 0.271, "ae": 0.091, "age": 0.796, "ali": 0.191, "avb": 0.114,
            "began": 0.315, "btcvae": 0.139, "codegen_aae": 0.165, "gaia": 0.245, "infovae": 0.11, "latentgan": 0.292,
            "learned_prior": 0.091, "vae": 0.097, "vaegan": 0.276, "vamp": 0.126}
STEPS = 100
RATIO = 0.8
LOGGED = {"infogan": "info"}  # models checked on a logged training loss
RATIO_OF = {"infogan": 0.95}  # its information loss falls slowly at the default lr (2e-4): measured 0.84
#: after / before of each short-run model's checked loss in the runs the ratios come from
MEASURED = {"dcgan": 0.65, "deae": 0.07, "gsl": 0.07, "infogan": 0.84, "lsgan": 0.39,
            "wgan_gp": 0.12}  # the GANs without an encoder: mean-sample MSE


class Logged(pl.Callback):
    """The logged training loss ``train/KEY`` after every minibatch."""

    def __init__(self, key: str) -> None:
        self.key, self.values = f"train/{key}", []

    def on_train_batch_end(self, trainer, *args) -> None:
        if self.key in trainer.callback_metrics:
            self.values.append(float(trainer.callback_metrics[self.key]))


def datamodule(cls):
    if getattr(cls, "requires_factors", False):
        return aegen.get_data("fonts")(image_size=16, num_items=48, batch_size=8)
    return TinyBatch(batch_size=16)


def checked_error(model, x: torch.Tensor) -> float | None:
    """The error the guard watches (eval mode): the reconstruction MSE of ``x``; for a model without an encoder,
    the MSE between the mean of 64 samples and the mean image of ``x``; None for a model checked on a logged
    loss."""
    model.eval()
    with torch.no_grad():
        if not model.has_encoder:
            return F.mse_loss(model.sample(64, torch.Generator().manual_seed(0)).mean(0), x.mean(0)).item()
        return F.mse_loss(model.reconstruct(x), x).item() if getattr(model, "learns_reconstruction", True) else None


def test_every_model_has_a_guard():
    """A new model gets a recorded threshold or a short-run ratio, and no entry names a model that is gone."""
    assert set(RECORDED).isdisjoint(MEASURED)
    assert set(RECORDED) | set(MEASURED) == set(DEFAULT_MODELS)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_first_epochs_at_the_defaults_reach_the_full_runs(name, tmp_path):
    """``aegen fit --model NAME --seed_everything 0`` (digits) for EPOCHS epochs: val/recon_mse <= RECORDED."""
    pl.seed_everything(0, verbose=False)
    dm = aegen.get_data("digits")()
    model = aegen.get_model(name)(img_shape=dm.img_shape, num_classes=dm.num_classes)
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, dm)
    error = float(trainer.callback_metrics["val/recon_mse"])
    assert error <= RECORDED[name], f"{name}: val/recon_mse {error:.3f} after {EPOCHS} epochs > {RECORDED[name]}"


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_a_short_run_at_the_defaults_learns(name, tmp_path):
    torch.manual_seed(0)
    cls = aegen.get_model(name)
    dm = datamodule(cls)
    dm.setup("fit")
    x = dm.tensors("train", 16)[0]
    model = cls(img_shape=(dm.channels, dm.image_size, dm.image_size))
    before = checked_error(model, x)
    model.train()
    losses = Logged(LOGGED.get(name, "recon"))
    trainer = fast_trainer(tmp_path, STEPS)
    trainer.callbacks.append(losses)
    trainer.fit(model, dm)
    model.eval()
    if name in LOGGED:
        first, last = sum(losses.values[:5]) / 5, sum(losses.values[-5:]) / 5
        assert last < RATIO_OF.get(name, RATIO) * first, f"{name}: train/{LOGGED[name]} {first:.4f} -> {last:.4f}"
    elif before is not None:
        after = checked_error(model, x)
        assert after < RATIO_OF.get(name, RATIO) * before, f"{name}: checked MSE {before:.4f} -> {after:.4f} (ratio {after / before:.2f})"
