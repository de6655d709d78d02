"""Samplers fitted to codes (aegen.samplers): each fits toy codes, samples them, and round-trips through a checkpoint."""

import pytest
import torch

import aegen
from aegen.prior import save_checkpoint
from aegen.samplers import SAMPLERS, GaussianSampler, GMMSampler, LatentGANSampler, build

#: small settings per sampler, for fast fits
SMALL = {"gaussian": {}, "gmm": {"components": 2},
         "latent_gan": {"generator_hidden": (16,), "disc_hidden": (16,), "steps": 5, "batch_size": 32}}


def _codes(n: int = 4000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -0.3, 0.2]])
    return torch.randn(n, 3, generator=g) @ mix.T + torch.tensor([1.0, -2.0, 0.5])


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_table_names_every_sampler():
    assert set(SAMPLERS) == {"gaussian", "gmm", "latent_gan"}
    with pytest.raises(ValueError, match="unknown sampler 'flow'"):
        build({"name": "flow", "dim": 3})


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_fit_sample_and_spec(name):
    torch.manual_seed(0)
    sampler = build({"name": name, "dim": 3, "options": SMALL[name]})
    assert build(sampler.spec()).spec() == sampler.spec()
    sampler.fit(_codes(512))
    samples = sampler.sample(7, _gen())
    assert samples.shape == (7, 3) and torch.isfinite(samples).all()
    torch.testing.assert_close(sampler.sample(7, _gen()), samples, rtol=0, atol=0)  # the generator decides
    with pytest.raises(ValueError, match="codes of size 3, got codes of size 4"):
        sampler.fit(torch.randn(10, 4))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_a_fitted_sampler_travels_with_its_model_checkpoint(name, tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("ae")(latent_dim=3, width=8).eval()
    model.sampler = build({"name": name, "dim": 3, "options": SMALL[name]})
    model.sampler.fit(_codes(256))
    out = save_checkpoint(model, tmp_path / "m.ckpt", data=None, prior={"kind": name})
    for again in (aegen.load(out), type(model).load_from_checkpoint(out, map_location="cpu").eval()):
        assert type(again.sampler) is SAMPLERS[name]
        torch.testing.assert_close(again.sample(3, _gen()), model.sample(3, _gen()), rtol=0, atol=0)


def test_gaussian_recovers_mean_and_covariance_from_batches():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0, 0.5])
    tril = torch.tensor([[1.0, 0, 0], [0.5, 0.3, 0], [-0.2, 0.1, 2.0]])
    codes = mean + torch.randn(20000, 3) @ tril.T
    g = GaussianSampler(3)
    for chunk in codes.split(999):
        g.update(chunk)
    g.fit_updates()
    torch.testing.assert_close(g.mean, mean, atol=0.05, rtol=0)
    torch.testing.assert_close(g.scale_tril @ g.scale_tril.T, tril @ tril.T, atol=0.08, rtol=0)
    samples = g.sample(20000, _gen())
    torch.testing.assert_close(samples.mean(0), mean, atol=0.06, rtol=0)
    whole = GaussianSampler(3)
    whole.fit(codes)  # one batch: the same statistics
    torch.testing.assert_close(whole.scale_tril, g.scale_tril)


def test_gaussian_reduce_sums_statistics_like_ddp():
    a, b = torch.randn(50, 2), torch.randn(70, 2) + 3
    g1, g2 = GaussianSampler(2), GaussianSampler(2)
    g1.update(a)
    g2.update(b)
    other = g2._stats.clone()
    g1.fit_updates(reduce=lambda t: t + other)  # what an all-reduce sum over two ranks returns
    torch.testing.assert_close(g1.mean, torch.cat([a, b]).mean(0))


def test_default_streaming_fit_gathers_the_codes_of_every_process():
    a, b = _codes(300), _codes(300)[:, [1, 0, 2]]
    gathered, alone = GMMSampler(3, components=2), GMMSampler(3, components=2)
    gathered.update(a)
    gathered.fit_updates(gather=lambda t: torch.cat([t, b]))  # what an all-gather over two ranks returns
    alone.fit(torch.cat([a, b]))
    torch.testing.assert_close(gathered.means, alone.means)


