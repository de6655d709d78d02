"""DCGAN, LSGAN and WGAN-GP: their losses on known outputs, WGAN-GP's gradient penalty and critic schedule, and
the tools on a model without an encoder (interpolate, traverse, predict, evaluate)."""

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import aegen
import aegen.presets
from aegen.cli import main
from aegen.models.wgan_gp import gradient_penalty
from aegen.nets import ConvEncoder
from tests.conftest import TinyBatch, fast_trainer, fit_cli

TINY = {"latent_dim": 8, "width": 8}


def test_dcgan_losses_are_bce_on_known_logits():
    model = aegen.get_model("dcgan")(**TINY)
    real, fake = torch.full((4,), math.log(3.0)), torch.full((4,), -math.log(3.0))  # D(x) = 0.75, D(G(z)) = 0.25
    assert model.d_loss(real, fake).item() == pytest.approx(-math.log(0.75))  # mean of the two halves
    assert model.g_loss(fake).item() == pytest.approx(-math.log(0.25))  # non-saturating: -log D(G(z))


@pytest.mark.parametrize("coding, d_loss, g_loss", [
    ({}, 1.25, 0.5),  # the paper's a = -1, b = 1, c = 0: 1/2 mean(0, 1) + 1/2 mean(0, 4); 1/2 mean(1, 1)
    ({"a": 0.0, "b": 1.0, "c": 1.0}, 0.75, 1.0),  # 0-1 coding: 1/2 mean(0, 1) + 1/2 mean(1, 1); 1/2 mean(4, 0)
])
def test_lsgan_least_squares_losses_on_known_outputs(coding, d_loss, g_loss):
    model = aegen.get_model("lsgan")(**TINY, **coding)
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    assert model.d_loss(real, fake).item() == pytest.approx(d_loss)
    assert model.g_loss(fake).item() == pytest.approx(g_loss)


def test_gradient_penalty_of_a_linear_critic_is_the_norm_of_its_weights_minus_one_squared():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([[3.0, 0, 0, 4.0] + [0.0] * 8]))  # ||w|| = 5 at every point
    real, fake = torch.randn(6, 3, 2, 2), torch.randn(6, 3, 2, 2)
    penalty = gradient_penalty(critic, real, fake, torch.rand(6))
    assert penalty.item() == pytest.approx((5 - 1) ** 2)
    penalty.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||: the penalty trains the critic
    expected = 2 * (5 - 1) * torch.tensor([3.0, 0, 0, 4.0] + [0.0] * 8) / 5
    torch.testing.assert_close(critic[1].weight.grad[0], expected)


def test_gradient_penalty_uses_the_interpolates_between_real_and_fake():
    critic = lambda x: (x**2).sum((1, 2, 3))  # gradient 2x: norm 2 ||x^||
    real, fake = torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)
    penalty = gradient_penalty(critic, real, fake, torch.tensor([0.25, 1.0]))  # x^ = 0.25, 1: norms 0.5, 2
    assert penalty.item() == pytest.approx(((0.5 - 1) ** 2 + (2 - 1) ** 2) / 2)


def test_wgan_gp_runs_n_critic_critic_steps_per_generator_step(tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("wgan_gp")(**TINY, n_critic=5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.discriminator.modules())
    trainer = fast_trainer(tmp_path, 12)  # 12 optimiser steps: 10 critic steps and 2 generator steps
    trainer.fit(model, TinyBatch(batch_size=4))
    steps = {name: max(int(s["step"]) for s in model.optimizer(name).optimizer.state.values())
             for name in ("critic", "generator")}
    assert steps == {"critic": 10, "generator": 2} and model.critic_steps == 10
    assert model.training_state() == {"critic_steps": 10}
    model.load_training_state({"critic_steps": 3}, mid_epoch=True)
    assert model.critic_steps == 3


def test_wgan_gp_layer_norm_critic_and_the_paper_defaults():
    model = aegen.get_model("wgan_gp")(**TINY, critic_norm="layer")
    norms = [m for m in model.discriminator.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == 1 for m in norms)  # layer norm over (C, H, W)
    paper = aegen.get_model("wgan_gp")(**aegen.presets.options("wgan_gp", "paper"))
    assert (paper.gp_weight, paper.n_critic, paper.hparams.lr, tuple(paper.hparams.betas)) == (10.0, 5, 1e-4, (0.0, 0.9))
    assert isinstance(paper.discriminator, ConvEncoder) and paper.latent_dim == 128 and paper.prior == "normal"


def test_dcgan_draws_100_d_uniform_codes_and_initialises_from_n_0_002():
    model = aegen.get_model("dcgan")()
    z = model.prior_sample(2000, torch.Generator().manual_seed(0))
    assert z.shape == (2000, 100) and z.min() >= -1 and z.max() <= 1 and abs(z.std().item() - 1 / math.sqrt(3)) < 0.01
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))])
    assert abs(weights.std().item() - 0.02) < 0.002
    normal = aegen.get_model("dcgan")(prior="normal").prior_sample(2000, torch.Generator().manual_seed(0))
    assert normal.min() < -2 and abs(normal.std().item() - 1) < 0.02


@pytest.fixture
def judged(digits_judge):
    """The test run's digits judge under this test's data root."""
    shutil.copytree(digits_judge.parent, Path(os.environ["AEGEN_DATA"]) / "judges")


def test_tools_on_a_model_without_an_encoder(capsys, tmp_path, judged):
    ckpt = fit_cli(capsys, "--model", "dcgan", "--model.latent_dim", "8", "--model.width", "8",
                   "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
                   "--trainer.limit_val_batches", "1", "--data.batch_size", "16")
    assert main(["interpolate", str(ckpt), "--out", "interp.png", "--pairs", "2", "--steps", "3"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dcgan has no encoder; interpolating between generator inputs instead"]
    assert (tmp_path / "interp.png").is_file()
    assert main(["traverse", str(ckpt), "--out", "trav.png"]) == 0 and (tmp_path / "trav.png").is_file()
    for argv in (["predict", str(ckpt), "--out", "codes.pt"], ["traverse", str(ckpt), "--image", "0"],
                 ["interpolate", str(ckpt), "--path", "neighbours"]):
        assert main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("aegen: error: dcgan has no encoder"), lines

    assert main(["evaluate", str(ckpt), "--out", "ev", "--num_samples", "200", "--interp_samples", "200"]) == 0
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["fid_judge"] > 0 and saved["interp_fid_judge"] > 0 and "recon_mse" not in saved
    assert saved["skipped"]["recon"] == "dcgan has no encoder: it cannot encode or reconstruct test images"
    assert saved["interp_between"].startswith("generator inputs") and "cluster" in saved["skipped"]
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "- `recon`: dcgan has no encoder" in report and not (tmp_path / "ev" / "reconstructions.png").exists()
    assert (tmp_path / "ev" / "interpolations.png").is_file() and (tmp_path / "ev" / "traversals.png").is_file()
