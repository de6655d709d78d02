"""AGE: adversarial generator-encoder networks (Ulyanov, Vedaldi & Lempitsky 2018).

The encoder e and the generator g play in latent space, with no discriminator. Codes live on the unit
sphere (e's output is normalised; g's inputs z are N(0, I) draws normalised, i.e. uniform on the
sphere). The divergence of a batch of codes from N(0, I) is the KL of the per-dimension Gaussians
N(m_j, s_j^2) fitted to the batch,

    KL(Q || N(0, I)) = sum_j (s_j^2 + m_j^2) / 2 - log s_j - 1/2       (averaged over j here, see below)

and the game value is V = KL(e(g(z)) || N) - KL(e(x) || N): e maximises it, g minimises it. Each
reconstruction term goes to one player: e also minimises lambda * ||x - g(e(x))||_1 and g also minimises
mu * ||z - e(g(z))||^2 (on the sphere, 2 - 2 cos). Per minibatch: one encoder update, then
``generator_updates`` generator updates, each on fresh z. The KL and both reconstruction errors are means
over dimensions (pixels; the code term halved), the scale the weights lambda and mu go with in the authors'
code (github.com/DmitryUlyanov/AGE); the paper sums over dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model


def batch_gaussian_kl(codes: Tensor, eps: float = 1e-8) -> Tensor:
    """KL(N(m_j, s_j^2) || N(0, 1)) of the Gaussians fitted to each dimension j of a batch of codes (B, M)
    (mean m_j, biased variance s_j^2), averaged over the M dimensions."""
    mean, var = codes.mean(0), codes.var(0, unbiased=False)
    return (0.5 * (var + mean.pow(2)) - 0.5 * (var + eps).log() - 0.5).mean()


def code_distance(z: Tensor, codes: Tensor) -> Tensor:
    """||z - c||^2 / (2 M) of unit codes (B, M), averaged over the batch: (1 - cos) / M, the authors' cosine
    matching term ``2 - mean(z * c)`` less its constant, so their weight mu carries over."""
    return 0.5 * (z - codes).pow(2).mean()


def sphere(z: Tensor) -> Tensor:
    """Codes (B, M) projected onto the unit sphere."""
    return F.normalize(z, dim=1)


@register_model("age")
class AGE(GenerativeAE):
    """AGE: encoder and generator play a KL game on the encoded distributions, on the unit sphere."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        image_weight: float = 10.0,
        code_weight: float = 1000.0,
        generator_updates: int = 2,
        generator_image_weight: float = 0.0,
        encoder_norm: str = "none",
        **kwargs,
    ) -> None:
        """
        Args:
            lr: Adam learning rate of encoder and generator (authors' code 2e-4; 1e-3 here so the digits
                train in minutes).
            betas: Adam betas (authors' code beta1 0.5).
            image_weight: lambda, the weight of the encoder's L1 image reconstruction (authors' commands: 10;
                15 when fine-tuning CelebA).
            code_weight: mu, the weight of the generator's squared code reconstruction (authors' code 1000).
            generator_updates: generator updates per encoder update (authors' code: 2 for CIFAR-10, 3 for
                CelebA).
            generator_image_weight: weight of an L1 image reconstruction ||x - g(e(x))||_1 in the generator's
                loss too (the ``match_x`` term of the authors' generator update plan; 0 in the paper's runs).
            encoder_norm: normalisation of the encoder's conv layers: "none" (default) or "batch" (the
                authors' DCGAN encoder). Batch norm standardises real and generated batches each with its own
                statistics, which hides from the encoder the batch statistics its KL game compares; without
                it 50 minibatches of 16 digits cut their reconstruction MSE to 0.30 of its start, against 0.89 with it.
        """
        super().__init__(lr=lr, betas=betas, **kwargs)
        if min(image_weight, code_weight, generator_image_weight) < 0 or generator_updates < 1:
            raise ValueError("the weights must be non-negative and generator_updates at least 1")
        self.encoder = ConvEncoder(self.img_shape, self.latent_dim, width=self.hparams.width, norm=encoder_norm)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)

    def encode(self, x: Tensor) -> Tensor:
        """e(x) on the unit sphere."""
        return sphere(self.encoder(x))

    def decode(self, z: Tensor) -> Tensor:
        """g(z) of codes projected onto the unit sphere (the generator's domain)."""
        return self.decoder(sphere(z))

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Uniform draws on the unit sphere: normalised N(0, I) draws."""
        return sphere(torch.randn(n, self.latent_dim, generator=generator, device=self.device))

    def optimizer_groups(self):
        return {"encoder": self.encoder.parameters(), "generator": self.decoder.parameters()}

    def encoder_phase(self, x: Tensor) -> dict[str, Tensor]:
        """e maximises V = KL(e(g(z))) - KL(e(x)) and minimises lambda * ||x - g(e(x))||_1."""
        with self.phase("encoder") as update:
            codes = self.encode(x)
            kl_real = batch_gaussian_kl(codes)
            with torch.no_grad():
                fake = self.decode(self.prior_sample_train(len(x)))
            kl_fake = batch_gaussian_kl(self.encode(fake))
            recon = F.l1_loss(self.decode(codes), x)
            update(kl_real - kl_fake + self.hparams.image_weight * recon)
        return {"kl_real": kl_real.detach(), "kl_fake": kl_fake.detach(), "recon": recon.detach()}

    def generator_phase(self, x: Tensor) -> dict[str, Tensor]:
        """g minimises KL(e(g(z))) + mu * ||z - e(g(z))||^2 / (2 M) (``code_distance``), plus
        ``generator_image_weight`` * ||x - g(e(x))||_1 when that is set."""
        with self.phase("generator") as update:
            z = self.prior_sample_train(len(x))
            codes = self.encode(self.decode(z))
            kl_gen = batch_gaussian_kl(codes)
            code_recon = code_distance(z, codes)
            loss = kl_gen + self.hparams.code_weight * code_recon
            if self.hparams.generator_image_weight:
                with torch.no_grad():
                    real_codes = self.encode(x)
                loss = loss + self.hparams.generator_image_weight * F.l1_loss(self.decode(real_codes), x)
            update(loss)
        return {"kl_gen": kl_gen.detach(), "code_recon": code_recon.detach()}

    def prior_sample_train(self, n: int) -> Tensor:
        """``prior_sample`` from this rank's noise generator."""
        return sphere(self.randn(n, self.latent_dim))

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses = self.encoder_phase(x)
        for _ in range(self.hparams.generator_updates):
            generated = self.generator_phase(x)
        return {**losses, **generated}

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        mse = F.mse_loss(self.reconstruct(x), x)
        kl_real = batch_gaussian_kl(self.encode(x))
        kl_fake = batch_gaussian_kl(self.encode(self.decode(self.prior_sample_train(len(x)))))
        return {"loss": mse, "recon_mse": mse, "kl_real": kl_real, "kl_fake": kl_fake}
