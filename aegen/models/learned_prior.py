"""A learned prior for any model in the zoo: a code generator (latent GAN) or a Gaussian mixture.

``LearnedPrior`` wraps a base model (any registered name, rebuilt from its name and plain
hyperparameters, so checkpoints stay weights-only) and replaces what ``sample`` decodes:

- ``kind="gan"``: a code generator G (MLP, Gaussian noise -> code) trained adversarially against
  a latent discriminator D that sees the base encoder's codes (detached) as real, G's as fake: a
  latent GAN as in the LatentGAN autoencoder and the learned-prior AAE's code generator, with the
  decoder frozen. By default (``gaussian_start``, ``gan_loss="mmd"``) G starts as the Gaussian
  fitted to the codes (``G(n) = mean + L (n + MLP(n))``, the MLP's last layer at zero), D sees
  whitened codes and is trained with the usual real/fake loss, and G minimises a Gaussian-kernel
  MMD between D's penultimate features of real and generated codes (kernel feature matching, the
  MMD-GAN generator loss on D's features). The plain non-saturating loss (``gan_loss="standard"``,
  ``gaussian_start=False``: the earlier behaviour) drifts away from the codes on small data: with
  1,437 digits codes in 64 dimensions D memorises the real set and G chases it (`aegen prior` on
  the 20-epoch digits ae, code 64: judge-FID 21 against 6.2 for the ae's own Gaussian sampler; the
  default gives about 3.5, below the Gaussian, with 1000 to 3000 updates).
- ``kind="gmm"``: a scikit-learn ``GaussianMixture`` fitted to the encoder's training codes (the
  cheap alternative), stored as tensors (weights, means, Cholesky factors).

``aegen prior CKPT --out NEW.ckpt`` builds one from a trained checkpoint (``fit_prior``): the base
is frozen (``train_base=False``) and only the prior learns. Trained from scratch with
``aegen fit --model learned_prior --model.base NAME``, the base model's own phases run first in
each step (its optimisers come first), then the latent GAN on its current codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aegen.checkpoint import first_nonfinite
from aegen.errors import DivergenceError
from aegen.io import save_atomic
from aegen.losses import adversarial_loss, discriminator_loss
from aegen.models.base import GenerativeAE, plain
from aegen.nets import MLP, LatentDiscriminator
from aegen.registry import get_model, register_model

KINDS = ("gan", "gmm")
GAN_LOSSES = ("mmd", "standard")
#: GenerativeAE's own arguments: shared by the wrapper and its base
SHARED = ("img_shape", "latent_dim", "num_classes", "lr", "betas", "width", "grad_clip")


@register_model("learned_prior")
class LearnedPrior(GenerativeAE):
    """Any model with a learned prior on its codes: a latent-GAN code generator or a Gaussian mixture."""

    samples_from_code_gaussian = False

    def __init__(
        self,
        base: str = "ae",
        base_hparams: dict[str, Any] | None = None,
        kind: str = "gan",
        train_base: bool = True,
        noise_dim: int | None = None,
        generator_hidden: tuple[int, ...] = (512, 512),
        disc_hidden: tuple[int, ...] = (512, 512),
        prior_lr: float = 2e-4,
        prior_betas: tuple[float, float] = (0.5, 0.999),
        gmm_components: int = 10,
        gmm_covariance: str = "full",
        gan_loss: str = "mmd",
        gaussian_start: bool = True,
        mmd_bandwidths: tuple[float, ...] = (0.0625, 0.125, 0.25, 0.5, 1.0),
        **kwargs,
    ) -> None:
        """
        Args:
            base: registered name of the model whose codes get the prior.
            base_hparams: the base model's own options (beyond img_shape, latent_dim, width, ...).
            kind: gan (a code generator trained adversarially on the codes) or gmm (a Gaussian mixture).
            train_base: also train the base model (its phases run first in each step); off: the
                base is frozen and only the prior learns (what `aegen prior` does).
            noise_dim: size of the code generator's Gaussian noise (default: the code size).
            generator_hidden: hidden sizes of the code generator's MLP.
            disc_hidden: hidden sizes of the latent discriminator.
            prior_lr: Adam learning rate of the code generator and its discriminator.
            prior_betas: Adam betas of the code generator and its discriminator.
            gmm_components: mixture components of the Gaussian mixture.
            gmm_covariance: covariance type of the mixture (full, diag, tied, spherical).
            gan_loss: the code generator's loss. mmd: a Gaussian-kernel MMD between D's penultimate
                features of a real and a generated batch (features scaled to unit RMS on the real
                batch; D itself keeps the real/fake loss); standard: the non-saturating GAN loss.
            gaussian_start: G outputs ``mean + L (n + MLP(n))`` with the MLP's last layer at zero,
                so it starts as the Gaussian fitted to the codes (``fit_code_whitening``; mean and
                Cholesky factor L of their covariance), and D sees whitened codes ``L^-1 (z - mean)``;
                needs noise_dim equal to the code size. Off: G is a plain MLP and D sees raw codes.
            mmd_bandwidths: gan_loss mmd: the kernel's bandwidths, as RMS per-feature distances
                (the kernel is the sum of exp(-|a - b|^2 / (2 dim s^2)) over them).
        """
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"unknown prior kind {kind!r}; choose one of: {', '.join(KINDS)}")
        if base == self.registry_name:
            raise ValueError("learned_prior cannot wrap itself; pass --model.base NAME of another model")
        shared = {k: self.hparams[k] for k in SHARED if k in self.hparams}
        self.base = get_model(base)(**{**shared, **(base_hparams or {})})
        self.kind, self.train_base = kind, train_base
        dim = self.base.latent_dim
        if kind == "gan":
            if gan_loss not in GAN_LOSSES:
                raise ValueError(f"unknown gan_loss {gan_loss!r}; choose one of: {', '.join(GAN_LOSSES)}")
            self.noise_dim = noise_dim or dim
            if gaussian_start and self.noise_dim != dim:
                raise ValueError(f"gaussian_start needs noise_dim equal to the code size {dim}, got {self.noise_dim}")
            self.gan_loss, self.gaussian_start = gan_loss, gaussian_start
            self.code_generator = MLP(self.noise_dim, generator_hidden, dim, activation="leaky_relu")
            self.code_discriminator = LatentDiscriminator(dim, disc_hidden)
            if gaussian_start:
                torch.nn.init.zeros_(self.code_generator[-1].weight)
                torch.nn.init.zeros_(self.code_generator[-1].bias)
                # the Gaussian fitted to the codes (identity until fit_code_whitening)
                self.register_buffer("code_mean", torch.zeros(dim))
                self.register_buffer("code_scale_tril", torch.eye(dim))
        else:
            if gmm_components < 1:
                raise ValueError(f"gmm_components must be a positive integer, got {gmm_components}")
            self.register_buffer("gmm_weights", torch.full((gmm_components,), 1.0 / gmm_components))
            self.register_buffer("gmm_means", torch.zeros(gmm_components, dim))
            self.register_buffer("gmm_scale_tril", torch.eye(dim).expand(gmm_components, dim, dim).clone())
        if not train_base:
            self.base.requires_grad_(False)

    # ----------------------------------------------------------------- public API
    def encode(self, x: Tensor) -> Tensor:
        return self.base.encode(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.base.decode(z)

    def cluster_probs(self, x: Tensor) -> Tensor | None:
        return self.base.cluster_probs(x)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Codes from the learned prior: G(noise), or a draw from the Gaussian mixture."""
        if self.kind == "gan":
            return self.generate_codes(torch.randn(n, self.noise_dim, generator=generator, device=self.device))
        component = torch.multinomial(self.gmm_weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.gmm_means.shape[1], 1, generator=generator, device=self.device)
        return self.gmm_means[component] + (self.gmm_scale_tril[component] @ eps).squeeze(-1)

    def generate_codes(self, noise: Tensor) -> Tensor:
        """The code generator: ``mean + L (n + MLP(n))`` with gaussian_start, else ``MLP(n)``."""
        out = self.code_generator(noise)
        if not self.gaussian_start:
            return out
        return self.code_mean + (noise + out) @ self.code_scale_tril.T

    def whiten(self, codes: Tensor) -> Tensor:
        """What D sees: ``L^-1 (z - mean)`` with gaussian_start, else the codes themselves."""
        if not self.gaussian_start:
            return codes
        return torch.linalg.solve_triangular(self.code_scale_tril, (codes - self.code_mean).T, upper=False).T

    @torch.no_grad()
    def fit_code_whitening(self, codes: Tensor, eps: float = 1e-5) -> None:
        """Set G's starting Gaussian (and D's whitening) to the mean and covariance of codes (N, D)."""
        codes = codes.detach().double()
        cov = torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
        cov = cov + eps * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
        self.code_mean.copy_(codes.mean(0))
        self.code_scale_tril.copy_(torch.linalg.cholesky(cov))

    def mmd(self, real: Tensor, fake: Tensor) -> Tensor:
        """Squared MMD (biased estimate) between two feature batches with a sum of Gaussian kernels."""
        both = torch.cat([real, fake])
        d2 = torch.cdist(both, both).square() / both.shape[1]
        kernel = sum(torch.exp(-d2 / (2 * s * s)) for s in self.hparams.mmd_bandwidths)
        n = len(real)
        return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()

    @torch.no_grad()
    def fit_gmm(self, codes: Tensor, seed: int = 0) -> None:
        """Fit the Gaussian mixture to codes (N, D) with scikit-learn."""
        from sklearn.mixture import GaussianMixture

        k = len(self.gmm_weights)
        if len(codes) < k:
            raise ValueError(f"a {k}-component mixture needs at least {k} codes, got {len(codes)}")
        gmm = GaussianMixture(k, covariance_type=self.hparams.gmm_covariance, random_state=seed, reg_covar=1e-5)
        gmm.fit(codes.detach().double().cpu().numpy())
        dim = codes.shape[1]
        cov = torch.as_tensor(gmm.covariances_, dtype=torch.float64)
        cov = {"full": lambda c: c, "tied": lambda c: c.expand(k, dim, dim),
               "diag": torch.diag_embed, "spherical": lambda c: c.view(k, 1, 1) * torch.eye(dim, dtype=c.dtype)}[
            self.hparams.gmm_covariance](cov)
        self.gmm_weights.copy_(torch.as_tensor(gmm.weights_))
        self.gmm_means.copy_(torch.as_tensor(gmm.means_))
        self.gmm_scale_tril.copy_(torch.linalg.cholesky(cov))

    # ----------------------------------------------------------------- optimisation
    def optimizer_groups(self):
        groups: dict[str, Any] = {}
        if self.train_base:
            # the base's own optimisers come first, under its names, so its phases find them
            groups.update(self.base.optimizer_groups())
            self.base.optimizer_names = list(groups)
        if self.kind == "gan":
            adam = {"lr": self.hparams.prior_lr, "betas": tuple(self.hparams.prior_betas)}
            groups["prior_discriminator"] = (self.code_discriminator.parameters(), adam)
            groups["prior_generator"] = (self.code_generator.parameters(), adam)
        if not groups:
            raise ValueError("nothing to train: a gmm prior on a frozen base is fitted by `aegen prior --kind gmm`")
        return groups

    def latent_gan_phase(self, x: Tensor) -> dict[str, Tensor]:
        """D: the encoder's codes real, G(noise) fake; then G fools D. The base stays untouched."""
        with torch.no_grad():
            codes = self.base.encode(x)
        real = self.whiten(codes)
        disc = self.code_discriminator
        with self.phase("prior_discriminator") as update:
            fake = self.whiten(self.generate_codes(self.randn(len(x), self.noise_dim))).detach()
            d_loss = update(discriminator_loss(disc(real), disc(fake)))
        with self.phase("prior_generator") as update:
            fake = self.whiten(self.generate_codes(self.randn(len(x), self.noise_dim)))
            if self.gan_loss == "mmd":  # G matches D's penultimate features of the real batch
                features = torch.nn.Sequential(*list(disc)[:-1])  # the MLP up to its last hidden activation
                real_features = features(real)
                scale = real_features.detach().square().mean().sqrt().clamp_min(1e-8)
                g_loss = update(self.mmd(real_features / scale, features(fake) / scale))
            else:
                g_loss = update(adversarial_loss(disc(fake), real=True))
        return {"prior_disc": d_loss, "prior_gen": g_loss}

    def on_train_start(self) -> None:
        datamodule = self.trainer.datamodule
        if self.kind == "gan" and self.gaussian_start and datamodule is not None:
            # G starts as the Gaussian fitted to the (eval-mode) training codes; D sees codes whitened by it
            self.fit_code_whitening(self.training_codes(datamodule))
        if not self.train_base:
            self.base.eval()  # frozen: its codes are the eval-mode codes it samples with (after the above)

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses = dict(self.base.training_phases(x, y)) if self.train_base else {}
        if self.kind == "gan":
            losses.update(self.latent_gan_phase(x))
        return losses

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        return self.base.validation_losses(x)

    def on_validation_epoch_start(self) -> None:
        datamodule = self.trainer.datamodule
        if self.trainer.state.fn != "fit" or self.trainer.sanity_checking or datamodule is None or not self.train_base:
            return
        if self.base.samples_from_code_gaussian:
            self.base.fit_code_gaussian(datamodule.train_dataloader())
        if self.kind == "gan" and self.gaussian_start:  # follow the moving codes
            self.fit_code_whitening(self.training_codes(datamodule))
        if self.kind == "gmm":
            self.fit_gmm(self.training_codes(datamodule))

    def training_codes(self, datamodule) -> Tensor:
        """Eval-mode codes of the training split, gathered from every process."""
        codes = encode_batches(self, datamodule.train_dataloader())
        return self.all_gather(codes).flatten(0, -2) if self.trainer.world_size > 1 else codes


