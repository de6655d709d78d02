"""Unsupervised clustering with an adversarial autoencoder (Makhzani et al. 2016, section 6).

The encoder outputs a softmax cluster code y = q(y|x) over K clusters and a style code z; the
decoder reconstructs x from (y, z). Two adversaries shape the codes: one makes y look like
one-hot draws from Cat(K), the other makes z look like N(0, I). Each minibatch runs the paper's
phases in order:

1. ``reconstruction_phase``: encoder and decoder minimise the pixel MSE.
2. ``regularization_phase``: the two discriminators learn prior draws = real, codes = fake; then
   the encoder (the generator) learns to fool both.

Clusters are argmax q(y|x). The paper reports 9.55% MNIST error with 16 clusters and 4.10% with
30, each cluster labelled by its most confident validation example (``cluster_error_aae``). The
paper's nets are MLPs with two 3000-unit layers; these are aegen.nets' conv encoder and decoder
and MLP discriminators (``disc_hidden``). Optimiser: Adam (the paper used SGD with momentum).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.losses import adversarial_loss, discriminator_loss
from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder, LatentDiscriminator
from aegen.registry import register_model


@register_model("aae_cluster")
class ClusteringAAE(GenerativeAE):
    """Clustering AAE: q(y|x) adversarially matched to Cat(K) plus a N(0, I) style code; clusters = q(y|x)."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        num_clusters: int = 10,
        disc_hidden: tuple[int, ...] = (1000, 1000),
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        **kwargs,
    ) -> None:
        """
        Args:
            num_clusters: K, the number of clusters (paper: 16 or 30; 10 makes the one-to-one
                Hungarian error comparable with LatentGAN and InfoGAN).
            disc_hidden: hidden sizes of both latent discriminators.
            lr: Adam learning rate of every phase.
            betas: Adam betas.

        ``latent_dim`` is the size of the style code z; ``encode`` returns (y, z), K + latent_dim values.
        """
        super().__init__(lr=lr, betas=betas, **kwargs)
        if num_clusters < 2:
            raise ValueError(f"num_clusters must be at least 2, got {num_clusters}")
        self.num_clusters = num_clusters
        code_dim = num_clusters + self.latent_dim
        self.encoder = ConvEncoder(self.img_shape, code_dim, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, code_dim, width=self.hparams.width)
        self.cat_discriminator = LatentDiscriminator(num_clusters, disc_hidden)
        self.gauss_discriminator = LatentDiscriminator(self.latent_dim, disc_hidden)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(y|x) (B, K), a softmax, and the style z (B, latent_dim)."""
        h = self.encoder(x)
        return h[:, : self.num_clusters].softmax(-1), h[:, self.num_clusters :]

    def encode(self, x: Tensor) -> Tensor:
        """(q(y|x), z): (B, K + latent_dim), the codes ``decode`` takes."""
        return torch.cat(self.posterior(x), dim=1)

    def cluster_probs(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def prior_sample(self, n: int, generator: torch.Generator | None = None, category: int | Tensor | None = None) -> Tensor:
        """(one-hot y ~ Cat(K), z ~ N(0, I)); ``category`` (an int or (n,) indices) fixes y."""
        device = self.device if generator is None else generator.device
        y = torch.randint(self.num_clusters, (n,), generator=generator, device=device)
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        if category is not None:
            y = torch.as_tensor(category, device=device).long().expand(n)
            if int(y.min()) < 0 or int(y.max()) >= self.num_clusters:
                raise ValueError(f"clusters must be in [0, {self.num_clusters}), got {y.unique().tolist()}")
        return torch.cat([F.one_hot(y, self.num_clusters).float(), z], dim=1).to(self.device)

    # ----------------------------------------------------------------- training
    def optimizer_groups(self):
        return {
            "autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
            "discriminator": [*self.cat_discriminator.parameters(), *self.gauss_discriminator.parameters()],
            "generator": self.encoder.parameters(),
        }

    def regularization_phase(self, x: Tensor) -> dict[str, Tensor]:
        """Each discriminator on prior draws (real) and the encoder's outputs (fake) in one pass, then the
        encoder fools both. The encoder runs once: its weights do not change between the two steps."""
        n = len(x)
        y, z = self.posterior(x)
        with self.phase("discriminator") as update:
            prior_y = F.one_hot(self.randint(self.num_clusters, n), self.num_clusters).float()
            d_cat = discriminator_loss(*self.cat_discriminator(torch.cat([prior_y, y.detach()])).chunk(2))
            prior_z = self.randn(n, self.latent_dim)
            d_gauss = discriminator_loss(*self.gauss_discriminator(torch.cat([prior_z, z.detach()])).chunk(2))
            update(d_cat + d_gauss)
        with self.phase("generator") as update:
            g_loss = update(adversarial_loss(self.cat_discriminator(y), real=True)
                            + adversarial_loss(self.gauss_discriminator(z), real=True))
        return {"disc_cat": d_cat.detach(), "disc_gauss": d_gauss.detach(), "gen": g_loss}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {**self.reconstruction_phase(x), **self.regularization_phase(x)}
