"""Any model with a learned prior on its codes: the base model plus a latent-GAN sampler, trained jointly.

``LearnedPrior`` wraps a base model (any registered name, rebuilt from its name and plain
hyperparameters, so checkpoints stay weights-only) and gives it a ``latent_gan`` sampler
(``aegen.samplers.LatentGANSampler``): a code generator G trained adversarially against a latent
discriminator D that sees the base encoder's codes (detached) as real and G's as fake. Each
training step runs the base model's own phases first (its optimisers come first), then one D and
one G update on its current codes; G's starting Gaussian and D's whitening follow the moving
codes (refitted at the start of training and before each validation).

``aegen fit --model learned_prior --model.base NAME`` trains it from scratch. To give an already
trained model a learned prior, ``aegen prior`` (``aegen.prior.fit_prior``) fits a sampler to its
codes after the fact instead.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from aegen.latent import encode_batches
from aegen.models.base import GenerativeAE
from aegen.registry import get_model, register_model
from aegen.samplers.latent_gan import GanLoss, LatentGANSampler

#: GenerativeAE's own arguments and their defaults: shared by the wrapper and its base
SHARED = {name: p.default for name, p in inspect.signature(GenerativeAE.__init__).parameters.items() if name != "self"}


@register_model("learned_prior")
class LearnedPrior(GenerativeAE):
    """A base model whose samples decode a latent-GAN code generator trained alongside it."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        base: str = "ae",
        base_hparams: dict[str, Any] | None = None,
        noise_dim: int | None = None,
        generator_hidden: tuple[int, ...] = (512, 512),
        disc_hidden: tuple[int, ...] = (512, 512),
        prior_lr: float = 2e-4,
        prior_betas: tuple[float, float] = (0.5, 0.999),
        gan_loss: GanLoss = "mmd",
        gaussian_start: bool = True,
        mmd_bandwidths: tuple[float, ...] = (0.0625, 0.125, 0.25, 0.5, 1.0),
        **kwargs,
    ) -> None:
        """
        Args:
            base: registered name of the model whose codes get the prior.
            base_hparams: the base model's own options (beyond img_shape, latent_dim, width, ...).
            noise_dim: size of the code generator's Gaussian noise (default: the code size).
            generator_hidden: hidden sizes of the code generator's MLP.
            disc_hidden: hidden sizes of the latent discriminator.
            prior_lr: Adam learning rate of the code generator and its discriminator.
            prior_betas: Adam betas of the code generator and its discriminator.
            gan_loss: the code generator's loss. mmd: a Gaussian-kernel MMD between D's penultimate
                features of a real and a generated batch; standard: the non-saturating GAN loss.
            gaussian_start: G starts as the Gaussian fitted to the codes and D sees codes whitened
                by it (needs noise_dim equal to the code size); off: a plain MLP generator on raw codes.
            mmd_bandwidths: gan_loss mmd: the kernel's bandwidths, as RMS per-feature distances.
        """
        super().__init__(**kwargs)
        if base == self.registry_name:
            raise ValueError("learned_prior cannot wrap itself; pass --model.base NAME of another model")
        self.base = get_model(base)(**{**SHARED, **kwargs, **(base_hparams or {})})
        self.sampler = LatentGANSampler(
            self.base.latent_dim, noise_dim=noise_dim, generator_hidden=generator_hidden, disc_hidden=disc_hidden,
            lr=prior_lr, betas=prior_betas, gan_loss=gan_loss, gaussian_start=gaussian_start,
            mmd_bandwidths=mmd_bandwidths)

    # ----------------------------------------------------------------- public API
    def encode(self, x: Tensor) -> Tensor:
        return self.base.encode(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.base.decode(z)

    def cluster_probs(self, x: Tensor) -> Tensor | None:
        return self.base.cluster_probs(x)

    # ----------------------------------------------------------------- optimisation
    def optimizer_groups(self):
        # the base's own optimisers come first, under its names, so its phases find them
        groups: dict[str, Any] = dict(self.base.optimizer_groups())
        self.base.optimizer_names = list(groups)
        adam = {"lr": self.sampler.lr, "betas": self.sampler.betas}
        groups["prior_discriminator"] = (self.sampler.code_discriminator.parameters(), adam)
        groups["prior_generator"] = (self.sampler.code_generator.parameters(), adam)
        return groups

    def latent_gan_phase(self, x: Tensor) -> dict[str, Tensor]:
        """D: the encoder's codes real, G(noise) fake; then G matches (or fools) D. The base stays untouched."""
        with torch.no_grad():
            codes = self.base.encode(x)
        noise_dim = self.sampler.noise_dim
        with self.phase("prior_discriminator") as update:
            d_loss = update(self.sampler.discriminator_loss(codes, self.randn(len(x), noise_dim)))
        with self.phase("prior_generator") as update:
            g_loss = update(self.sampler.generator_loss(codes, self.randn(len(x), noise_dim)))
        return {"prior_disc": d_loss, "prior_gen": g_loss}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses = dict(self.base.training_phases(x, y))
        losses.update(self.latent_gan_phase(x))
        return losses

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        return self.base.validation_losses(x)

    # ----------------------------------------------------------------- following the codes
    def on_train_start(self) -> None:
        # G starts as the Gaussian fitted to the (eval-mode) training codes; D sees codes whitened by it
        datamodule = self.trainer.datamodule
        if self.sampler.gaussian_start and datamodule is not None:
            self.sampler.fit_gaussian(self.training_codes(datamodule))

    def on_validation_epoch_start(self) -> None:
        datamodule = self.trainer.datamodule
        if self.trainer.state.fn != "fit" or self.trainer.sanity_checking or datamodule is None:
            return
        if self.base.sampler is not None:  # the base's own sampler stays usable on its own
            self.base.fit_sampler(datamodule.train_dataloader())
        if self.sampler.gaussian_start:  # follow the moving codes
            self.sampler.fit_gaussian(self.training_codes(datamodule))

    def training_codes(self, datamodule) -> Tensor:
        """Eval-mode codes of the training split, gathered from every process."""
        codes = encode_batches(self, datamodule.train_dataloader())
        return self.all_gather(codes).flatten(0, -2) if self.trainer.world_size > 1 else codes
