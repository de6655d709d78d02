"""DCGAN (Radford, Metz & Chintala 2016): a convolutional image GAN, no encoder.

G maps a 100-d code z, "a 100 dimensional uniform distribution Z", through a projection to a 4x4 map and
fractionally-strided convolutions with batch norm and ReLU to a tanh image; D is a strided-conv net with
batch norm (none on its first layer) and LeakyReLU(0.2) ending in one real/fake logit. All weights are
initialised from N(0, 0.02). Each minibatch runs, in order:

1. ``discriminator_phase``: D minimises BCE(real images = 1, G(z) = 0) (the halves averaged).
2. ``generator_phase``: G minimises the non-saturating loss -log D(G(z)) on fresh codes.

The paper's setting: Adam lr 2e-4, beta1 0.5, minibatch 128, LeakyReLU slope 0.2, no pooling or fully
connected hidden layers. The nets are aegen.nets' ``ConvDecoder`` (G) and ``ConvEncoder`` with a one-logit
head (D). ``d_loss``/``g_loss`` are the GAN objective: LSGAN and WGAN-GP subclass this model and replace them.

DCGAN has no encoder (``has_encoder`` False): ``encode`` and ``reconstruct`` raise an AegenError, and
``aegen interpolate``/``traverse`` and the evaluation's ``interp`` group work over G's inputs instead.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from aegen.losses import adversarial_loss, discriminator_loss
from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model

Prior = Literal["uniform", "normal"]


def dcgan_init(module: nn.Module, std: float) -> None:
    """DCGAN's initialisation: conv and linear weights ~ N(0, std), biases 0; batch-norm scales ~ N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


@register_model("dcgan")
class DCGAN(GenerativeAE):
    """DCGAN: conv generator and discriminator, non-saturating GAN loss; no encoder."""

    samples_from_code_gaussian = False
    has_encoder = False
    #: no encoder to reconstruct with: the generic tests check samples instead
    learns_reconstruction: ClassVar[bool] = False

    def __init__(
        self,
        latent_dim: int = 100,
        prior: Prior = "uniform",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        width: int = 32,
        max_width: int = 256,
        init_std: float | None = 0.02,
        **kwargs,
    ) -> None:
        """
        Args:
            latent_dim: size of G's input z (paper: 100).
            prior: z ~ U(-1, 1) ("uniform", the paper's Figure 1 and its Theano code) or N(0, I)
                ("normal", the Torch reference code's default).
            lr: Adam learning rate of D and G (paper: 2e-4).
            betas: Adam betas (paper: beta1 0.5; beta2 Adam's default 0.999).
            width: channels of D's first conv layer and G's last; they double per stage up to ``max_width``
                (paper, 64 px: 128 to 1024).
            max_width: the most channels of a stage (paper: 1024).
            init_std: std of the N(0, std) initial weights (paper: 0.02; None: PyTorch's default init).
        """
        super().__init__(latent_dim=latent_dim, lr=lr, betas=betas, width=width, **kwargs)
        if init_std is not None and init_std <= 0:
            raise ValueError(f"init_std must be positive (or None), got {init_std}")
        self.prior = prior
        self.generator = ConvDecoder(self.img_shape, latent_dim, width=width, max_width=max_width)
        self.discriminator = self.build_discriminator()
        if init_std is not None:
            dcgan_init(self, init_std)

    def build_discriminator(self) -> nn.Module:
        """D: image -> one logit, strided convs with batch norm (none on the first layer) and LeakyReLU(0.2)."""
        return ConvEncoder(self.img_shape, 1, width=self.hparams.width, max_width=self.hparams.max_width)

    # ----------------------------------------------------------------- public API
    def decode(self, z: Tensor) -> Tensor:
        """G: codes (B, latent_dim) -> images."""
        return self.generator(z)

    def discriminate(self, x: Tensor) -> Tensor:
        """D's outputs (B,) for images (logits; WGAN-GP: critic values)."""
        return self.discriminator(x).squeeze(-1)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Codes (n, latent_dim) from U(-1, 1) or N(0, I) (``prior``)."""
        if self.prior == "uniform":
            return torch.rand(n, self.latent_dim, generator=generator, device=self.device) * 2 - 1
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def training_codes(self, n: int) -> Tensor:
        """``n`` codes from the prior, drawn from this rank's noise generator."""
        return self.prior_sample(n, self.noise)

    # ----------------------------------------------------------------- the GAN objective
    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """D's loss on its outputs for real images and G's: BCE(real = 1, fake = 0)."""
        return discriminator_loss(real, fake)

    def g_loss(self, fake: Tensor) -> Tensor:
        """G's loss on D's outputs for its images: the non-saturating -log D(G(z))."""
        return adversarial_loss(fake, real=True)

    # ----------------------------------------------------------------- training
    def optimizer_groups(self):
        return {"discriminator": self.discriminator.parameters(), "generator": self.generator.parameters()}

    def discriminator_phase(self, x: Tensor) -> dict[str, Tensor]:
        with self.phase("discriminator") as update:
            fake = self.decode(self.training_codes(len(x))).detach()
            loss = update(self.d_loss(self.discriminate(x), self.discriminate(fake)))
        return {"disc": loss}

    def generator_phase(self, n: int) -> dict[str, Tensor]:
        with self.phase("generator") as update:
            loss = update(self.g_loss(self.discriminate(self.decode(self.training_codes(n)))))
        return {"gen": loss}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {**self.discriminator_phase(x), **self.generator_phase(len(x))}

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        """On held-out images and as many fresh samples: ``loss`` is G's loss against the current D (a GAN has
        no held-out objective that tracks sample quality: pick checkpoints by ``aegen evaluate``), ``disc`` D's."""
        real, fake = self.discriminate(x), self.discriminate(self.decode(self.training_codes(len(x))))
        return {"loss": self.g_loss(fake), "disc": self.d_loss(real, fake)}
