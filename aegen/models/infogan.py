"""InfoGAN (Chen et al. 2016): an image GAN whose recognition network Q recovers part of G's input.

G maps noise z ~ N(0, I), a categorical code c ~ Cat(K) and continuous codes u ~ U(-1, 1) to an
image; D tells real images from G's; Q shares D's trunk and predicts c (logits) and u (a Gaussian
mean with fixed std, so its NLL is a squared error). The variational bound L_I on I(c, u; G(z, c, u))
is maximised by both players, as in the reference code. Each minibatch runs, in order:

1. ``discriminator_phase``: D and Q minimise BCE(real = 1, fake = 0) + lambda * L_I on G's images.
2. ``generator_phase``: G minimises the non-saturating GAN loss + lambda * L_I.

The paper's MNIST setting: Cat(10), 2 continuous codes, 62-d noise, lambda 1, Adam lr 2e-4 for D
and 1e-3 for G, beta1 0.5, batch 128. The networks are aegen.nets' DCGAN-style conv nets (the
paper's are for 28x28: FC 1024 + two up-convs); D's trunk ends in a 1024-unit layer and Q has a
128-unit hidden layer, as in the paper. The reference code batch-normalises that 1024-unit layer
(``trunk_norm``); aegen's default does not: D sees real and generated images in separate batches, so
the normalisation right before D's output gives both batches nearly the same mean logit, and at the
default budget G learns only noise textures with it (docs/methods/infogan.md has the numbers).

InfoGAN has no encoder, so the autoencoder API is built from Q: ``encode(x)`` returns the inferred
generator input, (zeros for z, softmax(Q_c(x)), Q_u(x)), and ``decode`` is G, so ``reconstruct``
regenerates an image from its inferred codes (with the mean noise). Clusters are argmax Q_c(x) on
real images (the paper's unsupervised MNIST classifier, 5% error).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aegen.losses import adversarial_loss, discriminator_loss, information_loss
from aegen.models.base import GenerativeAE
from aegen.models.info_codes import InfoCodes
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model


@register_model("infogan")
class InfoGAN(InfoCodes, GenerativeAE):
    """InfoGAN: image GAN whose categorical and continuous codes are recovered by Q; clusters = Q's category."""

    samples_from_code_gaussian = False
    #: encode/decode are Q and G, not trained to reconstruct: reconstruct() regenerates from inferred codes
    learns_reconstruction: ClassVar[bool] = False
    #: checkpoints of aegen <= 0.3.0 were trained with D's 1024-unit layer batch-normalised
    added_options: ClassVar[dict] = {"trunk_norm": True}

    def __init__(
        self,
        latent_dim: int = 62,
        num_categories: int = 10,
        num_continuous: int = 2,
        continuous_range: float = 1.0,
        lambda_disc: float = 1.0,
        lambda_cont: float = 1.0,
        disc_hidden: int = 1024,
        q_hidden: int = 128,
        lr: float = 2e-4,
        gen_lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        width: int = 64,
        trunk_norm: bool = False,
        **kwargs,
    ) -> None:
        """
        Args:
            latent_dim: size of the incompressible noise z (paper: 62).
            num_categories: K of the categorical code c ~ Cat(K) (paper: 10).
            num_continuous: number of continuous codes u (paper: 2).
            continuous_range: u ~ U(-range, range) (paper: 1).
            lambda_disc: weight of Q's cross-entropy on c (paper: 1).
            lambda_cont: weight of Q's squared error on u (the Gaussian NLL with unit std, up to constants).
            disc_hidden: width of D's fully connected layer after the convs (paper: 1024).
            q_hidden: width of Q's hidden layer (paper: 128).
            lr: Adam learning rate of D and Q (paper: 2e-4).
            gen_lr: Adam learning rate of G (paper: 1e-3).
            betas: Adam betas (paper: beta1 0.5).
            width: channels of the first conv layer of D (and the last of G); they double per stage.
            trunk_norm: batch-normalise D's 1024-unit layer, as the reference code does (paper preset).
        """
        super().__init__(latent_dim=latent_dim, lr=lr, betas=betas, width=width, **kwargs)
        if num_categories < 2 or num_continuous < 0:
            raise ValueError("num_categories must be at least 2 and num_continuous non-negative")
        if continuous_range <= 0 or lambda_disc < 0 or lambda_cont < 0 or gen_lr <= 0:
            raise ValueError("continuous_range and gen_lr must be positive, the lambdas non-negative")
        self.noise_dim, self.num_categories, self.num_continuous = latent_dim, num_categories, num_continuous
        self.continuous_range, self.lambda_disc, self.lambda_cont = continuous_range, lambda_disc, lambda_cont
        self.code_dim = latent_dim + num_categories + num_continuous
        self.generator = ConvDecoder(self.img_shape, self.code_dim, width=width)
        self.trunk = nn.Sequential(ConvEncoder(self.img_shape, disc_hidden, width=width),
                                   nn.BatchNorm1d(disc_hidden) if trunk_norm else nn.Identity(), nn.LeakyReLU(0.2))
        self.d_head = nn.Linear(disc_hidden, 1)
        self.q_head = nn.Sequential(nn.Linear(disc_hidden, q_hidden), nn.BatchNorm1d(q_hidden), nn.LeakyReLU(0.2),
                                    nn.Linear(q_hidden, num_categories + num_continuous))

    # ----------------------------------------------------------------- networks
    def discriminate(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Images -> (D's real/fake logits (B,), Q's category logits (B, K), Q's continuous means (B, L))."""
        h = self.trunk(x)
        q = self.q_head(h)
        return self.d_head(h).squeeze(-1), q[:, : self.num_categories], q[:, self.num_categories :]

    def codes(self, noise: Tensor, categories: Tensor, continuous: Tensor) -> Tensor:
        """G's input (B, latent_dim + K + L): noise, one-hot categories (B,) and continuous codes."""
        onehot = F.one_hot(categories, self.num_categories).to(noise.dtype)
        return torch.cat([noise, onehot, continuous], dim=1)

    def encode(self, x: Tensor) -> Tensor:
        """Inferred G input: (zeros for the noise, softmax(Q_c(x)), Q_u(x))."""
        _, logits, u = self.discriminate(x)
        return torch.cat([logits.new_zeros(len(x), self.latent_dim), logits.softmax(-1), u], dim=1)

    def decode(self, z: Tensor) -> Tensor:
        """G: generator inputs (B, latent_dim + K + L) -> images."""
        return self.generator(z)

    def cluster_probs(self, x: Tensor) -> Tensor:
        """softmax(Q_c(x)) (B, K) on real images."""
        return self.discriminate(x)[1].softmax(-1)

    # ----------------------------------------------------------------- sampling
    def prior_sample(self, n: int, generator: torch.Generator | None = None, category: int | Tensor | None = None) -> Tensor:
        """G's inputs (n, latent_dim + K + L): ``sample_codes`` (z, c, u), c one-hot; ``category`` fixes c."""
        return self.codes(*self.sample_codes(n, category, generator=generator))

    # ----------------------------------------------------------------- training
    def optimizer_groups(self):
        return {
            "discriminator": [*self.trunk.parameters(), *self.d_head.parameters(), *self.q_head.parameters()],
            "generator": (self.generator.parameters(), {"lr": self.hparams.gen_lr}),
        }

    def training_inputs(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """(z, c, u) from this rank's noise generator (drawn u first, then z and c)."""
        u = self.continuous_codes((n,), self.noise, self.device)
        return self.randn(n, self.latent_dim), self.randint(self.num_categories, n), u

    def information(self, logits: Tensor, c: Tensor, u_pred: Tensor, u: Tensor) -> Tensor:
        """lambda_disc * CE(c) + lambda_cont * MSE(u): minus InfoGAN's L_I up to constants."""
        ce, mse = information_loss(logits, c, u_pred, u)
        return self.lambda_disc * ce + self.lambda_cont * mse

    def discriminator_phase(self, x: Tensor) -> dict[str, Tensor]:
        with self.phase("discriminator") as update:
            z, c, u = self.training_inputs(len(x))
            fake = self.decode(self.codes(z, c, u)).detach()
            real_logit, _, _ = self.discriminate(x)
            fake_logit, logits, u_pred = self.discriminate(fake)
            d_loss = discriminator_loss(real_logit, fake_logit)
            info = self.information(logits, c, u_pred, u)
            update(d_loss + info)
        return {"disc": d_loss.detach(), "info_d": info.detach()}

    def generator_phase(self, n: int) -> dict[str, Tensor]:
        with self.phase("generator") as update:
            z, c, u = self.training_inputs(n)
            fake_logit, logits, u_pred = self.discriminate(self.decode(self.codes(z, c, u)))
            g_loss = adversarial_loss(fake_logit, real=True)
            info = self.information(logits, c, u_pred, u)
            update(g_loss + info)
        return {"gen": g_loss.detach(), "info": info.detach()}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {**self.discriminator_phase(x), **self.generator_phase(len(x))}
