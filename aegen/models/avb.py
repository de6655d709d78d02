"""AVB: adversarial variational Bayes (Mescheder, Nowozin & Geiger 2017).

The encoder is implicit: z = E(x, eps) with noise eps ~ N(0, I) as an input, so q(z|x) has no density.
An adversary T(x, z) learns the log-density ratio log q(z|x) - log p(z) by logistic regression
(eq. 3.3 of the paper), telling (x, z ~ q(z|x)) from (x, z ~ p(z) = N(0, I)):

    max_T  E_x E_{z~q(z|x)} log sigma(T(x, z)) + E_x E_{z~p(z)} log(1 - sigma(T(x, z)))

whose optimum is T*(x, z) = log q(z|x) - log p(z). The encoder and decoder maximise the ELBO with T in
place of the KL's log-ratio (eq. 3.7): E_x E_eps [-T(x, E(x, eps)) + log p(x | E(x, eps))]; here
-log p(x|z) is the squared error summed over pixels, as in aegen's VAE, so that with the optimal T
the objective is the VAE's. Algorithm 1 steps both from the same samples: the autoencoder phase
(T frozen) runs first, then the adversary phase on the same, detached, codes, which gives both
the gradients of a simultaneous update. ``encode`` returns E(x, 0), the code of the mean noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aegen.models.base import GenerativeAE
from aegen.nets import MLP, ConvDecoder, ConvEncoder, JointDiscriminator
from aegen.registry import register_model


def adversary_loss(t_posterior: Tensor, t_prior: Tensor) -> Tensor:
    """T's logistic loss (minus eq. 3.3): codes from q(z|x) labelled 1, codes from p(z) labelled 0."""
    return F.softplus(-t_posterior).mean() + F.softplus(t_prior).mean()


def elbo_surrogate(x: Tensor, recon: Tensor, t_posterior: Tensor) -> tuple[Tensor, Tensor]:
    """(negative ELBO with T for the log-ratio, reconstruction): squared error summed over pixels plus
    T(x, z), both averaged over the batch."""
    error = F.mse_loss(recon, x, reduction="none").flatten(1).sum(1).mean()
    return error + t_posterior.mean(), error


class NoisyEncoder(nn.Module):
    """z = E(x, eps): conv features of x concatenated with noise eps, then an MLP (an implicit q(z|x))."""

    def __init__(self, img_shape: tuple[int, int, int], latent_dim: int, noise_dim: int, width: int,
                 hidden: int = 256) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvEncoder(img_shape, hidden, width=width), nn.LeakyReLU(0.2))
        self.head = MLP(hidden + noise_dim, [hidden], latent_dim, activation="leaky_relu")

    def forward(self, x: Tensor, eps: Tensor) -> Tensor:
        return self.head(torch.cat([self.features(x), eps], dim=1))


@register_model("avb")
class AVB(GenerativeAE):
    """AVB: a VAE with an implicit encoder whose KL term an adversary T(x, z) estimates."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        noise_dim: int = 16,
        lr: float = 1e-3,
        adversary_lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        adversary_features: int = 256,
        adversary_hidden: tuple[int, ...] = (256,),
        **kwargs,
    ) -> None:
        """
        Args:
            noise_dim: size of the encoder's noise input eps (authors' MNIST code: 16).
            lr: Adam learning rate of encoder and decoder (authors' code 1e-4; 1e-3 here so the digits
                train in minutes).
            adversary_lr: Adam learning rate of T (authors' code 2e-4).
            betas: Adam betas (authors' code beta1 0.5).
            adversary_features: width of T's x features and z features before its joint MLP.
            adversary_hidden: hidden layers of T's joint MLP.
        """
        super().__init__(lr=lr, betas=betas, **kwargs)
        if noise_dim < 1 or adversary_lr <= 0:
            raise ValueError("noise_dim must be a positive integer and adversary_lr positive")
        self.noise_dim = noise_dim
        self.encoder = NoisyEncoder(self.img_shape, self.latent_dim, noise_dim, self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.adversary = JointDiscriminator(self.img_shape, self.latent_dim, self.hparams.width, adversary_features,
                                            adversary_hidden)

    def encode(self, x: Tensor) -> Tensor:
        """E(x, 0): the code of the mean noise."""
        return self.encoder(x, x.new_zeros(len(x), self.noise_dim))

    def posterior_sample(self, x: Tensor) -> Tensor:
        """z = E(x, eps), eps from this rank's noise generator."""
        return self.encoder(x, self.randn(len(x), self.noise_dim))

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def optimizer_groups(self):
        return {"autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
                "adversary": (self.adversary.parameters(), {"lr": self.hparams.adversary_lr})}

    def autoencoder_phase(self, x: Tensor, z: Tensor) -> dict[str, Tensor]:
        with self.phase("autoencoder") as update:
            t = self.adversary(x, z)
            loss, recon = elbo_surrogate(x, self.decode(z), t)
            update(loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl_estimate": t.mean().detach()}

    def adversary_phase(self, x: Tensor, z: Tensor) -> dict[str, Tensor]:
        with self.phase("adversary") as update:
            prior = self.randn(len(x), self.latent_dim)
            return {"adversary": update(adversary_loss(self.adversary(x, z.detach()), self.adversary(x, prior)))}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        z = self.posterior_sample(x)
        return {**self.autoencoder_phase(x, z), **self.adversary_phase(x, z)}

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        z = self.posterior_sample(x)
        t = self.adversary(x, z)
        loss, _ = elbo_surrogate(x, self.decode(z), t)
        return {"loss": loss, "kl_estimate": t.mean(), "recon_mse": F.mse_loss(self.reconstruct(x), x)}
