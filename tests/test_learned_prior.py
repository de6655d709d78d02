"""The latent-GAN prior's Gaussian start, whitening and MMD generator loss (aegen.models.learned_prior)."""

import pytest
import pytorch_lightning as pl
import torch

import aegen
from aegen.models.learned_prior import LearnedPrior


def _codes(n: int = 4000, dim: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -0.3, 0.2]])
    return torch.randn(n, dim, generator=g) @ mix.T + torch.tensor([1.0, -2.0, 0.5])


def _prior(**options) -> LearnedPrior:
    return LearnedPrior(base="ae", latent_dim=3, width=8, train_base=False, generator_hidden=(16,),
                        disc_hidden=(16,), **options)


def test_gaussian_start_is_the_fitted_gaussian_and_whitens_for_d():
    codes = _codes()
    model = _prior().eval()
    model.fit_code_whitening(codes)
    samples = model.prior_sample(20000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples.mean(0), codes.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), torch.cov(codes.T), atol=0.08, rtol=0)
    white = model.whiten(codes)
    torch.testing.assert_close(white.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(white.T), torch.eye(3), atol=1e-3, rtol=0)
    # the buffers travel with the state dict
    assert {"code_mean", "code_scale_tril"} <= set(model.state_dict())


def test_standard_loss_without_gaussian_start_is_the_plain_generator():
    model = _prior(gan_loss="standard", gaussian_start=False).eval()
    assert "code_mean" not in model.state_dict()
    noise = torch.randn(5, 3)
    torch.testing.assert_close(model.generate_codes(noise), model.code_generator(noise))
    torch.testing.assert_close(model.whiten(noise), noise)


def test_mmd_is_zero_on_equal_batches_and_grows_with_a_shift():
    model = _prior()
    x = torch.randn(64, 16)
    assert model.mmd(x, x).abs().item() < 1e-6
    assert model.mmd(x, x + 0.5).item() > model.mmd(x, x + 0.1).item() > 0


def test_bad_gan_options_raise():
    with pytest.raises(ValueError, match="unknown gan_loss"):
        _prior(gan_loss="wasserstein")
    with pytest.raises(ValueError, match="noise_dim"):
        _prior(noise_dim=5)
    _prior(noise_dim=5, gaussian_start=False)  # a plain generator takes any noise size


@pytest.mark.parametrize("gan_loss", ["mmd", "standard"])
def test_prior_fit_fits_the_start_updates_only_g_and_d(gan_loss, tmp_path):
    torch.manual_seed(0)
    codes = _codes(512)
    model = _prior(gan_loss=gan_loss, prior_lr=1e-3)
    model.base.encode = lambda x: codes[torch.randint(len(codes), (len(x),))]  # a known code distribution
    base = {k: v.clone() for k, v in model.base.state_dict().items()}
    generator = {k: v.clone() for k, v in model.code_generator.state_dict().items()}
    trainer = pl.Trainer(max_steps=20, max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(model, aegen.get_data("digits")(batch_size=32))
    assert all(torch.equal(v, model.base.state_dict()[k]) for k, v in base.items())  # the base is frozen
    assert any(not torch.equal(v, model.code_generator.state_dict()[k]) for k, v in generator.items())
    assert (model.code_mean - codes.mean(0)).norm() < 0.5  # fitted on_train_start to the training codes
    samples = model.eval().prior_sample(2000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples.mean(0), codes.mean(0), atol=0.5, rtol=0)
