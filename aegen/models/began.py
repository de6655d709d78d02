"""BEGAN: boundary equilibrium GAN (Berthelot, Schumm & Metz, 2017).

A generator G(z), z ~ U(-1, 1), and an autoencoder discriminator D, whose L1 reconstruction error
L(v) = |v - D(v)| (mean over pixels and batch) is low on real images and high on generated ones:

    L_D = L(x) - k_t L(G(z_D))        for D
    L_G = L(G(z_G))                   for G
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1)

gamma = E[L(G(z))] / E[L(x)] is the diversity ratio the proportional control of k_t holds (paper 0.5;
0.3 to 0.7 studied), lambda_k = 0.001, k_0 = 0. The convergence measure M_global = L(x) + |gamma L(x) -
L(G(z_G))| is logged (``m_global``) and is the validation ``loss``. k_t is a buffer, so checkpoints and
exact resume keep it. Each minibatch steps D, then G (on fresh noise z_G), then k_t.

The autoencoder API is D's: ``encode`` is D's encoder (to its embedding h, of ``latent_dim``),
``decode`` D's decoder, so ``reconstruct`` is D(x) and ``interpolate`` walks D's embedding h between
real images: G has no encoder, and D's autoencoder is the model's trained map from images to codes and
back. ``sample`` draws G(z); ``prior_sample`` gives G's z and ``traversal`` sweeps G's z.

The nets are the paper's: 3x3 convs with ELU, stride-2 subsampling with filters n, 2n, 3n, ..., an 8x8 map
around a linear bottleneck, nearest-neighbour upsampling; G has D's decoder's architecture. ``width`` is n.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aegen.errors import AegenError
from aegen.latent import traverse_dims
from aegen.models.base import GenerativeAE
from aegen.registry import register_model


def _convs(channels_in: int, channels: int) -> list[nn.Module]:
    """Two 3x3 convolutions with ELU, the paper's block at each scale."""
    return [nn.Conv2d(channels_in, channels, 3, 1, 1), nn.ELU(), nn.Conv2d(channels, channels, 3, 1, 1), nn.ELU()]


