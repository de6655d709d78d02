"""Adversarial autoencoder (Makhzani et al. 2016): a latent discriminator matches codes to N(0, I).

Each minibatch runs the paper's two phases: the reconstruction phase updates encoder and decoder
on pixel MSE; the regularisation phase first updates the discriminator (prior samples real,
codes fake), then the encoder (the generator) to fool it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aegen.losses import adversarial_loss, discriminator_loss
from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder, LatentDiscriminator
from aegen.registry import register_model


@register_model("aae")
class AAE(GenerativeAE):
    """Adversarial autoencoder: a latent discriminator pushes codes to a N(0, I) prior."""

    def __init__(self, disc_hidden: tuple[int, ...] = (512, 512), **kwargs) -> None:
        """
        Args:
            disc_hidden: hidden layer sizes of the latent discriminator.
        """
        super().__init__(**kwargs)
        self.encoder = ConvEncoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.discriminator = LatentDiscriminator(self.latent_dim, disc_hidden)

    samples_from_code_gaussian = False

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def optimizer_groups(self):
        return {
            "autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
            "discriminator": self.discriminator.parameters(),
            "generator": self.encoder.parameters(),
        }

    def regularization_phase(self, x: Tensor) -> dict[str, Tensor]:
        with self.phase("discriminator") as update:
            prior = self.randn(len(x), self.latent_dim)
            d_loss = update(discriminator_loss(self.discriminator(prior), self.discriminator(self.encode(x))))
        with self.phase("generator") as update:
            g_loss = update(adversarial_loss(self.discriminator(self.encode(x)), real=True))
        return {"disc": d_loss, "gen": g_loss}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {**self.reconstruction_phase(x), **self.regularization_phase(x)}