@pytest.mark.parametrize("covariance", ["full", "diag", "tied", "spherical"])
def test_gmm_finds_two_clusters(covariance):
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-4.0, 0.0, 1.0], [4.0, 2.0, 1.0]])
    codes = torch.cat([centres[0] + 0.5 * torch.randn(600, 3, generator=g), centres[1] + torch.randn(400, 3, generator=g)])
    gmm = GMMSampler(3, components=2, covariance=covariance)
    gmm.fit(codes)
    order = gmm.means[:, 0].argsort()
    torch.testing.assert_close(gmm.means[order], centres, atol=0.2, rtol=0)
    torch.testing.assert_close(gmm.weights[order], torch.tensor([0.6, 0.4]), atol=0.02, rtol=0)
    samples = gmm.sample(20000, _gen())
    torch.testing.assert_close((samples[:, 0] < 0).float().mean(), torch.tensor(0.6), atol=0.02, rtol=0)


def test_gmm_errors():
    with pytest.raises(ValueError, match="at least 5 codes"):
        GMMSampler(2, components=5).fit(torch.randn(3, 2))
    with pytest.raises(ValueError, match="unknown covariance"):
        GMMSampler(2, covariance="banded")


def test_latent_gan_gaussian_start_is_the_fitted_gaussian_and_whitens_for_d():
    codes = _codes()
    sampler = LatentGANSampler(3, **SMALL["latent_gan"])
    sampler.fit_gaussian(codes)
    samples = sampler.sample(20000, _gen())
    torch.testing.assert_close(samples.mean(0), codes.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), torch.cov(codes.T), atol=0.08, rtol=0)
    white = sampler.whiten(codes)
    torch.testing.assert_close(white.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(white.T), torch.eye(3), atol=1e-3, rtol=0)
    assert {"code_mean", "code_scale_tril"} <= set(sampler.state_dict())  # the start travels with the state


def test_latent_gan_standard_loss_without_gaussian_start_is_the_plain_generator():
    sampler = LatentGANSampler(3, gan_loss="standard", gaussian_start=False, **SMALL["latent_gan"])
    assert "code_mean" not in sampler.state_dict()
    noise = torch.randn(5, 3)
    torch.testing.assert_close(sampler.generate(noise), sampler.code_generator(noise))
    torch.testing.assert_close(sampler.whiten(noise), noise)


def test_latent_gan_mmd_is_zero_on_equal_batches_and_grows_with_a_shift():
    sampler = LatentGANSampler(3, **SMALL["latent_gan"])
    x = torch.randn(64, 16)
    assert sampler.mmd(x, x).abs().item() < 1e-6
    assert sampler.mmd(x, x + 0.5).item() > sampler.mmd(x, x + 0.1).item() > 0


def test_latent_gan_bad_options_raise():
    with pytest.raises(ValueError, match="unknown gan_loss"):
        LatentGANSampler(3, gan_loss="wasserstein")
    with pytest.raises(ValueError, match="noise_dim"):
        LatentGANSampler(3, noise_dim=5)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        LatentGANSampler(3, steps=0)
    LatentGANSampler(3, noise_dim=5, gaussian_start=False)  # a plain generator takes any noise size


@pytest.mark.parametrize("gan_loss", ["mmd", "standard"])
def test_latent_gan_fit_matches_the_codes(gan_loss):
    torch.manual_seed(0)
    codes = torch.randn(512, 2) * torch.tensor([0.3, 2.0]) + torch.tensor([3.0, -1.0])
    sampler = LatentGANSampler(2, generator_hidden=(64,), disc_hidden=(64,), lr=4e-3 if gan_loss == "standard" else 1e-3,
                               gan_loss=gan_loss, gaussian_start=gan_loss == "mmd", steps=200, batch_size=32)
    before = {k: v.clone() for k, v in sampler.code_generator.state_dict().items()}
    sampler.fit(codes)
    assert any(not torch.equal(v, sampler.code_generator.state_dict()[k]) for k, v in before.items())
    samples = sampler.sample(2000, _gen(0))
    torch.testing.assert_close(samples.mean(0), codes.mean(0), atol=0.5, rtol=0)
    assert samples[:, 1].std().item() == pytest.approx(codes[:, 1].std().item(), rel=0.5)
