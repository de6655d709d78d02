"""Adversarial autoencoder (Makhzani et al. 2016): a latent discriminator matches codes to N(0, I).

Each minibatch runs the paper's two phases: the reconstruction phase updates encoder and decoder
on pixel MSE; the regularisation phase first updates the discriminator (prior samples real,
codes fake), then the encoder (the generator) to fool it.

``stochastic`` gives the encoder a Gaussian posterior q(z|x) (Makhzani et al.'s suggestion, the
AAE baseline of the learned-prior AAE paper's Fig. 9): training feeds the decoder and the
discriminator reparameterised draws z = mu + sigma * eps, and ``encode`` returns the mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.losses import adversarial_loss, discriminator_loss
from aegen.models.base import GenerativeAE
from aegen.models.vae import gaussian_posterior, reparameterize
from aegen.nets import ConvDecoder, ConvEncoder, LatentDiscriminator
from aegen.registry import register_model


@register_model("aae")
class AAE(GenerativeAE):
    """Adversarial autoencoder: a latent discriminator pushes codes to a N(0, I) prior."""

    def __init__(self, disc_hidden: tuple[int, ...] = (512, 512), stochastic: bool = False, **kwargs) -> None:
        """
        Args:
            disc_hidden: hidden layer sizes of the latent discriminator.
            stochastic: a Gaussian-posterior encoder (the reparameterisation trick): it outputs a mean
                and a log-variance, training decodes and discriminates draws z = mu + sigma * eps, and
                ``encode`` returns the mean. Off (the default, Makhzani et al.'s main setting): a
                deterministic encoder. The learned-prior AAE paper's Fig. 9 baseline turns it on.
        """
        super().__init__(**kwargs)
        self.stochastic = stochastic
        code_outputs = 2 * self.latent_dim if stochastic else self.latent_dim
        self.encoder = ConvEncoder(self.img_shape, code_outputs, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.discriminator = LatentDiscriminator(self.latent_dim, disc_hidden)

    samples_from_code_gaussian = False

    def encode(self, x: Tensor) -> Tensor:
        """The encoder's code, or with ``stochastic`` the mean of q(z|x)."""
        return gaussian_posterior(self.encoder(x))[0] if self.stochastic else self.encoder(x)

    def training_codes(self, x: Tensor) -> Tensor:
        """The codes training decodes and discriminates: ``encode(x)``, or with ``stochastic`` a draw
        mu + sigma * eps from q(z|x) (eps from the model's noise generator)."""
        if not self.stochastic:
            return self.encode(x)
        mu, logvar = gaussian_posterior(self.encoder(x))
        return reparameterize(mu, logvar, self.randn(*mu.shape))

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def optimizer_groups(self):
        return {
            "autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
            "discriminator": self.discriminator.parameters(),
            "generator": self.encoder.parameters(),
        }

    def reconstruction_phase(self, x: Tensor) -> dict[str, Tensor]:
        """One ``autoencoder`` step on the pixel MSE of ``decode(training_codes(x))``: {"recon": loss}."""
        with self.phase("autoencoder") as update:
            return {"recon": update(F.mse_loss(self.decode(self.training_codes(x)), x))}

    def regularization_phase(self, x: Tensor) -> dict[str, Tensor]:
        """D on prior draws (real) and codes (fake) in one pass, then the encoder fools D. The encoder runs
        once: its weights do not change between the two steps, so D's fakes are the generator's codes detached."""
        prior = self.randn(len(x), self.latent_dim)
        codes = self.training_codes(x)
        with self.phase("discriminator") as update:
            real, fake = self.discriminator(torch.cat([prior, codes.detach()])).chunk(2)
            d_loss = update(discriminator_loss(real, fake))
        with self.phase("generator") as update:
            g_loss = update(adversarial_loss(self.discriminator(codes), real=True))
        return {"disc": d_loss, "gen": g_loss}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {**self.reconstruction_phase(x), **self.regularization_phase(x)}
