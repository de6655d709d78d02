"""The adversarial autoencoder's options: ``stochastic`` (a Gaussian-posterior encoder)."""

import torch

import aegen
from aegen.models.aae import AAE
from tests.conftest import fit_cli

TINY = {"latent_dim": 8, "width": 8}


def test_deterministic_encoder_by_default():
    model = AAE(**TINY).train()
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    assert model.encoder.head.out_features == 8 and not model.stochastic
    torch.testing.assert_close(model.training_codes(x), model.encode(x), rtol=0, atol=0)


def test_stochastic_codes_vary_between_passes_but_encode_returns_the_mean():
    torch.manual_seed(0)
    model = AAE(stochastic=True, **TINY).train()
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    assert model.encoder.head.out_features == 16  # mean and log-variance
    first, second = model.training_codes(x), model.training_codes(x)
    assert first.shape == (4, 8) and not torch.allclose(first, second)
    mean = model.encode(x)
    torch.testing.assert_close(model.encode(x), mean, rtol=0, atol=0)
    torch.testing.assert_close(mean, model.encoder(x)[:, :8], rtol=0, atol=0)


def test_stochastic_aae_trains_through_the_cli_and_round_trips(capsys):
    ckpt = fit_cli(capsys, "--model", "aae", "--model.stochastic", "true", "--model.latent_dim", "8",
                   "--model.width", "8", "--trainer.max_steps", "6", "--trainer.limit_val_batches", "1",
                   "--data.batch_size", "8")
    loaded = aegen.load(ckpt)
    assert isinstance(loaded, AAE) and loaded.stochastic and not loaded.training
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert saved["hyper_parameters"]["stochastic"] is True
    torch.testing.assert_close(loaded.state_dict(), saved["state_dict"], rtol=0, atol=0)
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    again = AAE.load_from_checkpoint(ckpt, map_location="cpu").eval()
    torch.testing.assert_close(again.reconstruct(x), loaded.reconstruct(x), rtol=0, atol=0)
    assert loaded.sample(2).shape == (2, 1, 32, 32)
