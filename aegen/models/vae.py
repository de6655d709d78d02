"""Variational autoencoder (Kingma & Welling) and beta-VAE (Higgins et al.) via ``beta``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.losses import gaussian_kl
from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model


def gaussian_posterior(h: Tensor) -> tuple[Tensor, Tensor]:
    """Split an encoder output (B, 2 * latent_dim) into the mean and log-variance of a diagonal Gaussian
    q(z|x); the log-variance is clamped to [-30, 20] so that its exponential stays finite."""
    mu, logvar = h.chunk(2, dim=-1)
    return mu, logvar.clamp(-30, 20)


def reparameterize(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """A draw mu + sigma * eps from N(mu, exp(logvar)) given standard normal noise ``eps``."""
    return mu + (0.5 * logvar).exp() * eps


@register_model("vae")
class VAE(GenerativeAE):
    """Variational autoencoder; --model.beta > 1 gives the beta-VAE."""

    def __init__(self, beta: float = 1.0, **kwargs) -> None:
        """
        Args:
            beta: weight of the KL term (1: the VAE's ELBO; >1: beta-VAE).
        """
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = beta
        self.encoder = ConvEncoder(self.img_shape, 2 * self.latent_dim, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x)."""
        return gaussian_posterior(self.encoder(x))

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    samples_from_code_gaussian = False

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def optimizer_groups(self):
        return {"vae": self.parameters()}

    def elbo_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Reconstruction (squared error summed over pixels) and KL, each averaged over the batch."""
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar, self.randn(*mu.shape))
        recon = F.mse_loss(self.decode(z), x, reduction="none").flatten(1).sum(1).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}

    def elbo_phase(self, x: Tensor) -> dict[str, Tensor]:
        with self.phase("vae") as update:
            terms = self.elbo_terms(x)
            update(terms["loss"])
        return {k: v.detach() for k, v in terms.items()}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.elbo_phase(x)

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        terms = self.elbo_terms(x)
        return {"loss": terms["loss"], "kl": terms["kl"], "recon_mse": F.mse_loss(self.reconstruct(x), x)}
