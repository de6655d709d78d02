"""Losses shared by several methods."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def adversarial_loss(logits: Tensor, real: bool) -> Tensor:
    """Non-saturating BCE: the loss for ``logits`` to be judged real (True) or fake (False)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D minimises BCE(real=1, fake=0), averaged over the two halves."""
    return 0.5 * (adversarial_loss(real_logits, True) + adversarial_loss(fake_logits, False))


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per item, summed over dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


def gaussian_mmd(x: Tensor, y: Tensor, bandwidths: float | Sequence[float], unbiased: bool = False) -> Tensor:
    """Squared MMD between samples x (n, D) and y (m, D) under the kernel sum_s exp(-|a - b|^2 / s) over the
    ``bandwidths`` s. unbiased: the U-statistic (within-sample pairs i != j only; can be negative), else the
    V-statistic (all pairs; 0 for x equal to y)."""
    both = torch.cat([x, y])
    d2 = torch.cdist(both, both).square()
    scales = [bandwidths] if isinstance(bandwidths, (int, float)) else bandwidths
    kernel = sum(torch.exp(-d2 / s) for s in scales)
    n, m = len(x), len(y)
    kxx, kyy, kxy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    if min(n, m) < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples on each side, got {n} and {m}")
    within = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * kxy.mean()


def information_loss(
    cat_logits: Tensor | list[Tensor],
    categories: Tensor,
    cont_pred: Tensor | None = None,
    continuous: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """InfoGAN's variational lower bound on I(c; G(z, c)) as two losses to minimise (Chen et al. 2016).

    ``cat_logits``: Q's logits for each categorical code ((B, K) or a list of them), ``categories``
    the drawn indices (B,) or (B, num_codes); ``cont_pred``/``continuous``: Q's predictions of the
    continuous codes and the drawn values (B, L). Returns (cross-entropy, summed over categorical
    codes; squared error, mean over the batch and continuous codes: the Gaussian NLL with a fixed
    std, up to constants).
    """
    logits = [cat_logits] if isinstance(cat_logits, Tensor) else list(cat_logits)
    categories = categories.view(len(categories), -1)
    if len(logits) != categories.shape[1]:
        raise ValueError(f"{len(logits)} categorical heads but {categories.shape[1]} categorical codes")
    ce = torch.stack([F.cross_entropy(lg, categories[:, i]) for i, lg in enumerate(logits)]).sum()
    if cont_pred is None or cont_pred.numel() == 0:
        return ce, ce.new_zeros(())
    return ce, F.mse_loss(cont_pred, continuous)
