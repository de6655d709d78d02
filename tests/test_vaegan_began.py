"""VAE-GAN's and BEGAN's losses on known tensors; VAE-GAN's per-network gradients; BEGAN's k_t control and API."""

import copy
import math

import pytest
import pytorch_lightning as pl
import torch

import aegen
from aegen.errors import AegenError
from aegen.models.began import convergence, k_update, l1_error
from aegen.models.vaegan import VAEGAN, feature_nll, gan_loss, generator_loss
from tests.conftest import TinyBatch, fast_trainer

TINY = {"latent_dim": 4, "width": 8}


# ----------------------------------------------------------------- VAE-GAN
def test_feature_likelihood_is_half_the_squared_feature_error_summed_per_image():
    f_real = torch.zeros(2, 2, 1, 1)
    f_recon = torch.tensor([1.0, 2.0, 3.0, 0.0]).view(2, 2, 1, 1)
    # image 1: (1 + 4) / 2 = 2.5; image 2: 9 / 2 = 4.5; batch mean 3.5
    assert feature_nll(f_recon, f_real).item() == pytest.approx(3.5)


def test_gan_losses_on_known_logits():
    # Dis(x) = 0.75, Dis(x~) = 0.25, Dis(x_p) = 0.5
    d_real, d_recon, d_prior = torch.tensor([math.log(3)]), torch.tensor([-math.log(3)]), torch.tensor([0.0])
    l_gan = -(math.log(0.75) + math.log(1 - 0.25) + math.log(1 - 0.5))
    assert gan_loss(d_real, d_recon, d_prior).item() == pytest.approx(l_gan, rel=1e-6)
    minimax = math.log(1 - 0.25) + math.log(1 - 0.5)  # -L_GAN without its real term
    assert generator_loss(d_recon, d_prior, "minimax").item() == pytest.approx(minimax, rel=1e-6)
    non_saturating = -(math.log(0.25) + math.log(0.5))
    assert generator_loss(d_recon, d_prior, "non_saturating").item() == pytest.approx(non_saturating, rel=1e-6)


def test_each_network_loss_combines_the_paper_terms():
    torch.manual_seed(0)
    model = VAEGAN(gamma=0.3, **TINY)
    losses = model.losses(torch.rand(4, 1, 32, 32) * 2 - 1)
    assert losses["encoder"].item() == pytest.approx((losses["prior"] + losses["llike"]).item(), rel=1e-6)
    assert losses["decoder"].item() == pytest.approx((0.3 * losses["llike"] + losses["gen"]).item(), rel=1e-6)
    assert losses["discriminator"].item() == losses["gan"].item()


def test_a_training_step_gives_each_network_the_gradient_of_its_own_loss_only(tmp_path):
    torch.manual_seed(0)
    model = VAEGAN(**TINY)
    seen = {}
    step = model.training_phases

    def spy(x, y):  # the batch, weights and noise state the step starts from
        seen.update(x=x.clone(), state=copy.deepcopy(model.state_dict()), rng=model.noise.get_state())
        return step(x, y)

    model.training_phases = spy
    fast_trainer(tmp_path, 1).fit(model, TinyBatch(batch_size=8))
    replica = VAEGAN(**TINY)
    replica.load_state_dict(seen["state"])
    replica.use_memory_format()  # as the trainer set the model up: the same kernels, the same rounding
    replica._noise = torch.Generator().set_state(seen["rng"])
    losses = replica.losses(seen["x"])
    for name in VAEGAN.NETS:
        params = list(getattr(replica, name).parameters())
        expected = torch.autograd.grad(losses[name], params, retain_graph=True)
        for got, want in zip([p.grad for p in getattr(model, name).parameters()], expected):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # the separation matters: the GAN term reaches the encoder and L_llike reaches Dis through the graph
    leaks = [("gen", "encoder"), ("llike", "discriminator")]
    for loss, net in leaks:
        grads = torch.autograd.grad(losses[loss], list(getattr(replica, net).parameters()), retain_graph=True,
                                    allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), (loss, net)


