"""ALI: adversarially learned inference (Dumoulin et al. 2017; BiGAN, Donahue et al. 2017, is the same game).

An encoder G_z(x) = q(z|x) (a Gaussian, sampled by reparameterisation) and a generator G_x(z) = p(x|z)
play against a discriminator D(x, z) that sees joint pairs: (x, z_hat ~ q(z|x)) on the encoder side
and (x_tilde = G_x(z), z ~ N(0, I)) on the decoder side. With rho_q = D(x, z_hat), rho_p = D(x_tilde, z)
(Algorithm 1 of the paper):

    L_D = -mean(log rho_q) - mean(log(1 - rho_p))
    L_G = -mean(log(1 - rho_q)) - mean(log rho_p)       (encoder and generator together)

L_G is the non-saturating form: the labels of L_D swapped. D is conv features of x, an MLP of z and a
joint MLP on their concatenation, with dropout (``aegen.nets.JointDiscriminator``). Algorithm 1 updates
both players from one evaluation of the pairs: the encoder and generator step first, with D frozen, then D
steps on the same pairs, detached (the same gradients as a simultaneous step). ``encode`` returns the mean
of q(z|x); samples decode N(0, I) draws.

By default the encoder and generator also minimise ``recon_weight`` times the pixel MSE of G_x(z_hat)
against x, ALICE's explicit cycle consistency (Li et al. 2017); ``--preset paper`` sets it to 0, ALI's game
alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.models.base import GenerativeAE
from aegen.models.vae import gaussian_posterior, reparameterize
from aegen.nets import ConvDecoder, ConvEncoder, JointDiscriminator
from aegen.registry import register_model


def ali_losses(logits_q: Tensor, logits_p: Tensor) -> tuple[Tensor, Tensor]:
    """(L_D, L_G) from D's logits on encoder pairs (labelled 1 by D) and generator pairs (labelled 0)."""
    d_loss = F.softplus(-logits_q).mean() + F.softplus(logits_p).mean()
    g_loss = F.softplus(logits_q).mean() + F.softplus(-logits_p).mean()
    return d_loss, g_loss


@register_model("ali")
class ALI(GenerativeAE):
    """ALI / BiGAN: a discriminator on (image, code) pairs matches the encoder's and the generator's joints."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        stochastic: bool = True,
        disc_features: int = 256,
        disc_hidden: tuple[int, ...] = (256,),
        dropout: float = 0.2,
        recon_weight: float = 20.0,
        **kwargs,
    ) -> None:
        """
        Args:
            lr: Adam learning rate of D and of the encoder and generator (paper 1e-4; 1e-3 here, like the
                other models, so the digits train in minutes).
            betas: Adam betas (paper beta1 0.5; its beta2 "1e-3" reads as 0.999, see the doc page).
            stochastic: a Gaussian q(z|x) sampled by reparameterisation (ALI); off: a deterministic
                encoder (BiGAN).
            disc_features: width of D's x features and z features before the joint MLP.
            disc_hidden: hidden layers of D's joint MLP.
            dropout: dropout after D's hidden layers (paper 0.2).
            recon_weight: weight of an explicit reconstruction term, mean squared error of G(z_hat)
                against x, added to the encoder and generator's loss (ALICE's explicit cycle
                consistency, Li et al. 2017). The paper: 0; 20 by default: without it, 10 epochs on the
                digits reconstruct another digit for most inputs (see the doc page).
        """
        super().__init__(lr=lr, betas=betas, **kwargs)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if recon_weight < 0:
            raise ValueError(f"recon_weight must be >= 0, got {recon_weight}")
        self.stochastic = stochastic
        outputs = 2 * self.latent_dim if stochastic else self.latent_dim
        self.encoder = ConvEncoder(self.img_shape, outputs, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.discriminator = JointDiscriminator(self.img_shape, self.latent_dim, self.hparams.width, disc_features,
                                                disc_hidden, dropout)

    def encode(self, x: Tensor) -> Tensor:
        """The mean of q(z|x) (the code with ``stochastic`` off)."""
        return gaussian_posterior(self.encoder(x))[0] if self.stochastic else self.encoder(x)

    def posterior_sample(self, x: Tensor) -> Tensor:
        """z_hat ~ q(z|x): mu + sigma * eps (the code itself with ``stochastic`` off)."""
        if not self.stochastic:
            return self.encoder(x)
        mu, logvar = gaussian_posterior(self.encoder(x))
        return reparameterize(mu, logvar, self.randn(*mu.shape))

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def optimizer_groups(self):
        return {"discriminator": self.discriminator.parameters(),
                "generator": [*self.encoder.parameters(), *self.decoder.parameters()]}

    def discriminator_phase(self, x: Tensor, z_hat: Tensor, x_tilde: Tensor, z: Tensor) -> dict[str, Tensor]:
        with self.phase("discriminator") as update:
            d_loss, _ = ali_losses(self.discriminator(x, z_hat.detach()), self.discriminator(x_tilde.detach(), z))
            return {"disc": update(d_loss)}

    def generator_phase(self, x: Tensor, z_hat: Tensor, x_tilde: Tensor, z: Tensor) -> dict[str, Tensor]:
        with self.phase("generator") as update:
            _, g_loss = ali_losses(self.discriminator(x, z_hat), self.discriminator(x_tilde, z))
            if not self.hparams.recon_weight:
                return {"gen": update(g_loss)}
            recon = F.mse_loss(self.decode(z_hat), x)
            update(g_loss + self.hparams.recon_weight * recon)
            return {"gen": g_loss.detach(), "recon": recon.detach()}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        z_hat = self.posterior_sample(x)
        z = self.randn(len(x), self.latent_dim)
        x_tilde = self.decode(z)
        # Algorithm 1's simultaneous update: the encoder and generator step against D (frozen), then D
        # steps on the same pairs, detached; both get the gradients of one joint step
        return {**self.generator_phase(x, z_hat, x_tilde, z), **self.discriminator_phase(x, z_hat, x_tilde, z)}

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        mse = F.mse_loss(self.reconstruct(x), x)
        z = self.randn(len(x), self.latent_dim)
        d_loss, g_loss = ali_losses(self.discriminator(x, self.encode(x)), self.discriminator(self.decode(z), z))
        return {"loss": mse, "recon_mse": mse, "disc": d_loss, "gen": g_loss}
