"""Your own images as tensors or arrays: ``TensorData`` in Python, ``--data arrays --data.path FILE.npz`` on the CLI.

Images are a torch tensor or numpy array of shape (N, C, H, W), (N, H, W) (one channel) or
(N, H, W, C), with C 1 (grey) or 3 (RGB); a shape that reads both ways, e.g. (N, 3, 32, 3), is
taken as channels first. Their values are uint8 in [0, 255], or floats in [-1, 1] (the models'
range; ``float_range="unit"``: floats in [0, 1], 0 black); other dtypes, NaN/inf and values out of
range are errors. Like every in-memory dataset they are kept as uint8, so float images are rounded
to 256 levels. Images that are not square are centre-cropped to their shorter side; all are then
resized to ``image_size`` (default: kept at that side; the nets take 16, 32, 64 or 128 px).

Labels are optional: (N,) integer class indices (-1: unlabelled; ``num_classes`` is the largest
plus one), or (N, K) integer factor values >= 0 (factor k takes ``factor_sizes[k]`` = its largest
value plus one values, named by ``factor_names``). The train/val/test split is random, fixed by
``split_seed``, with at least one image in each part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

import numpy as np
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from aegen.data.base import AEDataModule, Split, random_split_indices, resize_uint8, signed_to_uint8, unit_to_uint8
from aegen.errors import AegenError
from aegen.registry import register_data

Array = Union[Tensor, np.ndarray]
FLOAT_SLACK = 1e-3  # float images may overshoot their range by this much (rounding); they are clamped


def _as_tensor(values: Array, what: str) -> Tensor:
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "biuf":
            raise ValueError(f"{what} must be a numeric array, got dtype {values.dtype}")
        return torch.from_numpy(values)
    if isinstance(values, Tensor):
        return values.detach().cpu()
    raise ValueError(f"{what} must be a torch tensor or numpy array, got {type(values).__name__}")


def _channels_first(images: Tensor) -> Tensor:
    """(N, H, W), (N, C, H, W) or (N, H, W, C) with C 1 or 3 -> (N, C, H, W)."""
    if images.dim() == 3:
        return images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), (N, H, W) or (N, H, W, C), got {tuple(images.shape)}")
    if images.shape[1] in (1, 3):
        return images
    if images.shape[3] in (1, 3):
        return images.permute(0, 3, 1, 2)
    raise ValueError(f"images must have 1 (grey) or 3 (RGB) channels, as (N, C, H, W) or (N, H, W, C); "
                     f"got shape {tuple(images.shape)}")


def _range_error(images: Tensor, low: float, high: float, kind: str) -> ValueError:
    return ValueError(f"{kind} images must lie in [{low:g}, {high:g}], got values from {images.min().item():g} "
                      f"to {images.max().item():g}")


def as_uint8(images: Array, float_range: str = "signed") -> Tensor:
    """Checked images (see the module docstring) -> uint8 (N, C, H, W), at their own size."""
    images = _channels_first(_as_tensor(images, "images"))
    if len(images) == 0 or images.shape[-1] == 0 or images.shape[-2] == 0:
        raise ValueError(f"images are empty: shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.contiguous()
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 in [0, 255] or floats in [-1, 1], got {images.dtype}; "
                         "convert them, e.g. images.astype(np.uint8)")
    images = images.float()
    bad = (~torch.isfinite(images)).flatten(1).any(1)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} images hold NaN or inf values (the first is image {int(bad.nonzero()[0])})")
    low = 0.0 if float_range == "unit" else -1.0
    if images.min() < low - FLOAT_SLACK or images.max() > 1 + FLOAT_SLACK:
        hint = "" if float_range == "unit" else "; scale them (x / 127.5 - 1 for 0-255 values)"
        raise ValueError(str(_range_error(images, low, 1, "float")) + hint)
    if float_range == "unit":
        return unit_to_uint8(images)
    if images.min() >= 0:
        rank_zero_warn("float images all lie in [0, 1] but are read as [-1, 1] (0 is mid-grey); "
                       "if 0 is black, pass float_range='unit'")
    return signed_to_uint8(images)


def as_labels(labels: Array | None, n: int) -> Tensor:
    """Checked labels (see the module docstring) -> long (N,) or (N, K); None -> -1 (unlabelled)."""
    if labels is None:
        return torch.full((n,), -1, dtype=torch.long)
    labels = _as_tensor(labels, "labels")
    if labels.dim() not in (1, 2) or len(labels) != n or labels.dim() == 2 and labels.shape[1] == 0:
        raise ValueError(f"labels must have shape ({n},) or ({n}, K), one row per image, got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers (class indices or factor values), got {labels.dtype}")
    labels = labels.long()
    low = -1 if labels.dim() == 1 else 0
    if labels.numel() and labels.min() < low:
        raise ValueError(f"labels must be >= {low} ({'-1: unlabelled' if low else 'factor values'}), "
                         f"got {labels.min().item()}")
    return labels.contiguous()


def square(images: Tensor, size: int | None) -> Tensor:
    """uint8 (N, C, H, W) -> centre-cropped to the shorter side, then resized to ``size`` (None: kept)."""
    h, w = images.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[..., top:top + side, left:left + side]
    return resize_uint8(images, size or side)


class TensorData(AEDataModule):
    """Images (and labels) you already hold as torch tensors or numpy arrays, e.g.
    ``trainer.fit(model, TensorData(images, labels))``; see ``aegen.data.arrays`` for the accepted
    shapes, dtypes and ranges."""

    data_arguments = ("images", "labels")

    def __init__(
        self,
        images: Array,
        labels: Array | None = None,
        image_size: int | None = None,
        float_range: Literal["signed", "unit"] = "signed",
        factor_names: list[str] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        **kwargs,
    ) -> None:
        """
        Args:
            images: (N, C, H, W), (N, H, W) or (N, H, W, C) images, C 1 or 3; uint8 in [0, 255] or
                floats in the ``float_range``.
            labels: (N,) class indices (-1: unlabelled) or (N, K) factor values; None: unlabelled.
            image_size: side the (centre-cropped) images are resized to (None: their shorter side).
            float_range: range of float images: "signed" [-1, 1] or "unit" [0, 1] (0 black).
            factor_names: names of the K factors of (N, K) labels (default factor0, factor1, ...).
            val_fraction: share of the images held out for validation (at least one image).
            test_fraction: share of the images held out for testing (at least one image).
        """
        if float_range not in ("signed", "unit"):
            raise ValueError(f"float_range must be 'signed' ([-1, 1]) or 'unit' ([0, 1]), got {float_range!r}")
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size}")
        pixels = square(as_uint8(images, float_range), image_size)
        targets = as_labels(labels, len(pixels))
        images = labels = None  # data, not settings: released here, and kept out of the hyperparameters
        super().__init__(image_size=image_size, **kwargs)
        self.data = (pixels, targets)
        self.image_size = pixels.shape[-1]
        self.channels = pixels.shape[1]
        fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
        self.parts = random_split_indices(len(pixels), fractions, self.split_seed)  # train, val, test indices
        if min(len(p) for p in self.parts) == 0:
            raise ValueError(f"{len(pixels)} images are too few for a train/val/test split of "
                             f"{', '.join(f'{f:g}' for f in fractions)}; add images or change the fractions")
        self._describe_labels(targets, factor_names)

    def _describe_labels(self, labels: Tensor, factor_names: list[str] | None) -> None:
        """Classes of (N,) labels, factors of (N, K) labels."""
        if labels.dim() == 1:
            top = int(labels.max()) if labels.numel() else -1
            self.num_classes = top + 1 if top >= 0 else None
            if factor_names is not None:
                raise ValueError("factor_names name the columns of (N, K) labels, but the labels are (N,)")
            return
        k = labels.shape[1]
        names = list(factor_names) if factor_names is not None else [f"factor{i}" for i in range(k)]
        if len(names) != k or len(set(names)) != k:
            raise ValueError(f"factor_names must be {k} distinct names, one per label column, got {names}")
        self.factor_names = names
        self.factor_sizes = [int(v) + 1 for v in labels.max(0).values]

    def load_splits(self) -> dict[str, Split]:
        images, labels = self.data
        return {name: (images[idx], labels[idx]) for name, idx in zip(("train", "val", "test"), self.parts)}


def read_npz(path: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels or None) from a .npz file with keys ``images`` and optionally ``labels``."""
    how = "save one with np.savez(path, images=images, labels=labels)"
    if not path:
        raise AegenError(f"arrays needs --data.path FILE.npz, a numpy archive with an 'images' array; {how}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise AegenError(f"arrays: {file} not found (from {Path.cwd()}); {how}")
    try:
        with np.load(file, allow_pickle=False) as archive:
            if "images" not in archive.files:
                held = ", ".join(archive.files) or "nothing"
                raise AegenError(f"arrays: {file} has no 'images' array (it holds: {held}); {how}")
            return archive["images"], archive["labels"] if "labels" in archive.files else None
    except (OSError, ValueError) as err:
        raise AegenError(f"arrays: {file} is not a readable .npz archive ({str(err).splitlines()[0]}); {how}") from None


@register_data("arrays")
class ArraysFile(TensorData):
    """Your own images (and labels) from a numpy .npz file (--data.path): keys images, labels."""

    def __init__(self, path: str | None = None, **kwargs) -> None:
        """
        Args:
            path: a .npz file holding ``images`` and optionally ``labels`` (see ``TensorData``).
        """
        images, labels = read_npz(path)
        try:
            super().__init__(images, labels, **kwargs)
        except ValueError as err:
            raise AegenError(f"arrays: {path}: {err}") from None
        self.path = path
