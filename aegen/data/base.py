"""The LightningDataModule every aegen dataset extends.

A dataset states its image shape, number of classes, factor metadata and attribute names, and
provides its splits through ``load_splits``: either in-memory ``(images, labels)`` tensors
(images uint8 (N, C, H, W), labels long (N,) or (N, K)), served by the fast ``InMemoryLoader``,
or a ``torch.utils.data.Dataset`` yielding ``(image in [-1, 1], label)``, served by a DataLoader.
Splits are fixed by ``split_seed``; batches are always ``(images in [-1, 1], labels)`` where
labels are class indices (B,) (-1 when unlabelled), or (B, K) factor values / attributes for
factor or attribute datasets (``class_labels`` extracts the class from either).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar, Union

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

SPLITS = ("train", "val", "test")
TensorSplit = tuple[Tensor, Tensor]
Split = Union[TensorSplit, Dataset]


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [0, 1] -> uint8."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


def from_uint8(images: Tensor) -> Tensor:
    """uint8 images -> float in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def resize(images: Tensor, size: int) -> Tensor:
    """Float (N, C, H, W) images in [0, 1] -> (N, C, size, size), antialiased when shrinking."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def random_split_indices(n: int, fractions: Sequence[float], seed: int) -> list[Tensor]:
    """Index tensors for a fixed seeded split of ``range(n)`` into parts of the given fractions."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    sizes = [int(round(f * n)) for f in fractions[1:]]
    first = n - sum(sizes)
    return list(perm.split([first, *sizes]))


def default_root() -> Path:
    """Data root when --data.root is not given: $AEGEN_DATA, else ~/.cache/aegen/data."""
    return Path(os.environ.get("AEGEN_DATA") or Path.home() / ".cache" / "aegen" / "data")


class InMemoryLoader:
    """Batches straight from in-memory tensors: no per-item indexing or collation.

    Shards across DDP ranks like ``DistributedSampler`` (its ``sampler`` is one, so Lightning
    sets its epoch for reshuffling); converts uint8 images to float in [-1, 1] per batch.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler = DistributedSampler(images, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        self.batch_sampler = None  # DataLoader's attribute, read by Lightning's checks

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        index = torch.tensor(list(self.sampler), dtype=torch.long, device=self.images.device)
        for batch in index.split(self.batch_size)[: len(self)]:
            yield from_uint8(self.images[batch]), self.labels[batch]


class AEDataModule(pl.LightningDataModule):
    """Base datamodule: image shape, classes, factors, attributes, fixed seeded splits."""

    registry_name: ClassVar[str] = ""
    channels: int = 1
    num_classes: int | None = None
    factor_names: list[str] | None = None
    factor_sizes: list[int] | None = None
    attribute_names: list[str] | None = None

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 32,
        batch_size: int = 64,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        device_cache: bool = False,
        split_seed: int = 0,
    ) -> None:
        """
        Args:
            root: data directory (default: $AEGEN_DATA, else ~/.cache/aegen/data).
            image_size: images are resized to image_size x image_size.
            batch_size: batch size per device.
            num_workers: DataLoader workers for file-backed datasets (default: min(8, CPUs)).
            pin_memory: pin host memory (default: when CUDA is available).
            device_cache: keep in-memory training data on the accelerator.
            split_seed: seed of the fixed train/val/test split.
        """
        super().__init__()
        self.save_hyperparameters()
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.root = Path(root).expanduser() if root else default_root()
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.device_cache = device_cache
        self.split_seed = split_seed
        self._splits: dict[str, Split] | None = None

    def class_labels(self, labels: Tensor) -> Tensor | None:
        """The class index (B,) carried by a batch's labels, or None when the data has no classes.

        Class datasets return their labels; factor or attribute datasets (labels (B, K)) override
        this to pick their class factor (e.g. fonts: the letter).
        """
        return labels if self.num_classes is not None and labels.dim() == 1 else None

    @property
    def img_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images this datamodule yields."""
        return (self.channels, self.image_size, self.image_size)

    def load_splits(self) -> dict[str, Split]:
        """The train/val/test splits: (uint8 images, labels) tensors or Datasets."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._splits is None:
            self._splits = self.load_splits()

    def split(self, name: str) -> Split:
        """One split, loading the data on first use."""
        self.setup()
        return self._splits[name]

    def _device(self) -> torch.device:
        trainer = self.trainer
        if self.device_cache and trainer is not None:
            return trainer.strategy.root_device
        return torch.device("cpu")

    def _loader(self, name: str, train: bool) -> InMemoryLoader | DataLoader:
        data = self.split(name)
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        if isinstance(data, tuple):
            images, labels = data
            if train and self.device_cache:
                images, labels = images.to(self._device()), labels.to(self._device())
            return InMemoryLoader(images, labels, self.batch_size, shuffle=train, drop_last=train,
                                  seed=self.split_seed, rank=rank, world_size=world)
        return DataLoader(data, batch_size=self.batch_size, shuffle=train, drop_last=train,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("test", train=False)

    def tensors(self, name: str, limit: int | None = None) -> TensorSplit:
        """Up to ``limit`` images (float in [-1, 1]) and labels of a split, in a fixed order."""
        data = self.split(name)
        if isinstance(data, tuple):
            images, labels = data
            return from_uint8(images[:limit].cpu()), labels[:limit].cpu()
        n = len(data) if limit is None else min(limit, len(data))
        items = [data[i] for i in range(n)]
        return torch.stack([torch.as_tensor(x) for x, _ in items]), torch.stack([torch.as_tensor(y) for _, y in items])
