"""Any directory of images: class subfolders give labels, a flat folder gives none.

``--data.root DIR``: when DIR has subfolders holding images, each subfolder (searched
recursively) is a class, named by the folder, in sorted order (``class_names``), and images
directly in DIR are ignored; otherwise every image in DIR (recursively) is used with label -1.
Images are converted to ``channels`` (1: grey, 3: RGB) with their full range by ``to_mode``
(16-bit and float images are scaled, not clipped: a 16-bit value v becomes round(v / 257);
palette images go through their palette; transparent pixels are composited over white), resized
so the shorter side is ``image_size`` and centre-cropped to a square. Images smaller than a
quarter of ``image_size`` on either side get one warning per load giving their number and an
example, as they are blown up to a blur. Files that cannot be decoded are skipped with one
warning naming them; if none can be read, an AegenError says so. The train/val/test split is
fixed by ``split_seed`` (at least one image each for val and test).

Small folders (at most ``in_memory_limit_mb`` of decoded pixels) are decoded once into memory and
served by the fast in-memory loader (``device_cache`` works); larger ones are decoded on demand
by DataLoader workers; those are checked at setup with PIL's ``verify`` (headers and PNG
checksums), and a file that still fails to decode later stops training with an error naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from pytorch_lightning.utilities import rank_zero_warn

from aegen.data.base import AEDataModule, ImageFiles, Split, to_mode
from aegen.errors import AegenError
from aegen.registry import register_data

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")


class FitSquare:
    """Resize so the shorter side is ``size``, then centre-crop to ``size`` x ``size`` (picklable)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        return ImageOps.fit(image, (self.size, self.size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


def _images_under(directory: Path) -> list[Path]:
    found = []
    for parent, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # skip .ipynb_checkpoints and the like
        found += [Path(parent) / f for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


@register_data("folder")
class ImageFolder(AEDataModule):
    """Any directory of images (--data.root): class subfolders give labels, flat gives none."""

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 64,
        channels: int = 3,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        in_memory_limit_mb: int = 1024,
        **kwargs,
    ) -> None:
        """
        Args:
            root: the image directory (required).
            image_size: side of the square images after resizing and centre-cropping.
            channels: 1 (grey) or 3 (RGB).
            val_fraction: share of the images held out for validation (at least one image).
            test_fraction: share of the images held out for testing (at least one image).
            in_memory_limit_mb: decode the whole folder into memory when its pixels take at most
                this many MB (0: always read files on demand).
        """
        if root is None:
            raise AegenError("folder needs --data.root DIR, a directory of images (class subfolders give labels)")
        super().__init__(root=root, image_size=image_size, **kwargs)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
        if not self.root.is_dir():
            raise AegenError(f"folder: {self.root} is not a directory; point --data.root at a directory of images")
        self.channels = channels
        self.fractions = (val_fraction, test_fraction)
        self.in_memory_limit_mb = in_memory_limit_mb
        subdirs = sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        per_class = {d.name: _images_under(d) for d in subdirs}
        per_class = {name: files for name, files in per_class.items() if files}
        if per_class:
            self.class_names: list[str] | None = list(per_class)
            self.num_classes = len(per_class)
            self.files = [f for files in per_class.values() for f in files]
            self.file_labels = [c for c, files in enumerate(per_class.values()) for _ in files]
        else:
            self.class_names = None
            self.files = _images_under(self.root)
            self.file_labels = [-1] * len(self.files)
        if not self.files:
            raise AegenError(f"folder: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {self.root}")

    @property
    def pil_mode(self) -> str:
        """The PIL mode images are converted to: "L" (channels 1) or "RGB"."""
        return "L" if self.channels == 1 else "RGB"

    def _decode(self, path: Path) -> tuple[np.ndarray, tuple[int, int]] | None:
        """(pixels at the final size, the file's (width, height)), or None when it cannot be decoded."""
        try:
            with Image.open(path) as image:
                return np.asarray(FitSquare(self.image_size)(to_mode(image, self.pil_mode))), image.size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None

    @staticmethod
    def _verify(path: Path) -> tuple[int, int] | None:
        """The file's (width, height) when its header and checksums are sound, else None."""
        try:
            with Image.open(path) as image:
                size = image.size
                image.verify()
            return size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None

    def load_splits(self) -> dict[str, Split]:
        pixels = len(self.files) * self.channels * self.image_size**2
        in_memory = self.device_cache or pixels <= self.in_memory_limit_mb * 2**20
        if in_memory:
            decoded = [self._decode(p) for p in self.files]
            sizes = {i: d[1] for i, d in enumerate(decoded) if d is not None}
        else:
            sizes = {i: size for i, p in enumerate(self.files) if (size := self._verify(p)) is not None}
        readable = sorted(sizes)
        broken = [self.files[i] for i in sorted(set(range(len(self.files))) - set(readable))]
        if not readable:
            raise AegenError(f"folder: none of the {len(self.files)} image files in {self.root} could be read "
                             f"(e.g. {self.files[0].name}); check that they are images")
        if broken:
            shown = ", ".join(str(p.relative_to(self.root)) for p in broken[:10])
            more = f" and {len(broken) - 10} more" if len(broken) > 10 else ""
            rank_zero_warn(f"folder: skipped {len(broken)} unreadable image file(s) in {self.root}: {shown}{more}")
        small = [i for i in readable if 4 * min(sizes[i]) < self.image_size]
        if small:
            (w, h), example = sizes[small[0]], self.files[small[0]].relative_to(self.root)
            rank_zero_warn(f"folder: {len(small)} image(s) in {self.root} are smaller than a quarter of --data.image_size "
                           f"{self.image_size} on a side (e.g. {example}, {w}x{h}); they are upscaled to "
                           f"{self.image_size}x{self.image_size} and come out blurred; remove them or lower --data.image_size")
        n = len(readable)
        n_val, n_test = (max(1, round(f * n)) for f in self.fractions)
        if n - n_val - n_test < 1:
            raise AegenError(f"folder: {n} readable images in {self.root} are too few for a train/val/test split; add images")
        order = torch.tensor(readable)[torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))]
        parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
        labels = torch.tensor(self.file_labels, dtype=torch.long)
        if in_memory:
            stacked = torch.from_numpy(np.stack([decoded[i][0] for i in readable]))
            stacked = stacked.unsqueeze(1) if stacked.dim() == 3 else stacked.permute(0, 3, 1, 2)
            images = torch.zeros((len(self.files), *self.img_shape), dtype=torch.uint8)
            images[torch.tensor(readable)] = stacked.contiguous()
            return {name: (images[idx], labels[idx]) for name, idx in parts.items()}
        return {name: ImageFiles([self.files[i] for i in idx.tolist()], labels[idx], FitSquare(self.image_size), self.pil_mode)
                for name, idx in parts.items()}
