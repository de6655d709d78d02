"""A latent GAN on the codes: a code generator trained against a discriminator of codes.

A code generator G (MLP, Gaussian noise -> code) is trained adversarially against a latent
discriminator D that sees the encoder's codes as real and G's as fake, the decoder untouched: a
latent GAN as in the LatentGAN autoencoder and the learned-prior AAE's code generator. By default
(``gaussian_start``, ``gan_loss="mmd"``) G starts as the Gaussian fitted to the codes
(``G(n) = mean + L (n + MLP(n))``, the MLP's last layer at zero), D sees whitened codes and is
trained with the usual real/fake loss, and G minimises a Gaussian-kernel MMD between D's
penultimate features of real and generated codes (kernel feature matching, the MMD-GAN generator
loss on D's features). The plain non-saturating loss (``gan_loss="standard"``,
``gaussian_start=False``) drifts away from the codes on small data: with 1,437 digits, codes in
64 dimensions, D memorises the real set and G chases it (`aegen prior` on the 20-epoch digits ae,
code 64: judge-FID 21 against 6.2 for the ae's own Gaussian sampler; the default gives about 3.5,
below the Gaussian, with 1000 to 3000 updates).

``fit(codes)`` trains it after the fact (``aegen prior``) with its own Adam optimisers; the
``learned_prior`` model trains it jointly with its base model from ``discriminator_loss`` and
``generator_loss``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from aegen.losses import adversarial_loss, discriminator_loss, gaussian_mmd
from aegen.nets import MLP, LatentDiscriminator
from aegen.samplers.base import Sampler

GanLoss = Literal["mmd", "standard"]


class LatentGANSampler(Sampler):
    """Codes from a generator G(noise) trained adversarially against a discriminator of codes."""

    name = "latent_gan"

    def __init__(
        self,
        dim: int,
        noise_dim: int | None = None,
        generator_hidden: tuple[int, ...] = (512, 512),
        disc_hidden: tuple[int, ...] = (512, 512),
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        gan_loss: GanLoss = "mmd",
        gaussian_start: bool = True,
        mmd_bandwidths: tuple[float, ...] = (0.0625, 0.125, 0.25, 0.5, 1.0),
        steps: int = 2000,
        batch_size: int = 128,
    ) -> None:
        """
        Args:
            dim: size of the codes.
            noise_dim: size of G's Gaussian noise (default: the code size).
            generator_hidden: hidden sizes of G's MLP.
            disc_hidden: hidden sizes of the latent discriminator D.
            lr: Adam learning rate of G and D (2e-4 with betas (0.5, 0.999), as DCGAN's).
            betas: Adam betas of G and D.
            gan_loss: G's loss. mmd: a Gaussian-kernel MMD between D's penultimate features of a
                real and a generated batch (features scaled to unit RMS on the real batch; D itself
                keeps the real/fake loss); standard: the non-saturating GAN loss.
            gaussian_start: G outputs ``mean + L (n + MLP(n))`` with the MLP's last layer at zero,
                so it starts as the Gaussian fitted to the codes (``fit_gaussian``; mean and
                Cholesky factor L of their covariance), and D sees whitened codes ``L^-1 (z - mean)``;
                needs noise_dim equal to the code size. Off: G is a plain MLP and D sees raw codes.
            mmd_bandwidths: gan_loss mmd: the kernel's bandwidths, as RMS per-feature distances
                (the kernel is the sum of exp(-|a - b|^2 / (2 dim s^2)) over them).
            steps: ``fit``: updates, each one D and one G step.
            batch_size: ``fit``: codes per update (and as many noise draws).
        """
        super().__init__(dim, noise_dim=noise_dim, generator_hidden=generator_hidden, disc_hidden=disc_hidden, lr=lr,
                         betas=betas, gan_loss=gan_loss, gaussian_start=gaussian_start,
                         mmd_bandwidths=mmd_bandwidths, steps=steps, batch_size=batch_size)
        self.noise_dim = noise_dim or dim
        check_options(dim, self.noise_dim, gan_loss, gaussian_start, steps, batch_size)
        self.gan_loss, self.gaussian_start = gan_loss, gaussian_start
        self.lr, self.betas, self.mmd_bandwidths = lr, tuple(betas), tuple(mmd_bandwidths)
        self.steps, self.batch_size = steps, batch_size
        self.code_generator = MLP(self.noise_dim, generator_hidden, dim, activation="leaky_relu")
        self.code_discriminator = LatentDiscriminator(dim, disc_hidden)
        if gaussian_start:
            nn.init.zeros_(self.code_generator[-1].weight)
            nn.init.zeros_(self.code_generator[-1].bias)
            # the Gaussian fitted to the codes (identity until fit_gaussian)
            self.register_buffer("code_mean", torch.zeros(dim))
            self.register_buffer("code_scale_tril", torch.eye(dim))

    # ----------------------------------------------------------------- the generator and D's view
    def generate(self, noise: Tensor) -> Tensor:
        """G: ``mean + L (n + MLP(n))`` with gaussian_start, else ``MLP(n)``."""
        out = self.code_generator(noise)
        if not self.gaussian_start:
            return out
        return self.code_mean + (noise + out) @ self.code_scale_tril.T

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.generate(torch.randn(n, self.noise_dim, generator=generator, device=self.device))

    def whiten(self, codes: Tensor) -> Tensor:
        """What D sees: ``L^-1 (z - mean)`` with gaussian_start, else the codes themselves."""
        if not self.gaussian_start:
            return codes
        return torch.linalg.solve_triangular(self.code_scale_tril, (codes - self.code_mean).T, upper=False).T

    @torch.no_grad()
    def fit_gaussian(self, codes: Tensor, eps: float = 1e-5) -> None:
        """Set G's starting Gaussian (and D's whitening) to the mean and covariance of codes (N, D)."""
        codes = self.check_codes(codes).double()
        cov = torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
        ridge = eps * cov.diagonal().mean().clamp_min(1e-12)
        cov = cov + ridge * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
        self.code_mean.copy_(codes.mean(0))
        self.code_scale_tril.copy_(torch.linalg.cholesky(cov))

    # ----------------------------------------------------------------- losses
    def mmd(self, real: Tensor, fake: Tensor) -> Tensor:
        """Squared MMD (biased estimate) between two feature batches with a sum of Gaussian kernels."""
        return gaussian_mmd(real, fake, [2 * s * s * real.shape[1] for s in self.mmd_bandwidths])

    def discriminator_loss(self, codes: Tensor, noise: Tensor) -> Tensor:
        """D's real/fake loss: ``codes`` (B, dim) real, G(noise) fake (no gradient reaches G)."""
        fake = self.whiten(self.generate(noise)).detach()
        return discriminator_loss(self.code_discriminator(self.whiten(codes)), self.code_discriminator(fake))

    def generator_loss(self, codes: Tensor, noise: Tensor) -> Tensor:
        """G's loss on G(noise) against the real ``codes`` (B, dim): the MMD of D's features, or fooling D."""
        disc, fake = self.code_discriminator, self.whiten(self.generate(noise))
        if self.gan_loss == "standard":
            return adversarial_loss(disc(fake), real=True)
        features = nn.Sequential(*list(disc)[:-1])  # the MLP up to its last hidden activation
        real_features = features(self.whiten(codes))
        scale = real_features.detach().square().mean().sqrt().clamp_min(1e-8)
        return self.mmd(real_features / scale, features(fake) / scale)

    # ----------------------------------------------------------------- fitting after the fact
    def fit(self, codes: Tensor) -> None:
        """``steps`` updates (one D step, then one G step, each with Adam) on shuffled full batches
        of the codes and fresh noise from torch's global generator; G first starts as the codes'
        Gaussian (gaussian_start)."""
        codes = self.check_codes(codes)
        if self.gaussian_start:
            self.fit_gaussian(codes)
        from aegen.models.optim import adam

        d_opt = adam(self.code_discriminator.parameters(), lr=self.lr, betas=self.betas)
        g_opt = adam(self.code_generator.parameters(), lr=self.lr, betas=self.betas)
        was_training = self.training
        self.train()
        for real in self._batches(codes):
            for opt, loss, frozen in ((d_opt, self.discriminator_loss, self.code_generator),
                                      (g_opt, self.generator_loss, self.code_discriminator)):
                frozen.requires_grad_(False)
                opt.zero_grad(set_to_none=True)
                loss(real, torch.randn(len(real), self.noise_dim, device=codes.device)).backward()
                opt.step()
                frozen.requires_grad_(True)
        self.train(was_training)

    def _batches(self, codes: Tensor) -> Iterator[Tensor]:
        """``steps`` batches of codes: epochs of random permutations cut into full batches (the rest
        of each epoch is dropped, as by a training dataloader), or all codes if there are fewer."""
        size, step = min(self.batch_size, len(codes)), 0
        while True:
            for rows in torch.randperm(len(codes), device=codes.device)[: len(codes) // size * size].split(size):
                if step == self.steps:
                    return
                step += 1
                yield codes[rows]


def check_options(dim: int, noise_dim: int, gan_loss: str, gaussian_start: bool, steps: int, batch_size: int) -> None:
    """The latent GAN's cross-field checks: a known loss, a Gaussian start of the code size, a positive fit loop."""
    if gan_loss not in get_args(GanLoss):
        raise ValueError(f"unknown gan_loss {gan_loss!r}; choose one of: {', '.join(get_args(GanLoss))}")
    if gaussian_start and noise_dim != dim:
        raise ValueError(f"gaussian_start needs noise_dim equal to the code size {dim}, got {noise_dim}")
    for name, value in (("noise_dim", noise_dim), ("steps", steps), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
