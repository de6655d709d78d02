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

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from aegen.errors import AegenError

SPLITS = ("train", "val", "test")
TensorSplit = tuple[Tensor, Tensor]
Split = Union[TensorSplit, Dataset]


def unit_to_uint8(images: Tensor) -> Tensor:
    """Float images in [0, 1] (decoded files, resized images) -> uint8."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


def from_uint8(images: Tensor) -> Tensor:
    """uint8 images -> float in [-1, 1] (the models' range)."""
    return images.float().div_(127.5).sub_(1.0)


def signed_to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] (the models' range) -> uint8: the inverse of ``from_uint8``."""
    return images.detach().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def resize(images: Tensor, size: int) -> Tensor:
    """Float (N, C, H, W) images in [0, 1] -> (N, C, size, size), antialiased when shrinking."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def resize_uint8(images: Tensor, size: int, chunk: int = 4096) -> Tensor:
    """uint8 (N, C, H, W) images -> uint8 (N, C, size, size) via ``resize``, in chunks to bound memory."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.cat([unit_to_uint8(resize(part.float() / 255, size)) for part in images.split(chunk)])


def find_files(directory: Path, names: Sequence[str], dataset: str, how: str, suffixes: Sequence[str] = ("",)) -> list[Path]:
    """The expected files in ``directory`` (each may end in one of ``suffixes``, e.g. ``.gz``; a name
    ending in "/" is a directory).

    Raises one AegenError naming every missing file, the directory searched and ``how`` to get them.
    """
    found, missing = [], []
    for name in names:
        if name.endswith("/"):  # a directory
            path = directory / name.rstrip("/") if (directory / name).is_dir() else None
        else:
            path = next((directory / (name + s) for s in suffixes if (directory / (name + s)).is_file()), None)
        (found if path else missing).append(path or name)
    if missing:
        raise AegenError(f"{dataset}: missing {', '.join(map(str, missing))} in {directory}; {how}")
    return found


def to_mode(image: Image.Image, mode: str, background: int = 255) -> Image.Image:
    """A PIL image of any mode -> 8-bit ``mode`` ("L" or "RGB"), keeping its full range.

    ``Image.convert`` clips 16-bit, 32-bit and float pixels to 0-255 (a 16-bit PNG comes out
    nearly white). Here 16-bit and 32-bit integer pixels (modes I;16, I;16B, I;16L, I) are scaled
    from 0-65535 (v -> round(v / 257)), or from 0 to the image's maximum when a value exceeds
    65535; float pixels (F) from 0-1, 0-255 or 0-65535, the first that holds the image's maximum
    (beyond that from 0 to its maximum); negative and non-finite values become 0. Palette images
    go through their palette; transparency (RGBA, LA, PA, palette or tRNS transparency) is
    composited over a grey ``background`` level (255: white); CMYK, YCbCr, 1-bit and the like
    are converted by PIL. A mode PIL cannot convert raises ValueError.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"to_mode: mode must be 'L' or 'RGB', got {mode!r}")
    if image.mode == "F" or image.mode.startswith("I"):
        values = np.asarray(image).astype(np.float32)  # exact enough: v / 257 is never within 1e-3 of a half
        values[~np.isfinite(values)] = 0
        values = values.clip(0, None)
        top = float(values.max()) if values.size else 0.0
        if image.mode == "F":
            full = next((f for f in (1.0, 255.0, 65535.0) if top <= f), top)
        else:
            full = 65535.0 if top <= 65535 else top
        grey = np.rint(values * (255.0 / full)).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(grey)
    else:
        alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or image.info.get("transparency") is not None
        alpha = alpha or (image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA")
        if alpha:
            under = Image.new("RGBA", image.size, (background, background, background, 255))
            image = Image.alpha_composite(under, image.convert("RGBA")).convert("RGB")
    return image if image.mode == mode else image.convert(mode)


class ImageFiles(Dataset):
    """Image files decoded on demand -> (float (C, H, W) image in [-1, 1], label).

    ``prepare`` maps the decoded PIL image (``mode`` "L" or "RGB", converted by ``to_mode``, so
    16-bit, float, palette and alpha images keep their full range) to its final square size; it
    must be picklable for DataLoader workers. A file that fails to decode raises an AegenError
    naming it.
    """

    def __init__(self, paths: Sequence[Path], labels: Tensor, prepare, mode: str = "RGB") -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.paths, self.labels, self.prepare, self.mode = list(paths), labels, prepare, mode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image = self.prepare(to_mode(image, self.mode))
        except (OSError, ValueError, SyntaxError) as err:
            raise AegenError(f"{path} is corrupt or truncated ({err}); replace or remove it") from None
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
        pixels = pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1)
        return from_uint8(pixels), self.labels[index]


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
    Resumable inside an epoch: ``position`` (batches trained on this epoch, set by the model after
    each batch) goes into checkpoints through ``state_dict``, and a restored loader skips them.
    ``pin_memory`` puts each batch in page-locked memory, so Lightning's copy to a CUDA device (non-blocking
    there) overlaps the step; images already on the device (``device_cache``) are indexed there instead.
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
        pin_memory: bool = False,
    ) -> None:
        self.images, self.labels = images, labels
        self.pin_memory = pin_memory and images.device.type == "cpu"
        self.batch_size, self.drop_last, self.seed, self.rank = batch_size, drop_last, seed, rank
        self.sampler = DistributedSampler(images, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        self.batch_sampler = None  # DataLoader's attribute, read by Lightning's checks
        self.position = 0
        self._skip = 0

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batch_indices(self) -> list[Tensor]:
        """This epoch's batches of item indices (this rank's shard)."""
        index = torch.tensor(list(self.sampler), dtype=torch.long, device=self.images.device)
        return list(index.split(self.batch_size)[: len(self)])

    def make_batch(self, index: Tensor, skipped: bool = False) -> tuple[Tensor, Tensor] | None:
        """The (images in [-1, 1], labels) batch of these items; ``skipped`` batches are only
        passed through on resume (a loader that draws per batch keeps its draws in step)."""
        return None if skipped else (from_uint8(self.images[index]), self.labels[index])

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        skip, self._skip, self.position = self._skip, 0, 0
        for i, index in enumerate(self.batch_indices()):
            batch = self.make_batch(index, skipped=i < skip)
            if batch is not None:
                yield tuple(t.pin_memory() for t in batch) if self.pin_memory else batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = self.position = int(state.get("position", 0))


class AEDataModule(pl.LightningDataModule):
    """Base datamodule: image shape, classes, factors, attributes, fixed seeded splits."""

    registry_name: ClassVar[str] = ""
    channels: int = 1
    num_classes: int | None = None
    factor_names: list[str] | None = None
    factor_sizes: list[int] | None = None
    attribute_names: list[str] | None = None
    #: arguments that are data, not settings: left out of the hyperparameters, logs and checkpoints
    data_arguments: ClassVar[tuple[str, ...]] = ()
    #: how this dataset's judges train where it differs from ``aegen.metrics.judge.JUDGE_TRAINING``
    judge_training: ClassVar[dict[str, int | float]] = {}

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 32,
        batch_size: int = 64,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        device_cache: bool = False,
        split_seed: int = 0,
        groups: bool = False,
    ) -> None:
        """
        Args:
            root: data directory (default: $AEGEN_DATA, else ~/.cache/aegen/data).
            image_size: images are resized to image_size x image_size.
            batch_size: batch size per device.
            num_workers: DataLoader workers for file-backed datasets (default: min(8, CPUs)).
            pin_memory: pin the host memory of batches bound for a CUDA device (default: when CUDA is available).
            device_cache: copy in-memory training data to the accelerator once and index batches there.
            split_seed: seed of the fixed train/val/test split.
            groups: training batches are groups, an anchor plus one partner per factor that shares
                exactly that factor (``aegen.data.groups``; factor datasets only; models that need
                groups switch this on).
        """
        super().__init__()
        self.save_hyperparameters(ignore=list(self.data_arguments))
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.root = Path(root).expanduser() if root else default_root()
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.device_cache = device_cache
        self.split_seed = split_seed
        self.groups = groups
        self._splits: dict[str, Split] | None = None
        self._on_device: dict[str, tuple[torch.device, TensorSplit]] = {}  # split -> its device_cache copy

    def judge_data(self) -> AEDataModule:
        """The data this dataset's judges (``aegen.metrics.judge``) train on: the dataset itself.

        Procedural data overrides this when a run may draw too little of it for a good judge
        (``Fonts``: a fixed, larger and unbiased draw whose training split holds none of this
        data's validation or test items), so its judges do not change with the run's settings.
        """
        return self

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
        """The device batches go to: the trainer's, else the CPU."""
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _cached(self, name: str, data: TensorSplit) -> TensorSplit:
        """A split's tensors on the trainer's device, copied there once (``device_cache``)."""
        device = self._device()
        if name not in self._on_device or self._on_device[name][0] != device:
            self._on_device[name] = (device, (data[0].to(device), data[1].to(device)))
        return self._on_device[name][1]

    def _loader(self, name: str, train: bool) -> InMemoryLoader | DataLoader:
        data = self.split(name)
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        pin = self.pin_memory and self._device().type == "cuda"
        if isinstance(data, tuple):
            images, labels = self._cached(name, data) if train and self.device_cache else data
            if train and self.groups:
                from aegen.data.groups import GroupLoader

                return GroupLoader(images, labels, self.batch_size, seed=self.split_seed, rank=rank, world_size=world,
                                   pin_memory=pin)
            return InMemoryLoader(images, labels, self.batch_size, shuffle=train, drop_last=train,
                                  seed=self.split_seed, rank=rank, world_size=world, pin_memory=pin)
        if train and self.groups:
            raise AegenError(f"{self.registry_name}: group batches need an in-memory dataset with factor labels "
                             "(e.g. --data fonts); drop --data.groups or use a model that does not need groups")
        # a seeded sampler whose order depends only on the epoch, so a resumed run reads the same batches
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=self.split_seed) if train else None
        return DataLoader(data, batch_size=self.batch_size, sampler=sampler, drop_last=train,
                          num_workers=self.num_workers, pin_memory=pin,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> InMemoryLoader | DataLoader:
        loader = self._loader("train", train=True)
        if len(loader) == 0:  # full batches only: a tiny training split would train on nothing
            data = self.split("train")
            n = len(data[0]) if isinstance(data, tuple) else len(data)
            raise AegenError(f"{self.registry_name or type(self).__name__}: the training split has {n} items per "
                             f"device, fewer than --data.batch_size {self.batch_size}; lower the batch size or add data")
        return loader

    def val_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> InMemoryLoader | DataLoader:
        """``trainer.predict`` runs over the test split, in order."""
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


class TrainTestDataModule(AEDataModule):
    """A dataset with official train and test sets read from local files into memory.

    Validation is a fixed seeded share of the official training set; test is the official test
    set. Subclasses implement ``load_train_test`` (uint8 images at their native size) and ``fetch``.
    Nothing is downloaded unless ``download`` is set: a missing file gets one error saying where to
    get it and where to put it.
    """

    def __init__(self, val_fraction: float = 0.1, download: bool = False, **kwargs) -> None:
        """
        Args:
            val_fraction: share of the official training set held out for validation.
            download: fetch missing files from torchvision's sources (or $AEGEN_DOWNLOAD_MIRROR) into
                the data root, md5-checked; files already there are used as they are.
        """
        super().__init__(**kwargs)
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.val_fraction = val_fraction
        self.download = download

    def fetch(self) -> None:
        """Download the missing files into the layout ``load_train_test`` reads (``aegen.data.download``)."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Lightning's once-per-node hook: downloads when ``download`` is set."""
        if self.download:
            self.fetch()

    def load_train_test(self) -> tuple[TensorSplit, TensorSplit]:
        """(train, test) as uint8 (N, C, H, W) images and long labels, from local files."""
        raise NotImplementedError

    def load_splits(self) -> dict[str, Split]:
        if self.download:  # a no-op when prepare_data has run; needed when setup() is called directly
            self.fetch()
        (train_x, train_y), (test_x, test_y) = self.load_train_test()
        train_x, test_x = resize_uint8(train_x, self.image_size), resize_uint8(test_x, self.image_size)
        fit, val = random_split_indices(len(train_x), (1 - self.val_fraction, self.val_fraction), self.split_seed)
        return {"train": (train_x[fit], train_y[fit]), "val": (train_x[val], train_y[val]), "test": (test_x, test_y)}