def test_vaegan_rejects_bad_options():
    with pytest.raises(AegenError, match="gen_loss"):
        VAEGAN(gen_loss="wasserstein", **TINY)
    with pytest.raises(AegenError, match="feature_stage must be between 1 and 3"):
        VAEGAN(feature_stage=4, **TINY)


# ----------------------------------------------------------------- BEGAN
def test_k_update_and_convergence_measure_on_known_values():
    k = k_update(torch.tensor(0.5), torch.tensor(0.2), torch.tensor(0.05), gamma=0.5, lambda_k=0.001)
    assert k.item() == pytest.approx(0.5 + 0.001 * (0.5 * 0.2 - 0.05))
    # clipped at 0 (generated images reconstructed far worse than gamma times the real ones) and at 1
    assert k_update(torch.tensor(0.0), torch.tensor(0.1), torch.tensor(0.5), 0.5, 0.1).item() == 0.0
    assert k_update(torch.tensor(0.99), torch.tensor(1.0), torch.tensor(0.0), 0.5, 0.1).item() == 1.0
    assert convergence(torch.tensor(0.2), torch.tensor(0.3), 0.5).item() == pytest.approx(0.2 + abs(0.1 - 0.3))
    assert l1_error(torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)).item() == 1.0


class Logged(pl.Callback):
    """BEGAN's logged real and generated errors and k_t after every step."""

    def __init__(self) -> None:
        self.rows = []

    def on_train_batch_end(self, trainer, *args) -> None:
        self.rows.append({k: float(trainer.callback_metrics[f"train/{k}"]) for k in ("real", "fake", "k", "m_global")})


def test_began_steps_k_by_its_control_law_and_checkpoints_keep_it(tmp_path):
    torch.manual_seed(0)
    gamma, lambda_k = 0.9, 0.5  # a large gain, so k_t moves visibly in a few steps
    model = aegen.get_model("began")(gamma=gamma, lambda_k=lambda_k, **TINY)
    logged = Logged()
    trainer = fast_trainer(tmp_path, 4)
    trainer.callbacks.append(logged)
    trainer.fit(model, TinyBatch(batch_size=8))
    k = 0.0
    for row in logged.rows:
        k = min(max(k + lambda_k * (gamma * row["real"] - row["fake"]), 0.0), 1.0)
        assert row["k"] == pytest.approx(k, abs=1e-6)
        assert row["m_global"] == pytest.approx(row["real"] + abs(gamma * row["real"] - row["fake"]), rel=1e-5)
    assert 0 < k < 1 and model.k.item() == pytest.approx(k, abs=1e-6)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    assert aegen.load(tmp_path / "m.ckpt").k.item() == model.k.item()


def test_began_autoencoder_api_is_d_and_samples_come_from_g():
    torch.manual_seed(0)
    model = aegen.get_model("began")(**TINY).eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(model.reconstruct(x), model.decoder(model.encoder(x)))
    torch.testing.assert_close(model.reconstruct(x), model.discriminator(x))
    z = model.prior_sample(500, torch.Generator().manual_seed(1))
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.9 and z.max() > 0.9
    samples = model.sample(4, torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples, model.generator(z[:4]))
    assert not torch.allclose(samples, model.decoder(z[:4]))
    sheet = model.traversal(steps=3, code=1)
    torch.testing.assert_close(sheet[0, :, :], model.generator(torch.tensor([[0, -1.0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])))


def test_began_nets_have_the_paper_filters_and_an_8x8_map():
    model = aegen.get_model("began")(latent_dim=4, width=2)
    convs = [m.out_channels for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert convs == [2, 2, 2, 4, 4, 4, 6, 6, 6]  # n, then two convs and a stride-2 conv to the next n per scale
    assert model.decoder.head.out_features == 2 * 8 * 8
    assert model.generator(torch.zeros(3, 4)).shape == model.decoder(torch.zeros(3, 4)).shape == (3, 1, 32, 32)


def test_began_rejects_bad_options():
    with pytest.raises(AegenError, match="gamma"):
        aegen.get_model("began")(gamma=0.0, **TINY)
    with pytest.raises(AegenError, match="categorical"):
        aegen.get_model("began")(**TINY).sample(2, category=1)