@torch.no_grad()
def encode_batches(model: GenerativeAE, batches, max_items: int = 50_000) -> Tensor:
    """Eval-mode codes of (up to ``max_items``) images from an iterable of (x, y) batches."""
    was_training, codes, seen = model.training, [], 0
    model.eval()
    for x, _ in batches:
        codes.append(model.encode(x.to(model.device)))
        seen += len(x)
        if seen >= max_items:
            break
    model.train(was_training)
    return torch.cat(codes)


def wrap(checkpoint: dict[str, Any], kind: str, **options: Any) -> LearnedPrior:
    """A LearnedPrior around the model stored in a read checkpoint (base weights loaded, base frozen)."""
    from aegen.checkpoint import init_args

    name = checkpoint["aegen"]["model"]
    hparams = init_args(checkpoint.get("hyper_parameters", {}))
    if name == LearnedPrior.registry_name:  # refit the prior of a wrapped model on its base
        name, hparams = hparams["base"], {**{k: hparams[k] for k in SHARED if k in hparams}, **hparams["base_hparams"]}
        state = {k.removeprefix("base."): v for k, v in checkpoint["state_dict"].items() if k.startswith("base.")}
    else:
        state = checkpoint["state_dict"]
    shared = {k: hparams[k] for k in SHARED if k in hparams}
    own = plain({k: v for k, v in hparams.items() if k not in SHARED})
    model = LearnedPrior(base=name, base_hparams=own, kind=kind, train_base=False, **shared, **options)
    model.base.load_state_dict(state)
    return model


