"""ALI, AGE and AVB: each one's distinctive formula on known tensors, and the update plan of AGE."""

from __future__ import annotations

import math

import pytest
import torch

import aegen
from aegen import presets
from aegen.models.age import batch_gaussian_kl, code_distance
from aegen.models.ali import ali_losses
from aegen.models.avb import adversary_loss, elbo_surrogate
from tests.conftest import fast_trainer

LOGITS_Q = torch.tensor([0.0, math.log(3.0)])  # sigma = 1/2, 3/4
LOGITS_P = torch.tensor([0.0, -math.log(3.0)])  # sigma = 1/2, 1/4


def test_ali_losses_on_known_logits():
    d_loss, g_loss = ali_losses(LOGITS_Q, LOGITS_P)
    # D: -mean(log rho_q) - mean(log(1 - rho_p)) = mean(ln 2, ln 4/3) * 2
    torch.testing.assert_close(d_loss, torch.tensor(math.log(2) + math.log(4 / 3)))
    # E and G, labels swapped: -mean(log(1 - rho_q)) - mean(log rho_p) = mean(ln 2, ln 4) * 2
    torch.testing.assert_close(g_loss, torch.tensor(math.log(2) + math.log(4)))


def test_batch_gaussian_kl_on_known_codes():
    # means (0, 1), biased variances (1, 1): KLs 0 and 1/2, mean 1/4
    torch.testing.assert_close(batch_gaussian_kl(torch.tensor([[1.0, 0.0], [-1.0, 2.0]])), torch.tensor(0.25))
    # means (1, 0), stds (1, 1/2): KLs 1/2 and 1/8 + ln 2 - 1/2
    expected = (0.5 + 0.125 + math.log(2) - 0.5) / 2
    torch.testing.assert_close(batch_gaussian_kl(torch.tensor([[2.0, 0.5], [0.0, -0.5]])), torch.tensor(expected))


def test_age_code_distance_is_the_halved_squared_error_per_dimension():
    z, c = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # ||z - c||^2 = 2 and 0; / (2 M) = 1/2 and 0; batch mean 1/4 = mean((1 - cos) / M)
    torch.testing.assert_close(code_distance(z, c), torch.tensor(0.25))


def test_age_codes_live_on_the_unit_sphere():
    torch.manual_seed(0)
    model = aegen.get_model("age")(latent_dim=4, width=8).eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(model.encode(x).norm(dim=1), torch.ones(3))
    torch.testing.assert_close(model.prior_sample(5).norm(dim=1), torch.ones(5))
    z = torch.randn(3, 4)
    torch.testing.assert_close(model.decode(3 * z), model.decode(z))  # g sees codes projected onto the sphere


def test_age_steps_the_generator_generator_updates_times_per_encoder_update(tiny_batch, trainer):
    model = aegen.get_model("age")(latent_dim=4, width=8, generator_updates=3)
    trainer(8).fit(model, tiny_batch(batch_size=8))  # 2 minibatches of 1 + 3 steps
    steps = {name: model.optimizer(name).optimizer.state_dict()["state"][0]["step"].item()
             for name in model.optimizer_names}
    assert steps == {"encoder": 2, "generator": 6}


def test_avb_adversary_loss_and_elbo_surrogate_on_known_tensors():
    torch.testing.assert_close(adversary_loss(LOGITS_Q, LOGITS_P), torch.tensor(math.log(2) + math.log(4 / 3)))
    x, recon = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    loss, error = elbo_surrogate(x, recon, torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(error, torch.tensor(4.0))  # 4 pixels of squared error 1
    torch.testing.assert_close(loss, torch.tensor(6.0))  # plus the mean of T


def test_avb_optimal_adversary_recovers_the_log_density_ratio():
    """Logistic regression with ``adversary_loss`` on q = N(1, 1/4) against p = N(0, 1), with T quadratic
    in z, converges to log q(z) - log p(z) = ln 2 - 2 (z - 1)^2 + z^2 / 2."""
    gen = torch.Generator().manual_seed(0)
    zq, zp = 1 + 0.5 * torch.randn(20000, generator=gen), torch.randn(20000, generator=gen)
    coef = torch.zeros(3, requires_grad=True)

    def features(z):
        return torch.stack([torch.ones_like(z), z, z * z], 1)

    opt = torch.optim.LBFGS([coef], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = adversary_loss(features(zq) @ coef, features(zp) @ coef)
        loss.backward()
        return loss

    opt.step(closure)
    z = torch.tensor([0.0, 0.5, 1.0, 1.5])
    ratio = math.log(2) - 2 * (z - 1) ** 2 + z**2 / 2
    torch.testing.assert_close(features(z) @ coef.detach(), ratio, atol=0.1, rtol=0)


@pytest.mark.parametrize("name", ["ali", "avb"])
def test_encode_is_deterministic_while_training_codes_are_drawn(name):
    torch.manual_seed(0)
    model = aegen.get_model(name)(latent_dim=4, width=8).eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(model.encode(x), model.encode(x), rtol=0, atol=0)
    model._noise = torch.Generator().manual_seed(0)
    assert not torch.allclose(model.posterior_sample(x), model.posterior_sample(x))


@pytest.mark.parametrize("recon_weight", [0.0, 20.0])
def test_ali_reconstruction_term_alone_moves_the_encoder_and_generator(recon_weight, tiny_batch, tmp_path):
    """With D's last layer at zero its logit is a constant, so ALI's game gives the encoder and generator no
    gradient: after one minibatch they moved only when the reconstruction term is on (the default)."""
    torch.manual_seed(0)
    model = aegen.get_model("ali")(recon_weight=recon_weight, latent_dim=4, width=8)
    torch.nn.init.zeros_(model.discriminator.joint[-1].weight)
    dm = tiny_batch()
    before = [p.detach().clone() for p in [*model.encoder.parameters(), *model.decoder.parameters()]]
    fast_trainer(tmp_path, 2).fit(model, dm)  # ALI steps two optimisers per minibatch
    moved = any(not torch.equal(a, b) for a, b in zip(before, [*model.encoder.parameters(), *model.decoder.parameters()]))
    assert moved == bool(recon_weight)


def test_ali_paper_preset_plays_the_game_alone():
    assert presets.options("ali", "paper")["recon_weight"] == 0
    assert aegen.get_model("ali")().hparams.recon_weight == 20
