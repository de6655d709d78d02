"""How models step (aegen.models.optim): Adam's fast kernels, gradient clipping, the training losses tracked on
the device and logged only when Lightning writes logs, and the compile / channels_last options."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import aegen
from aegen.models.optim import LossTracker, adam
from tests.conftest import TinyBatch

TINY = {"latent_dim": 4, "width": 8}


def trainer(steps: int, tmp_path, **options) -> pl.Trainer:
    return pl.Trainer(**{"max_steps": steps, "accelerator": "cpu", "logger": False, "enable_checkpointing": False,
                         "enable_progress_bar": False, "enable_model_summary": False, "limit_val_batches": 0,
                         "default_root_dir": tmp_path, **options})


def one_step(optimizer_of, lr: float | None = None) -> list[torch.Tensor]:
    """The parameters of a small net after one Adam step (a second after setting its lr, if given)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    optimizer = optimizer_of(net.parameters())
    for step in range(2 if lr is not None else 1):
        if step:
            for group in optimizer.param_groups:
                group["lr"] = lr
        optimizer.zero_grad()
        net(torch.randn(11, 5)).square().mean().backward()
        optimizer.step()
    return [p.detach().clone() for p in net.parameters()]


def test_the_default_adam_is_fused_on_the_cpu_and_steps_as_the_per_tensor_loop(tmp_path):
    model = aegen.get_model("ae")(**TINY)
    trainer(1, tmp_path).fit(model, TinyBatch(batch_size=8))
    (optimizer,) = model.trainer.optimizers
    assert optimizer.defaults["fused"]
    assert adam([nn.Parameter(torch.zeros(2))], fused=False).defaults["foreach"] is True
    settings = {"lr": 1e-2, "betas": (0.5, 0.9)}
    default = one_step(lambda p: adam(p, **settings))
    loop = one_step(lambda p: torch.optim.Adam(p, foreach=False, **settings))
    for a, b in zip(default, loop):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert not torch.equal(default[0], one_step(lambda p: torch.optim.Adam(p, foreach=False, lr=1e-3))[0])