def _scales(img_shape: tuple[int, int, int]) -> int:
    """Doublings between the paper's 8x8 bottleneck map and the image size."""
    return int(math.log2(img_shape[1] // 8))


class BeganEncoder(nn.Sequential):
    """The paper's encoder: 3x3 convs with ELU, stride-2 subsampling, filters n, 2n, 3n, ... (one more
    per subsampling), down to 8x8, then a linear map to the code (no non-linearity)."""

    def __init__(self, img_shape: tuple[int, int, int], code_dim: int, n: int) -> None:
        layers: list[nn.Module] = [nn.Conv2d(img_shape[0], n, 3, 1, 1), nn.ELU()]
        for i in range(_scales(img_shape)):
            layers += [*_convs(n * (i + 1), n * (i + 1)), nn.Conv2d(n * (i + 1), n * (i + 2), 3, 2, 1), nn.ELU()]
        top = n * (_scales(img_shape) + 1)
        super().__init__(*layers, *_convs(top, top), nn.Flatten(), nn.Linear(top * 64, code_dim))


class BeganDecoder(nn.Module):
    """The paper's decoder (and generator): a linear map to an 8x8 map of n filters, then 3x3 convs with ELU
    and nearest-neighbour upsampling to the image size; a 3x3 conv to the image, tanh (images in [-1, 1])."""

    def __init__(self, img_shape: tuple[int, int, int], code_dim: int, n: int) -> None:
        super().__init__()
        self.n, self.head = n, nn.Linear(code_dim, n * 64)
        layers: list[nn.Module] = []
        for _ in range(_scales(img_shape)):
            layers += [*_convs(n, n), nn.Upsample(scale_factor=2, mode="nearest")]
        self.body = nn.Sequential(*layers, *_convs(n, n), nn.Conv2d(n, img_shape[0], 3, 1, 1), nn.Tanh())

    def forward(self, h: Tensor) -> Tensor:
        return self.body(self.head(h).view(len(h), self.n, 8, 8))


def l1_error(v: Tensor, d_v: Tensor) -> Tensor:
    """L(v) = |v - D(v)| averaged over pixels and batch (the paper's eta = 1)."""
    return (v - d_v).abs().mean()


def k_update(k: Tensor, real: Tensor, fake: Tensor, gamma: float, lambda_k: float) -> Tensor:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1)."""
    return (k + lambda_k * (gamma * real - fake)).clamp(0.0, 1.0)


def convergence(real: Tensor, fake: Tensor, gamma: float) -> Tensor:
    """M_global = L(x) + |gamma L(x) - L(G(z_G))|."""
    return real + (gamma * real - fake).abs()


@register_model("began")
class BEGAN(GenerativeAE):
    """BEGAN: a generator against an autoencoder discriminator, balanced by the proportional control k_t."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        gamma: float = 0.5,
        lambda_k: float = 1e-3,
        lr: float = 5e-4,
        width: int = 16,
        **kwargs,
    ) -> None:
        """
        Args:
            gamma: diversity ratio E[L(G(z))] / E[L(x)] the control of k_t holds (paper 0.5).
            lambda_k: proportional gain of k_t (paper 0.001).
            lr: Adam learning rate of G and D (paper 1e-4, halved when M_global stalls; no decay here; 5e-4 by
                default: at 1e-4, 10 epochs on the digits reconstruct the wrong digit half the time).
            width: n, the filters of the first stage and of every decoder conv (paper 64 or 128; 16 here: the
                nets run 3x3 convs at full resolution, and 16 keeps 10 epochs on the digits to minutes on a CPU).
        """
        super().__init__(lr=lr, width=width, **kwargs)
        if not 0 < gamma <= 1:
            raise AegenError(f"gamma must be in (0, 1], got {gamma}")
        if lambda_k < 0:
            raise AegenError(f"lambda_k must be >= 0, got {lambda_k}")
        shape, dim, width = self.img_shape, self.latent_dim, self.hparams.width
        self.encoder = BeganEncoder(shape, dim, width)  # D's encoder: x -> h
        self.decoder = BeganDecoder(shape, dim, width)  # D's decoder: h -> D(x)
        self.generator = BeganDecoder(shape, dim, width)  # G: z -> image
        #: k_t, the weight of L(G(z_D)) in D's loss (training state: a buffer, saved in checkpoints)
        self.register_buffer("k", torch.zeros(()))

    def discriminator(self, x: Tensor) -> Tensor:
        """D(x): the autoencoder discriminator's reconstruction."""
        return self.decoder(self.encoder(x))

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """G's codes z ~ U(-1, 1)."""
        return torch.rand(n, self.latent_dim, generator=generator, device=self.device) * 2 - 1

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, category: int | Tensor | None = None) -> Tensor:
        """``n`` images G(z), z ~ U(-1, 1)."""
        if category is not None:
            raise AegenError("BEGAN has no categorical code: sample without category")
        return self.generator(self.prior_sample(n, generator)).contiguous()

    @torch.no_grad()
    def traversal(self, x: Tensor | None = None, steps: int = 10, span: float | None = None, code: int | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        """Row i: G(z) with z_i swept over [-span, span] (default 1, the prior's range), the other entries 0;
        ``x`` is not used (G has no encoder)."""
        codes = traverse_dims(torch.zeros(self.latent_dim, device=self.device), torch.ones(self.latent_dim, device=self.device),
                              steps, 1.0 if span is None else span, None if code is None else [code])
        return self.generator(codes.flatten(0, 1)).contiguous().unflatten(0, codes.shape[:2])

    def optimizer_groups(self):
        return {"discriminator": [*self.encoder.parameters(), *self.decoder.parameters()],
                "generator": self.generator.parameters()}

    def uniform(self, n: int) -> Tensor:
        """z ~ U(-1, 1) (n, latent_dim) from this rank's noise generator."""
        return self.prior_sample(n, self.noise)

    def discriminator_phase(self, x: Tensor) -> dict[str, Tensor]:
        """D minimises L(x) - k_t L(G(z_D))."""
        with self.phase("discriminator") as update:
            fake = self.generator(self.uniform(len(x))).detach()
            real_error = l1_error(x, self.discriminator(x))
            fake_error = l1_error(fake, self.discriminator(fake))
            update(real_error - self.k * fake_error)
        return {"real": real_error.detach(), "fake_d": fake_error.detach()}

    def generator_phase(self, n: int) -> Tensor:
        """G minimises L(G(z_G)); returns it."""
        with self.phase("generator") as update:
            fake = self.generator(self.uniform(n))
            return update(l1_error(fake, self.discriminator(fake)))

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses = self.discriminator_phase(x)
        fake = self.generator_phase(len(x))
        real, gamma = losses["real"], self.hparams.gamma
        self.k.copy_(k_update(self.k, real, fake, gamma, self.hparams.lambda_k))
        return {**losses, "fake": fake, "k": self.k.clone(), "m_global": convergence(real, fake, gamma)}

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        """M_global (``loss``) on the held-out batch and fixed codes, its parts, and D's pixel MSE."""
        z = self.prior_sample(len(x), torch.Generator(device=self.device).manual_seed(0))
        real_recon = self.discriminator(x)
        fake = self.generator(z)
        real, fake_error = l1_error(x, real_recon), l1_error(fake, self.discriminator(fake))
        mse = nn.functional.mse_loss(real_recon, x)
        return {"loss": convergence(real, fake_error, self.hparams.gamma), "real": real, "fake": fake_error,
                "recon_mse": mse}
