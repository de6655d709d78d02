"""Every registered model trains under mixed precision with manual optimisation: bf16-mixed, and float16 with
Lightning's gradient scaler (a CPU scaler, and 16-mixed on CUDA where available); gradient clipping sees the
unscaled gradients."""

from __future__ import annotations

import math
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import MixedPrecision, Precision
from torch import nn
from torch.utils.data import DataLoader

import aegen
from aegen.models.optim import PhasedOptimisation
from aegen.registry import models
from tests.conftest import TinyBatch

MODELS = sorted(n for n, cls in models().items() if cls.__module__.startswith("aegen."))
#: per-model options that keep a few steps small (one latent-GAN update per minibatch, tiny GANs and blocks)
OPTIONS = {
    "latentgan": {"gan_steps": 1, "restarts": 2},
    "learned_prior": {"generator_hidden": (16,), "disc_hidden": (16,)},
    "deae": {"latent_dim": 7, "blocks": {"letter": 2, "font": 2, "size": 1, "font_colour": 1, "background_colour": 1}},
    "gsl": {"latent_dim": 7, "blocks": {"letter": 2, "font": 2, "size": 1, "font_colour": 1, "background_colour": 1}},
}


class Losses(pl.Callback):
    """Every logged ``train/*`` value (log_every_n_steps 1 logs every step)."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/"):
                self.values.setdefault(key, []).append(float(value))


def fit(name: str, precision: Any, accelerator: str, tmp_path, **options) -> tuple[aegen.GenerativeAE, Losses]:
    cls = aegen.get_model(name)
    if getattr(cls, "requires_factors", False):
        dm = aegen.get_data("fonts")(image_size=16, num_items=48, batch_size=8)
    else:
        dm = TinyBatch(batch_size=8, image_size=16)
    model = cls(img_shape=(dm.channels, 16, 16), **{"latent_dim": 4, "width": 8, **OPTIONS.get(name, {}), **options})
    losses = Losses()
    precision = {"plugins": [precision]} if isinstance(precision, Precision) else {"precision": precision}
    trainer = pl.Trainer(max_steps=4, accelerator=accelerator, devices=1, **precision, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, log_every_n_steps=1, callbacks=[losses], default_root_dir=tmp_path)
    trainer.fit(model, dm)
    return model, losses


def assert_finite(model: aegen.GenerativeAE, losses: Losses) -> None:
    assert losses.values and all(math.isfinite(v) for vs in losses.values.values() for v in vs), losses.values
    means = model.train_means()
    assert means and all(math.isfinite(v) for v in means.values()), means
    assert all(p.isfinite().all() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_bf16_mixed_trains_every_model_on_the_cpu(name, tmp_path):
    torch.manual_seed(0)
    model, losses = fit(name, "bf16-mixed", "cpu", tmp_path)
    assert_finite(model, losses)


def cpu_16_mixed() -> MixedPrecision:
    """Lightning's float16 precision with a CPU gradient scaler: the scaler's path through manual optimisation
    (scaled backward, unscale, skipped steps), runnable without CUDA."""
    return MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))


@pytest.mark.parametrize("name", MODELS)
def test_float16_with_a_gradient_scaler_trains_every_model_on_the_cpu(name, tmp_path):
    torch.manual_seed(0)
    model, losses = fit(name, cpu_16_mixed(), "cpu", tmp_path)
    assert_finite(model, losses)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="16-mixed (float16 with a gradient scaler) needs CUDA")
@pytest.mark.parametrize("name", MODELS)
def test_16_mixed_trains_every_model_with_the_gradient_scaler(name, tmp_path):
    torch.manual_seed(0)
    model, losses = fit(name, "16-mixed", "gpu", tmp_path)
    assert_finite(model, losses)
    assert model.trainer.precision_plugin.scaler is not None


def clipped_norms(monkeypatch) -> list[float]:
    """The gradient norm of every optimiser step, read after ``grad_clip`` has clipped it (non-finite ones: steps
    the gradient scaler skips)."""
    from aegen.models.optim import PhasedOptimisation

    norms: list[float] = []
    original = PhasedOptimisation.on_before_optimizer_step

    def record(self, optimizer) -> None:
        original(self, optimizer)
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads])).item())

    monkeypatch.setattr(PhasedOptimisation, "on_before_optimizer_step", record)
    return norms


@pytest.mark.parametrize("name", ["ae", "gaia"])
def test_16_mixed_clips_the_unscaled_gradients_under_the_gradient_scaler(name, tmp_path, monkeypatch):
    """Under float16 with a gradient scaler (a CPU one here, so it runs anywhere), ``grad_clip`` clips after the
    scaler unscales (the norm is the clip value, not the value over the loss scale); GAIA steps two
    optimisers from one backward pass."""
    norms = clipped_norms(monkeypatch)
    torch.manual_seed(0)
    model, losses = fit(name, cpu_16_mixed(), "cpu", tmp_path, grad_clip=1e-3)
    finite = [n for n in norms if math.isfinite(n)]  # a step with inf/NaN gradients is skipped by the scaler
    assert len(norms) == 4 and len(finite) >= 2 and all(n == pytest.approx(1e-3, rel=1e-3) for n in finite), norms
    assert_finite(model, losses)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="16-mixed (float16 with a gradient scaler) needs CUDA")
def test_16_mixed_clips_the_unscaled_gradients_on_cuda(tmp_path, monkeypatch):
    norms = clipped_norms(monkeypatch)
    model, _ = fit("ae", "16-mixed", "gpu", tmp_path, grad_clip=1e-3)
    finite = [n for n in norms if math.isfinite(n)]
    assert finite and all(n == pytest.approx(1e-3, rel=1e-3) for n in finite), norms
    assert not model.trainer.optimizers[0].defaults["fused"]  # a fused Adam unscales inside its step: no clipping


class TwoNets(PhasedOptimisation):
    """Two linear nets stepped by two optimisers from one backward pass, with lr 0: every step's gradients are
    the batch sum of the inputs. The optimisers are the multi-tensor Adam, which the scaler unscales before the
    step (a fused Adam unscales inside its kernel, where the gradients cannot be seen)."""

    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters({"lr": 0.0, "betas": (0.9, 0.999), "grad_clip": None})
        self.automatic_optimization = False
        self.a, self.b = nn.Linear(3, 1, bias=False), nn.Linear(3, 1, bias=False)
        self.grads: list[tuple[str, torch.Tensor]] = []

    def optimizer_groups(self) -> dict:
        return {"a": (self.a.parameters(), {"foreach": True}), "b": (self.b.parameters(), {"foreach": True})}

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        with self.phase("a", "b") as update:
            update(self.a(batch).sum() + self.b(batch).sum())

    def on_before_optimizer_step(self, optimizer) -> None:  # after the scaler's unscale
        net = "a" if optimizer.param_groups[0]["params"][0] is self.a.weight else "b"
        self.grads.append((net, optimizer.param_groups[0]["params"][0].grad.clone()))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(torch.ones(4, 3), batch_size=4)


def test_optimisers_stepped_from_one_backward_pass_are_unscaled_by_the_scale_it_used(tmp_path):
    """Lightning updates the gradient scaler after each optimiser's step; with a growth interval of 1 the scale
    doubles after the first, and the second optimiser's gradients must still come out unscaled."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=1)
    model = TwoNets()
    pl.Trainer(max_steps=6, accelerator="cpu", plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
               logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
               default_root_dir=tmp_path).fit(model)
    assert [net for net, _ in model.grads] == ["a", "b"] * 3
    assert all(torch.equal(grad, torch.full((1, 3), 4.0)) for _, grad in model.grads), model.grads
    assert scaler.get_scale() == 2.0**14  # grown at each of the six updates
