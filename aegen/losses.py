"""Losses shared by several methods."""

from __future__ import annotations

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
