"""The evaluation metrics as Lightning callbacks, logged to every logger after validation epochs.

Add them with ``--trainer.callbacks``::

    aegen fit --model ae --trainer.callbacks+=SampleQuality --trainer.callbacks.num_samples=2000
    aegen fit --model ae --trainer.callbacks+=ClusteringMetrics --trainer.callbacks+=ReconstructionMetrics

They are correct under DDP: each rank feeds its own share of the data and samples into
torchmetrics metrics, whose states are synced at ``compute``; every rank computes and logs the
same numbers, and there is no rank-zero-only collective. A callback that cannot run (no Inception
weights, a dataset without classes or factors) warns once and skips, on every rank alike.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from aegen.data.base import signed_to_uint8
from aegen.errors import AegenError
from aegen.metrics import fidelity
from aegen.metrics.clustering import ClusteringScores
from aegen.metrics.disentanglement import DisentanglementScores
from aegen.metrics.judge import JudgeNet, get_judge, judge_path, load_judge
from aegen.metrics.reconstruction import reconstruction_collection
from aegen.metrics.splits import labelled_batches, split_size


def _all_ranks_agree(trainer: pl.Trainer, ok: bool) -> bool:
    """True only when ``ok`` holds on every rank (a collective: call it on every rank)."""
    flag = torch.tensor(float(ok), device=trainer.strategy.root_device)
    return bool(trainer.strategy.reduce(flag, reduce_op="sum").item() >= trainer.world_size - 0.5)


def _updated(metric: Any) -> bool:
    members = metric.values() if isinstance(metric, MetricCollection) else [metric]
    return any(m.update_count for m in members)


class _EpochCallback(pl.Callback):
    """Shared plumbing: run every ``every_n_epochs`` validation epochs, warn once and skip when unusable."""

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.enabled = True

    def prepare(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Build what the callback needs; raise AegenError (with the reason) when it cannot run."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        reason = None
        try:
            self.prepare(trainer, pl_module)
        except AegenError as err:
            reason = str(err)
        if not _all_ranks_agree(trainer, reason is None):
            self.enabled = False
            rank_zero_warn(f"{type(self).__name__} is skipped: {reason or 'it cannot run on every rank'}")

    def due(self, trainer: pl.Trainer) -> bool:
        return self.enabled and not trainer.sanity_checking and trainer.current_epoch % self.every_n_epochs == 0

    def log_values(self, pl_module: pl.LightningModule, values: dict[str, Any]) -> None:
        # identical on every rank; sync_dist averages equal numbers and keeps Lightning's DDP check quiet
        for key, value in values.items():
            pl_module.log(f"val/{key}", float(value), sync_dist=True)


class _Layer(nn.Module):
    """uint8 images -> one output of a judge (``features`` or ``logits``), as torchmetrics expects a feature net."""

    def __init__(self, judge: JudgeNet, output: int) -> None:
        super().__init__()
        self.judge, self.output = judge, output
        self.num_features = judge.head.in_features if output == 0 else judge.head.out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.judge.features_and_logits(x.float().div(127.5).sub(1.0))[self.output]


class SampleQuality(_EpochCallback):
    """FID, KID and IS of samples vs the training split with torchmetrics, in judge or Inception features.

    Logged as ``val/fid_judge``, ``val/kid_judge_mean``, ``val/is_judge_mean`` (judge) or
    ``val/fid``, ``val/kid_mean``, ``val/is_mean`` (Inception, resized without antialiasing as in
    the standard TF-compatible FID). Real features are computed once; each rank uses its share of
    ``num_samples`` real images and generates its share of samples with fixed noise.
    """

    def __init__(
        self,
        features: str = "judge",
        num_samples: int = 1000,
        metrics: tuple[str, ...] = ("fid", "kid", "is"),
        every_n_epochs: int = 1,
        inception_weights: str | None = None,
        seed: int = 0,
    ) -> None:
        """
        Args:
            features: "judge" (the dataset's judge classifier, trained and cached on first use) or
                "inception" (needs Inception weights: this path, $AEGEN_INCEPTION_WEIGHTS or torch hub's cache).
            num_samples: generated images (and real images) per evaluation, over all ranks.
            metrics: any of fid, kid, is.
            every_n_epochs: evaluate every this many validation epochs.
            inception_weights: path of torch-fidelity's Inception weights file.
            seed: seed of the fixed sample noise.
        """
        super().__init__(every_n_epochs)
        if features not in ("judge", "inception"):
            raise ValueError(f"features must be 'judge' or 'inception', got {features!r}")
        unknown = set(metrics) - {"fid", "kid", "is"}
        if unknown or not metrics:
            raise ValueError(f"metrics must be among fid, kid, is; got {list(metrics)}")
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}")
        self.features, self.num_samples, self.wanted = features, num_samples, tuple(metrics)
        self.inception_weights, self.seed = inception_weights, seed
        self.metrics: MetricCollection | None = None
        self._real_done = False

    def _feature_nets(self, trainer: pl.Trainer) -> tuple[nn.Module, nn.Module, str]:
        if self.features == "inception":
            path = str(fidelity.inception_weights(self.inception_weights))
            pool = NoTrainInceptionV3("inception-v3-compat", ["2048"], path, antialias=False)
            logits = NoTrainInceptionV3("inception-v3-compat", ["logits_unbiased"], path, antialias=False)
            return pool, logits, ""
        datamodule = trainer.datamodule
        if datamodule is None or not datamodule.num_classes:
            raise AegenError("judge features need a dataset with class labels")
        if trainer.local_rank == 0:
            get_judge(datamodule)  # trains and caches it once per machine
        trainer.strategy.barrier()
        judge = load_judge(judge_path(datamodule))
        return _Layer(judge, 0), _Layer(judge, 1), "_judge"

    def prepare(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.metrics is not None:
            return
        if getattr(trainer, "datamodule", None) is None:
            raise AegenError("sample quality needs an aegen datamodule (its training split is the reference)")
        pool, logits, self.suffix = self._feature_nets(trainer)
        real = min(self.num_samples, split_size(trainer.datamodule, "train"))
        channels, height, width = pl_module.img_shape
        shape = (3 if self.features == "inception" else channels, height, width)
        subset = min(1000, real, self.num_samples)
        available = {
            "fid": lambda: FrechetInceptionDistance(pool, reset_real_features=False, input_img_size=shape),
            "kid": lambda: KernelInceptionDistance(pool, subset_size=subset, reset_real_features=False),
            "is": lambda: InceptionScore(logits, splits=min(10, self.num_samples)),
        }
        self.metrics = MetricCollection({name: available[name]() for name in self.wanted}, compute_groups=False)
        self.metrics.to(pl_module.device)

    def _rgb(self, images: Tensor) -> Tensor:
        images = signed_to_uint8(images)
        return images.expand(-1, 3, -1, -1) if self.features == "inception" and images.shape[1] == 1 else images

    def _update(self, images: Tensor, real: bool) -> None:
        for name, metric in self.metrics.items():
            if name == "is":
                if not real:
                    metric.update(images)
            else:
                metric.update(images, real=real)

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.due(trainer):
            return
        rank, world = trainer.global_rank, trainer.world_size
        if not self._real_done:
            n_real = min(self.num_samples, split_size(trainer.datamodule, "train"))
            indices = torch.arange(n_real)[rank::world]
            for x, _ in labelled_batches(trainer.datamodule, "train", 256, indices=indices):
                self._update(self._rgb(x.to(pl_module.device)), real=True)
            self._real_done = True
        share = math.ceil(self.num_samples / world)
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed * 1_000_003 + rank)
        was_training = pl_module.training
        pl_module.eval()
        for start in range(0, share, 500):
            self._update(self._rgb(pl_module.sample(min(500, share - start), generator=generator)), real=False)
        pl_module.train(was_training)
        values: dict[str, Any] = {}
        for name, metric in self.metrics.items():
            result = metric.compute()
            if name == "fid":
                values[f"fid{self.suffix}"] = result
            else:
                values[f"{name}{self.suffix}_mean"], values[f"{name}{self.suffix}_std"] = result
            metric.reset()  # FID and KID keep their real features
        self.log_values(pl_module, values)


class _BatchCallback(_EpochCallback):
    """Feeds validation batches into a metric and logs its ``compute`` at the end of due epochs."""

    metric: Any

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.enabled and not trainer.sanity_checking and trainer.current_epoch % self.every_n_epochs == 0:
            self.update(pl_module, batch)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.metric is None:
            return
        if self.due(trainer) and _updated(self.metric):
            self.log_values(pl_module, self.metric.compute())
        self.metric.reset()


class ClusteringMetrics(_BatchCallback):
    """Unsupervised classification error on the validation split: ``val/cluster_error_hungarian``,
    ``val/cluster_error_majority``, ``val/nmi``, ``val/ari`` (cluster head, else k-means on codes).

    The AAE-rule error and the linear probe need a second split; ``aegen evaluate`` reports them.
    """

    def __init__(self, every_n_epochs: int = 1, seed: int = 0) -> None:
        """
        Args:
            every_n_epochs: evaluate every this many validation epochs.
            seed: k-means seed.
        """
        super().__init__(every_n_epochs)
        self.seed = seed
        self.metric: ClusteringScores | None = None

    def prepare(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or not datamodule.num_classes:
            raise AegenError("clustering metrics need a dataset with class labels")
        self.datamodule = datamodule
        self.metric = ClusteringScores(datamodule.num_classes, self.seed).to(pl_module.device)

    @torch.no_grad()
    def update(self, pl_module: pl.LightningModule, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        labels = self.datamodule.class_labels(y)
        if labels is not None:
            self.metric.update(pl_module.encode(x), labels, pl_module.cluster_probs(x))


class DisentanglementMetrics(_BatchCallback):
    """``val/mig``, ``val/dci_*``, ``val/factorvae_score`` and ``val/sap`` on the validation split's codes
    (split 2:1 into the metrics' training and test points), for datasets with factor labels."""

    def __init__(self, every_n_epochs: int = 1, seed: int = 0) -> None:
        """
        Args:
            every_n_epochs: evaluate every this many validation epochs.
            seed: seed of the metrics' sampling.
        """
        super().__init__(every_n_epochs)
        self.seed = seed
        self.metric: DisentanglementScores | None = None

    def prepare(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or not datamodule.factor_names:
            raise AegenError("disentanglement metrics need a dataset with factor labels (e.g. --data fonts)")
        self.metric = DisentanglementScores(seed=self.seed).to(pl_module.device)

    @torch.no_grad()
    def update(self, pl_module: pl.LightningModule, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        if y.dim() == 2:
            self.metric.update(pl_module.encode(x), y)


class ReconstructionMetrics(_BatchCallback):
    """``val/psnr`` and ``val/ssim`` of reconstructions of the validation split (torchmetrics).

    (``val/recon_mse`` is logged by the model itself.)
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        """
        Args:
            every_n_epochs: evaluate every this many validation epochs.
        """
        super().__init__(every_n_epochs)
        self.metric = reconstruction_collection(("psnr", "ssim"))

    def prepare(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.metric.to(pl_module.device)

    @torch.no_grad()
    def update(self, pl_module: pl.LightningModule, batch: tuple[Tensor, Tensor]) -> None:
        x = batch[0]
        self.metric.update(pl_module.reconstruct(x), x)