def fit_prior(
    checkpoint_path: str,
    out: str,
    kind: str = "gan",
    steps: int = 2000,
    batch_size: int = 128,
    seed: int = 0,
    accelerator: str = "auto",
    **options: Any,
) -> LearnedPrior:
    """Fit a learned prior to a trained checkpoint's codes and write a new checkpoint at ``out``.

    GAN: ``steps`` latent-GAN updates (each one discriminator and one generator step) on batches of
    the checkpoint's training data, through a Lightning Trainer; with ``gaussian_start`` (the
    default) G's starting Gaussian and D's whitening are first fitted to the training split's codes
    (``on_train_start``). GMM: one scikit-learn fit to the
    codes of the whole training split. The new checkpoint records its prior under ``aegen.prior``.
    """
    import pytorch_lightning as pl

    from aegen.checkpoint import load_datamodule, read_checkpoint

    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    checkpoint = read_checkpoint(checkpoint_path)
    datamodule = load_datamodule(checkpoint_path, batch_size=batch_size, device_cache=False)
    pl.seed_everything(seed, verbose=False)
    model = wrap(checkpoint, kind, **options)
    global_step = 0
    if kind == "gan":
        trainer = pl.Trainer(max_steps=2 * steps, max_epochs=-1, accelerator=accelerator, devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             limit_val_batches=0, num_sanity_val_steps=0)
        trainer.fit(model, datamodule)
        global_step = trainer.global_step
    else:
        datamodule.setup("fit")
        model.fit_gmm(encode_batches(model, datamodule.train_dataloader()), seed=seed)
    record = {"kind": kind, "base": model.hparams.base, "fitted_on": str(checkpoint_path),
              "steps": steps if kind == "gan" else 0, "seed": seed}
    save_checkpoint(model, out, data=checkpoint["aegen"].get("data"), prior=record, global_step=global_step)
    return model.eval()


def save_checkpoint(model: LearnedPrior, out: str | Path, data: dict[str, Any] | None, prior: dict[str, Any],
                    global_step: int = 0) -> Path:
    """Write ``out`` in Lightning's checkpoint format (readable by ``aegen.load`` and
    ``LearnedPrior.load_from_checkpoint``) with aegen's record: the source's data and the prior."""
    import pytorch_lightning as pl

    from aegen import __version__

    checkpoint = {
        "epoch": 0,
        "global_step": global_step,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": model.state_dict(),
        "hyper_parameters": plain(dict(model.hparams)),
        "aegen": {"version": __version__, "model": model.registry_name, "data": data, "prior": plain(prior)},
    }
    bad = first_nonfinite(checkpoint)
    if bad is not None:
        raise DivergenceError(f"the prior diverged: {bad} is NaN/inf, so {out} was not written; try fewer --steps "
                              "or --kind gmm")
    return save_atomic(checkpoint, out)
