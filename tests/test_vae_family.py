"""beta-TCVAE's decomposition of the KL term and InfoVAE's MMD, on known tensors."""

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import aegen
from aegen.losses import gaussian_mmd
from aegen.models.btcvae import kl_decomposition
from aegen.samplers.latent_gan import LatentGANSampler
from tests.conftest import fast_trainer

TINY = {"img_shape": (1, 16, 16), "latent_dim": 4, "width": 4}


# ----------------------------------------------------------------- beta-TCVAE
def test_mws_terms_of_a_two_item_batch_match_a_hand_computation():
    # codes at their posterior means (0, 0) and (1, 1), unit variances, N = 3: every log q(z_i | x_j) is
    # 2c - |z_i - mu_j|^2 / 2 with c = -log(2 pi) / 2, so the logsumexps are in closed form
    mu = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    parts = kl_decomposition(mu.clone(), mu, torch.zeros(2, 2), dataset_size=3)
    log_nm, pair, single = math.log(6), math.log1p(math.exp(-1)), math.log1p(math.exp(-0.5))
    expected = {"mi": log_nm - pair, "tc": pair - 2 * single + log_nm, "dim_kl": 2 * single - 2 * log_nm + 0.5,
                "kl": 0.5}
    for name, value in expected.items():
        assert parts[name].item() == pytest.approx(value, abs=1e-5), name


def test_mi_tc_and_dimension_wise_kl_sum_to_the_sampled_kl():
    torch.manual_seed(0)
    mu, logvar = torch.randn(7, 5), torch.randn(7, 5) * 0.5
    z = mu + (0.5 * logvar).exp() * torch.randn(7, 5)
    parts = kl_decomposition(z, mu, logvar, dataset_size=1000)
    log_q = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert parts["kl"].item() == pytest.approx((log_q - log_p).mean().item(), abs=1e-5)
    assert (parts["mi"] + parts["tc"] + parts["dim_kl"]).item() == pytest.approx(parts["kl"].item(), abs=1e-5)
    assert parts["tc"].abs().item() > 1e-3 and parts["mi"].abs().item() > 1e-3  # the identity is not trivial
    # a larger dataset moves log q(z) down by the same log N in every term: MI grows, dimension-wise KL shrinks
    bigger = kl_decomposition(z, mu, logvar, dataset_size=2000)
    assert (bigger["mi"] - parts["mi"]).item() == pytest.approx(math.log(2), abs=1e-5)
    assert (bigger["dim_kl"] - parts["dim_kl"]).item() == pytest.approx(-5 * math.log(2), abs=1e-5)


def test_btcvae_loss_weighs_the_total_correlation_by_beta():
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    losses = {}
    for beta in (1.0, 6.0):
        torch.manual_seed(0)
        model = aegen.get_model("btcvae")(beta=beta, dataset_size=50, **TINY).eval()
        losses[beta] = model.elbo_terms(x)
    plain, weighted = losses[1.0], losses[6.0]
    assert plain["loss"].item() == pytest.approx((plain["recon"] + plain["kl"]).item(), rel=1e-5)
    assert (weighted["loss"] - weighted["recon"] - weighted["kl"]).item() == pytest.approx(
        5 * weighted["tc"].item(), rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("given", [None, 123])
def test_btcvae_reads_the_dataset_size_from_the_training_loader(given, tmp_path):
    model = aegen.get_model("btcvae")(dataset_size=given, **TINY)
    data = TensorDataset(torch.rand(22, 1, 16, 16) * 2 - 1, torch.zeros(22))
    fast_trainer(tmp_path, 1).fit(model, DataLoader(data, batch_size=5, drop_last=True))
    assert model.dataset_size == (20 if given is None else given)  # 4 full batches of 5


# ----------------------------------------------------------------- InfoVAE's MMD
def test_mmd_of_two_tiny_samples_matches_a_hand_computation():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [2.0]])  # kernel exp(-d^2): e^-1, e^-4, 1, e^-1
    e1, e4 = math.exp(-1), math.exp(-4)
    assert gaussian_mmd(x, y, 1.0).item() == pytest.approx((2 + 2 * e1) / 4 + (2 + 2 * e4) / 4 - (1 + e4 + 2 * e1) / 2)
    assert gaussian_mmd(x, y, 1.0, unbiased=True).item() == pytest.approx(e1 + e4 - (1 + e4 + 2 * e1) / 2)
    # bandwidth 4 halves every squared distance's exponent twice over: exp(-d^2 / 4)
    assert gaussian_mmd(2 * x, 2 * y, 4.0).item() == pytest.approx(gaussian_mmd(x, y, 1.0).item())


def test_mmd_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    torch.manual_seed(0)
    x, y = torch.randn(400, 8), torch.randn(400, 8)
    s = 2 * 8.0
    assert gaussian_mmd(x, x, s).abs().item() < 1e-5
    kernel = torch.exp(-torch.cdist(x, x).square() / s)
    off_diagonal = (kernel.sum() - len(x)) / (len(x) * (len(x) - 1))
    expected = 2 * (off_diagonal.item() - 1) / len(x)  # the U-statistic of a sample against itself
    assert gaussian_mmd(x, x, s, unbiased=True).item() == pytest.approx(expected, rel=1e-3)
    same = gaussian_mmd(x, y, s, unbiased=True).item()
    near, far = (gaussian_mmd(x, y + shift, s, unbiased=True).item() for shift in (0.5, 1.0))
    assert abs(same) < 5e-3 and far > near > 10 * abs(same)


def test_latent_gan_mmd_keeps_its_kernel_on_rms_distances():
    torch.manual_seed(0)
    real, fake = torch.randn(10, 6), torch.randn(12, 6) + 0.3
    sampler = LatentGANSampler(6, mmd_bandwidths=(0.5, 1.0))
    both = torch.cat([real, fake])
    d2 = ((both[:, None] - both[None]) ** 2).mean(-1)  # squared distance per feature
    kernel = sum(torch.exp(-d2 / (2 * s * s)) for s in (0.5, 1.0))
    expected = kernel[:10, :10].mean() + kernel[10:, 10:].mean() - 2 * kernel[:10, 10:].mean()
    assert sampler.mmd(real, fake).item() == pytest.approx(expected.item(), rel=1e-5)


def test_infovae_with_alpha_0_and_lambda_1_is_the_vae():
    torch.manual_seed(0)
    model = aegen.get_model("infovae")(alpha=0.0, lam=1.0, **TINY).eval()
    terms = model.elbo_terms(torch.rand(6, 1, 16, 16) * 2 - 1)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + terms["kl"]).item(), rel=1e-6)
    assert model.kernel_bandwidth == 16.0  # latent_dim^2


@pytest.mark.parametrize("options", [{"alpha": 1.5}, {"alpha": -1.0, "lam": 1.0}, {"beta": 2.0},
                                     {"kernel_bandwidth": 0.0}])
def test_infovae_rejects_negative_weights(options):
    with pytest.raises(ValueError):
        aegen.get_model("infovae")(**options, **TINY)
