"""The LightningModule every aegen method extends.

Public API (all models): ``encode(x)``, ``decode(z)``, ``reconstruct(x)``, ``sample(n)`` and
``interpolate(x1, x2, steps)``. Images are (B, C, H, W) tensors in [-1, 1]; ``reconstruct``, ``sample``,
``interpolate`` and ``traversal`` return them contiguous (``decode`` in the model's memory format).

A method defines its networks in ``__init__``, its optimisers in ``optimizer_groups`` and its
training phases as named methods called, in the paper's order, from ``training_phases``. A phase
steps its own optimiser through ``with self.phase(name) as update: ... update(loss)``, which
toggles ``requires_grad`` so only that optimiser's parameters receive gradients.

Every optimiser is Adam (torch's fused kernel where it has one: CUDA, and the CPU since torch 2.4;
multi-tensor kernels elsewhere); ``grad_clip`` clips in ``on_before_optimizer_step``, after mixed precision's
gradient scaler has unscaled the gradients. The training losses are summed on the device every step
(``train_means``: the epoch's means) and logged as ``train/NAME`` only on the steps Lightning writes logs
(every ``log_every_n_steps``). Options for speed: ``channels_last`` (on by default: weights and image batches
in channels-last memory format; ``benchmarks/memory_format.py`` times it) and ``compile`` (``torch.compile`` of
the networks, in place).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aegen import __version__
from aegen.errors import AegenError, DivergenceError
from aegen.latent import lerp, slerp, traverse_dims
from aegen.nets import check_image_shape
from aegen.checkpoint import first_nonfinite
from aegen.models.optim import LossTracker, PhasedOptimisation, compile_nets
from aegen.samplers import GaussianSampler, Sampler, build
from aegen.training import gather_per_process, plain, restore_rng, rng_record


class GenerativeAE(PhasedOptimisation):
    """Base class: manual optimisation, named phases, per-rank noise, the public API."""

    registry_name: ClassVar[str] = ""
    #: the model's default ``sampler`` is a Gaussian fitted to the training codes (plain AEs);
    #: models with a prior of their own set this to False (no sampler) and override ``prior_sample``.
    samples_from_code_gaussian: ClassVar[bool] = True
    #: whether the model maps images to codes; models without an encoder (image GANs) set this to False:
    #: ``encode``/``reconstruct`` then raise an AegenError and the tools work over generator inputs instead
    has_encoder: ClassVar[bool] = True
    #: options added after a release whose new default changes the weights, with the value that rebuilds
    #: checkpoints written before them (whose saved hyperparameters lack the option); ``aegen.load`` uses it
    added_options: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        img_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 16,
        num_classes: int | None = None,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        width: int = 32,
        grad_clip: float | None = None,
        compile: bool = False,
        channels_last: bool = True,
    ) -> None:
        """
        Args:
            img_shape: (channels, height, width) of the images; set from the data by the CLI.
            latent_dim: size of the code z.
            num_classes: number of labels in the data (None if unlabelled); set by the CLI.
            lr: Adam learning rate of every optimiser unless a method overrides it.
            betas: Adam betas.
            width: channels of the first conv layer; they double per stage (max 256).
            grad_clip: clip each optimiser's gradient norm to this value (None: no clipping).
            compile: ``torch.compile`` the networks (in place: checkpoints keep their keys) when a trainer
                sets the model up; the first steps are slow while it compiles.
            channels_last: keep conv weights and 4-d image batches in channels-last memory format (the same
                computation in another memory layout, for faster convolution kernels; false: torch's default).
        """
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters()
        self.img_shape = check_image_shape(img_shape)
        for name, value in (("latent_dim", latent_dim), ("width", width)):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.latent_dim = latent_dim
        #: what ``sample`` draws codes from, refitted to the training codes before each validation
        #: (None: the model's own prior); ``aegen prior`` replaces it with a fitted one
        self.sampler: Sampler | None = GaussianSampler(latent_dim) if self.samples_from_code_gaussian else None
        self._noise: torch.Generator | None = None
        #: the optimisers' names, in ``configure_optimizers``' order (``optimizer(name)`` looks them up here)
        self.optimizer_names: list[str] = []
        self._resume: dict[str, Any] | None = None  # this process's saved random state, until the first step
        self._losses = LossTracker()  # every step's losses on the device: epoch sums, first NaN/inf
        self._compiled = False

    # ----------------------------------------------------------------- public API
    def encode(self, x: Tensor) -> Tensor:
        """Images (B, C, H, W) -> codes (B, latent_dim): ``self.encoder(x)`` for models with an ``encoder``."""
        if not self.has_encoder:
            raise AegenError(f"{self.registry_name or type(self).__name__} has no encoder; it cannot encode or "
                             "reconstruct images (sample, traverse and interpolate work over its generator inputs)")
        return self._own_net("encoder", "encode")(x)

    def decode(self, z: Tensor) -> Tensor:
        """Codes (B, latent_dim) -> images (B, C, H, W) in [-1, 1]: ``self.decoder(z)`` for models with a
        ``decoder``."""
        return self._own_net("decoder", "decode")(z)

    def _own_net(self, name: str, method: str) -> nn.Module:
        """The submodule ``name`` that the default ``method`` applies."""
        net = self._modules.get(name)
        if net is None:
            raise NotImplementedError(f"{type(self).__name__} has no {name} submodule: it must override {method}()")
        return net

    def reconstruct(self, x: Tensor) -> Tensor:
        """decode(encode(x))."""
        return self.decode(self.encode(x)).contiguous()

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Codes (n, latent_dim) from the model's own prior; by default, from its ``sampler``.

        Models with a categorical code also take ``category`` (an int, or (n,) indices), which fixes it.
        """
        if self.sampler is None:
            raise NotImplementedError(f"{type(self).__name__} has neither a prior nor a sampler")
        return self.sampler.sample(n, generator)

    def generated_codes(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """The codes ``sample`` decodes: from the ``sampler`` if the model has one, else from ``prior_sample``."""
        return self.prior_sample(n, generator) if self.sampler is None else self.sampler.sample(n, generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, category: int | Tensor | None = None) -> Tensor:
        """``n`` generated images (n, C, H, W), decoded from ``generated_codes``; ``category`` (an int,
        or (n,) indices) draws from the model's own prior with that categorical code instead, for
        models that have one (InfoGAN, LatentGAN, the clustering AAE; a sampler has none)."""
        if category is None:
            return self.decode(self.generated_codes(n, generator)).contiguous()
        if "category" not in inspect.signature(self.prior_sample).parameters:
            raise ValueError(f"{type(self).__name__} has no categorical code for sample(category=...) to fix")
        return self.decode(self.prior_sample(n, generator, category=category)).contiguous()

    def cluster_probs(self, x: Tensor) -> Tensor | None:
        """Cluster membership probabilities (B, K) from the model's own cluster head; None if it has none."""
        return None

    def sample_conditional(self, n: int, classes: Tensor, generator: torch.Generator | None = None) -> Tensor | None:
        """``n`` images generated for the given data classes (n,) (images (n, C, H, W)); None if unsupported.

        Conditional models override this (the supervised code generator, LatentGAN with its category
        mapped to the class); the evaluation's ``cond_acc_judge`` checks each image is judged its class.
        """
        return None

    @torch.no_grad()
    def interpolate(self, x1: Tensor, x2: Tensor, steps: int = 8, spherical: bool = False) -> Tensor:
        """Decoded linear (or spherical) interpolations between the codes of x1 and x2: (B, steps, C, H, W)."""
        z = (slerp if spherical else lerp)(self.encode(x1), self.encode(x2), steps)
        return self.decode(z.flatten(0, 1)).contiguous().unflatten(0, (len(x1), steps))

    @torch.no_grad()
    def traversal(
        self,
        x: Tensor | None = None,
        steps: int = 10,
        span: float | None = None,
        code: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """A sheet (rows, steps, C, H, W) of what the codes control, for ``aegen traverse``.

        Default: per-dimension traversal. Row i sweeps code dimension i (only ``code`` if given)
        over ±``span`` (default 2) standard deviations of ``generated_codes``, around the code
        of ``x[0]`` when images are given, else around the mean code; the other dimensions stay
        fixed. Models with structured codes override this (e.g. LatentGAN: category x continuous code).
        """
        prior = self.generated_codes(1024, generator)
        center = self.encode(x[:1].to(self.device))[0] if x is not None else prior.mean(0)
        codes = traverse_dims(center, prior.std(0), steps, 2.0 if span is None else span,
                              None if code is None else [code])
        return self.decode(codes.flatten(0, 1)).contiguous().unflatten(0, codes.shape[:2])

    # ----------------------------------------------------------------- noise
    @property
    def noise(self) -> torch.Generator:
        """This rank's noise generator (seeded from the global seed plus the rank)."""
        if self._noise is None or self._noise.device != self.device:
            self._noise = torch.Generator(device=self.device)
            self._noise.manual_seed(torch.initial_seed() + 7919 * (self.global_rank + 1))
        return self._noise

    def randn(self, *shape: int) -> Tensor:
        """Standard normal noise from this rank's generator, on the model's device."""
        return torch.randn(*shape, generator=self.noise, device=self.device)

    def randint(self, high: int, *shape: int) -> Tensor:
        """Uniform integers in [0, high) from this rank's generator."""
        return torch.randint(high, shape, generator=self.noise, device=self.device)

    # ----------------------------------------------------------------- training step
    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """One training step: call the method's phases in order; return the (scalar) losses to log."""
        raise NotImplementedError

    def reconstruction_phase(self, x: Tensor) -> dict[str, Tensor]:
        """One step of the ``autoencoder`` optimiser on the pixel MSE of ``reconstruct(x)``: {"recon": loss}."""
        with self.phase("autoencoder") as update:
            return {"recon": update(F.mse_loss(self.reconstruct(x), x))}

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        if self._resume is not None:
            self._restore(batch_idx)
        x, y = batch
        losses = self.training_phases(self._images(x), y)
        self._watch_losses(losses, batch_idx, check=batch_idx % max(self.trainer.log_every_n_steps, 1) == 0)
        # Lightning's logging costs more than the rest of the step's bookkeeping: log only on the steps its loggers
        # write (train_means counts every step; Lightning's LearningRateMonitor reads the same flag)
        if self.trainer._logger_connector.should_update_logs or self.trainer.fast_dev_run:
            self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=True, on_epoch=False, batch_size=len(x))

    def train_means(self) -> dict[str, float]:
        """``train/NAME`` -> the mean of that training loss over this process's steps of the latest epoch trained
        (every step, logged or not; one device read)."""
        return {f"train/{name}": mean for name, mean in self._losses.means().items()}

    def configure_model(self) -> None:
        self.use_memory_format()
        if self.hparams.compile and not self._compiled:
            self._compiled = bool(compile_nets(self))

    def use_memory_format(self) -> None:
        """Put the weights in the model's memory format (channels-last under ``channels_last``); Lightning's
        ``load_from_checkpoint`` and ``aegen.load`` do it, so a loaded model computes as it trained."""
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def _images(self, x: Tensor) -> Tensor:
        """A batch's images in the model's memory format (channels-last under ``channels_last``)."""
        if self.hparams.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        loader = self.trainer.train_dataloader
        if hasattr(loader, "position"):  # aegen's in-memory loaders resume inside an epoch from here
            loader.position = batch_idx + 1

    # ----------------------------------------------------------------- divergence guard
    def _watch_losses(self, losses: dict[str, Tensor], batch_idx: int, check: bool) -> None:
        """Count the step's losses (``train_means``) and stop at the step a loss turns NaN/inf.

        On the CPU every step is checked at once; on an accelerator the first bad step of each
        loss is kept on the device (no host sync per step) and read every ``log_every_n_steps``
        and before every checkpoint.
        """
        self._losses.add(losses, (self.current_epoch, batch_idx, self.global_step))
        if check or self.device.type == "cpu":
            self.check_losses()

    def check_losses(self) -> None:
        """Raise a DivergenceError if a loss has been NaN/inf since the run started."""
        bad = self._losses.first_bad()
        if bad:
            epoch, batch, step = min(bad.values(), key=lambda w: w[2])
            raise DivergenceError(f"loss {', '.join(bad)} became NaN/inf at epoch {epoch}, batch {batch} "
                                  f"(optimiser step {step})")

    @torch.no_grad()
    def fit_sampler(self, batches: Iterable[tuple[Tensor, Tensor]], max_items: int = 10_000) -> None:
        """Fit ``sampler`` to the eval-mode codes of (up to ``max_items``) training images.

        Under DDP each rank encodes its shard; the sampler combines them (the Gaussian sums its
        statistics over ranks, other samplers gather the codes).
        """
        was_training, seen = self.training, 0
        self.eval()
        for x, _ in batches:
            self.sampler.update(self.encode(x.to(self.device)))
            seen += len(x)
            if seen >= max_items:
                break
        self.train(was_training)
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            self.sampler.fit_updates()
        else:
            self.sampler.fit_updates(lambda t: trainer.strategy.reduce(t, reduce_op="sum"),
                                     lambda t: self.all_gather(t).flatten(0, 1))

    def on_validation_epoch_start(self) -> None:
        # refit before validation, so every checkpoint written after it samples from current codes
        datamodule = self.trainer.datamodule
        if self.sampler is not None and self.trainer.state.fn == "fit" and not self.trainer.sanity_checking:
            if datamodule is not None:
                self.fit_sampler(datamodule.train_dataloader())

    # ----------------------------------------------------------------- evaluation
    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        """Losses on a held-out batch; ``loss`` (default: reconstruction MSE) picks the best checkpoint."""
        mse = F.mse_loss(self.reconstruct(x), x)
        return {"loss": mse, "recon_mse": mse}

    def _eval_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, _ = batch
        losses = self.validation_losses(self._images(x))
        self.log_dict({f"{stage}/{k}": v for k, v in losses.items()}, sync_dist=True, batch_size=len(x), prog_bar=False)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``trainer.predict``: {"codes": encode(x), "reconstructions": reconstruct(x)}, plus "labels" if given."""
        x, *y = batch if isinstance(batch, (tuple, list)) else (batch,)
        x = self._images(x)
        return {"codes": self.encode(x), "reconstructions": self.reconstruct(x), **({"labels": y[0]} if y else {})}

    # ----------------------------------------------------------------- checkpoints and exact resume
    def training_state(self) -> dict[str, Any]:
        """State outside parameters and buffers that later steps depend on (e.g. sums over the
        current epoch); saved per process in every checkpoint. Override with ``load_training_state``."""
        return {}

    def load_training_state(self, state: dict[str, Any], mid_epoch: bool) -> None:
        """Restore ``training_state`` on resume (``mid_epoch``: the checkpoint was written inside an epoch)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_losses()
        bad = first_nonfinite(checkpoint)
        if bad is not None:
            raise DivergenceError(f"{bad} is NaN/inf at step {self.global_step}; the checkpoint was not written")
        record: dict[str, Any] = {"version": __version__, "model": self.registry_name, "data": None,
                                  "sampler": None if self.sampler is None else plain(self.sampler.spec())}
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if getattr(datamodule, "registry_name", ""):
            hparams = {k: v for k, v in datamodule.hparams.items() if not k.startswith("_")}
            record["data"] = {"name": datamodule.registry_name, "hparams": plain(hparams)}
        checkpoint["aegen"] = record
        checkpoint["hyper_parameters"] = plain(dict(checkpoint.get("hyper_parameters", {})))
        if self._trainer is not None and self.trainer.state.fn == "fit":
            # every process's random state, so a resumed run draws the same numbers (all processes save)
            own = {"rng": rng_record(self.noise), "model": self.training_state()}
            checkpoint["aegen_resume"] = gather_per_process(own)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, map_location: Any = None, *args: Any,
                             **kwargs: Any) -> GenerativeAE:
        """Lightning's loader; on ``GenerativeAE`` itself, the model the checkpoint records, rebuilt by
        ``aegen.load`` (weights only, with its sampler, in eval mode; no hyperparameter overrides)."""
        if cls is not GenerativeAE:
            return super().load_from_checkpoint(checkpoint_path, map_location, *args, **kwargs)
        if args or kwargs:
            raise TypeError("GenerativeAE.load_from_checkpoint takes no overrides: call it on the model's class")
        from aegen.checkpoint import load

        return load(checkpoint_path, "cpu" if map_location is None else map_location)

    def use_sampler(self, spec: dict[str, Any] | None) -> None:
        """Give the model the (unfitted) sampler ``spec`` describes (``Sampler.spec()``; None: no
        sampler), unless it already has that one; loading the state dict then fills it."""
        if spec != (None if self.sampler is None else self.sampler.spec()):
            self.sampler = None if spec is None else build(spec).to(self.device)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        record = checkpoint.get("aegen") or {}
        if "sampler" in record:  # the sampler the checkpoint was written with, e.g. one fitted by `aegen prior`
            self.use_sampler(record["sampler"])
        records = checkpoint.get("aegen_resume") or []
        if self._trainer is not None and records:
            rank = self.global_rank
            self._resume = records[rank] if rank < len(records) else None

    def _restore(self, batch_idx: int) -> None:
        """Apply the resumed checkpoint's random state at the first training step (after the sanity
        check, which draws noise of its own)."""
        record, self._resume = self._resume, None
        restore_rng(record["rng"], self.noise)
        self.load_training_state(record.get("model") or {}, mid_epoch=batch_idx > 0)