def test_a_learning_rate_set_on_the_param_groups_takes_effect(tmp_path):
    """GAIA rescales ``group["lr"]`` every batch: the multi-tensor Adam reads it at each step."""
    settings = {"lr": 1e-2, "betas": (0.5, 0.9)}
    default = one_step(lambda p: adam(p, **settings), lr=0.3)
    loop = one_step(lambda p: torch.optim.Adam(p, foreach=False, **settings), lr=0.3)
    unchanged = one_step(lambda p: adam(p, **settings), lr=1e-2)
    for a, b in zip(default, loop):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(default[0], unchanged[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fused Adam kernel is used on CUDA")
def test_adam_is_fused_on_cuda_unless_told_otherwise():
    params = [nn.Parameter(torch.randn(3, device="cuda"))]
    assert adam(params, lr=1e-3).defaults["fused"] is True
    assert adam(params, fused=False, lr=1e-3).defaults["foreach"] is True


def test_grad_clip_clips_each_optimiser_step(tmp_path, monkeypatch):
    from aegen.models.optim import PhasedOptimisation

    norms = []
    original = PhasedOptimisation.on_before_optimizer_step

    def record(self, optimizer):
        original(self, optimizer)
        grads = [p.grad.norm() for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norms.append(torch.stack(grads).norm().item())

    monkeypatch.setattr(PhasedOptimisation, "on_before_optimizer_step", record)
    trainer(3, tmp_path).fit(aegen.get_model("aae")(grad_clip=1e-4, **TINY), TinyBatch(batch_size=8))
    assert len(norms) == 3 and all(n == pytest.approx(1e-4, rel=1e-4) for n in norms), norms


def test_loss_tracker_means_every_step_and_finds_the_first_bad_one():
    tracker = LossTracker()
    tracker.add({"a": torch.tensor(1.0), "b": torch.tensor(2.0)}, (0, 0, 0))
    tracker.add({"a": torch.tensor(3.0)}, (0, 1, 2))
    tracker.add({"a": torch.tensor(float("nan")), "b": torch.tensor(4.0)}, (0, 2, 3))
    tracker.add({"a": torch.tensor(float("inf")), "b": torch.tensor(float("nan"))}, (0, 3, 5))
    assert tracker.first_bad() == {"a": [0, 2, 3], "b": [0, 3, 5]}
    tracker.add({"a": torch.tensor(5.0), "b": torch.tensor(7.0)}, (1, 0, 6))  # a new epoch restarts the sums
    tracker.add({"a": torch.tensor(1.0)}, (1, 1, 7))
    assert tracker.means() == {"a": 3.0, "b": 7.0}
    assert tracker.first_bad() == {"a": [0, 2, 3], "b": [0, 3, 5]}  # a NaN is kept for good


def test_losses_are_logged_only_when_lightning_writes_logs_but_averaged_over_every_step(tmp_path, monkeypatch):
    model = aegen.get_model("ae")(**TINY)
    seen, logged = [], []
    phases, log_dict = type(model).training_phases, type(model).log_dict

    def record_phases(self, x, y):
        losses = phases(self, x, y)
        seen.append(losses["recon"].item())
        return losses

    def record_log(self, metrics, *args, **kwargs):
        logged.append((len(seen) - 1, dict(metrics)))  # the index of the step logged
        return log_dict(self, metrics, *args, **kwargs)

    monkeypatch.setattr(type(model), "training_phases", record_phases)
    monkeypatch.setattr(type(model), "log_dict", record_log)
    trainer(7, tmp_path, log_every_n_steps=3, max_epochs=1, limit_train_batches=7).fit(model, TinyBatch(batch_size=2))
    assert [step for step, _ in logged] == [2, 5]  # the steps Lightning's loggers write (every 3rd)
    assert [float(m["train/recon"]) for _, m in logged] == [seen[2], seen[5]]
    assert model.train_means()["train/recon"] == pytest.approx(sum(seen) / 7, rel=1e-6)


def test_by_default_models_train_in_channels_last_memory_format(tmp_path, monkeypatch):
    model = aegen.get_model("ae")(**TINY)
    formats = []
    phases = type(model).training_phases

    def record(self, x, y):
        formats.append(x.is_contiguous(memory_format=torch.channels_last))
        return phases(self, x, y)

    monkeypatch.setattr(type(model), "training_phases", record)
    trainer(2, tmp_path).fit(model, TinyBatch(batch_size=8))
    assert formats == [True, True]
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_model_in_channels_last_returns_contiguous_images():
    """Colour images in channels-last memory format are not contiguous; the public API returns them contiguous,
    so a caller's ``.view`` works."""
    model = aegen.get_model("ae")(img_shape=(3, 16, 16), latent_dim=4, width=4).eval()
    model.use_memory_format()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert not model.decode(model.encode(x)).is_contiguous()
    images = [model.reconstruct(x), model.sample(2), model.interpolate(x, x, 3), model.traversal(x, steps=2)]
    assert all(t.is_contiguous() for t in images)


def test_compile_compiles_each_network_in_place(tmp_path, monkeypatch):
    """``compile`` reaches every network through ``nn.Module.compile`` (a real CPU compile takes minutes, so the
    call is recorded instead), once, and the state dict keeps its keys."""
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    model = aegen.get_model("learned_prior")(compile=True, generator_hidden=(16,), disc_hidden=(16,), **TINY)
    keys = list(model.state_dict())
    model.configure_model()
    model.configure_model()
    assert sorted(compiled) == ["ConvDecoder", "ConvEncoder", "LatentDiscriminator", "MLP"], compiled
    assert list(model.state_dict()) == keys
    compiled.clear()
    trainer(1, tmp_path).fit(aegen.get_model("ae")(compile=True, **TINY), TinyBatch(batch_size=8))
    assert sorted(compiled) == ["ConvDecoder", "ConvEncoder"]
    aegen.get_model("ae")(**TINY).configure_model()
    assert sorted(compiled) == ["ConvDecoder", "ConvEncoder"]  # off by default
