"""MNIST and Fashion-MNIST from their raw IDX files, in torchvision's layout.

``<root>/MNIST/raw/`` (``<root>/FashionMNIST/raw/`` for Fashion-MNIST) holds
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``). The IDX format is parsed here.
Place the files there yourself, or pass ``download=True`` (``--data.download true``) to fetch the
missing ``.gz`` files from torchvision's mirrors, checked against its md5 sums.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from aegen.data.base import TensorSplit, TrainTestDataModule, find_files
from aegen.data.download import download_file, sources
from aegen.errors import AegenError
from aegen.registry import register_data

IDX_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (optionally gzipped) as an array; AegenError naming a bad file."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise AegenError(f"{path} is corrupt or truncated ({err}); delete it and fetch it again") from None
    if len(data) < 4 or data[:3] != bytes([0, 0, IDX_UBYTE]):
        raise AegenError(f"{path} is not an IDX file of unsigned bytes (bad header); delete it and fetch it again")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise AegenError(f"{path} is truncated (incomplete header); delete it and fetch it again")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(dims)
    if len(data) - header != expected:
        raise AegenError(f"{path} is truncated or corrupt: its header promises {expected} bytes of data "
                         f"{tuple(dims)}, it holds {len(data) - header}; delete it and fetch it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@register_data("mnist")
class MNIST(TrainTestDataModule):
    """MNIST handwritten digits from local IDX files (<root>/MNIST/raw), 10 classes, 1 channel."""

    channels = 1
    num_classes = 10
    folder = "MNIST"
    TORCHVISION = "MNIST"  # the torchvision.datasets class whose mirrors and md5 sums ``fetch`` uses
    SOURCE = "https://ossci-datasets.s3.amazonaws.com/mnist/ (torchvision's mirror)"
    FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    @property
    def directory(self) -> Path:
        return self.root / self.folder / "raw"

    def _read_pair(self, images_path: Path, labels_path: Path) -> TensorSplit:
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3:
            raise AegenError(f"{images_path} holds a {images.ndim}-d array, expected (N, H, W) images")
        if labels.ndim != 1 or len(labels) != len(images):
            raise AegenError(f"{labels_path} holds {labels.shape} labels for the {len(images)} images of {images_path.name}")
        if labels.max(initial=0) >= self.num_classes:
            raise AegenError(f"{labels_path} holds labels up to {labels.max()}, expected 0..{self.num_classes - 1}")
        return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    def fetch(self) -> None:
        """Download the missing IDX files (``.gz``) into <root>/<folder>/raw from torchvision's mirrors."""
        import torchvision.datasets

        source = getattr(torchvision.datasets, self.TORCHVISION)
        for name, md5 in source.resources:
            stem = name.removesuffix(".gz")
            if not any((self.directory / (stem + s)).is_file() for s in ("", ".gz")):
                urls = sources([mirror + name for mirror in source.mirrors], self.registry_name, name)
                download_file(urls, self.directory / name, self.registry_name, md5=md5)

    def load_train_test(self) -> tuple[TensorSplit, TensorSplit]:
        how = (f"place the four IDX files (optionally .gz; from {self.SOURCE}) there, or point --data.root "
               f"(or $AEGEN_DATA) at the directory holding {self.folder}/raw, or pass --data.download true; "
               "aegen never downloads them otherwise")
        paths = find_files(self.directory, self.FILES, self.registry_name, how, suffixes=("", ".gz"))
        return self._read_pair(paths[0], paths[1]), self._read_pair(paths[2], paths[3])


@register_data("fashion_mnist")
class FashionMNIST(MNIST):
    """Fashion-MNIST clothing images from local IDX files (<root>/FashionMNIST/raw), 10 classes."""

    folder = "FashionMNIST"
    TORCHVISION = "FashionMNIST"
    SOURCE = "https://github.com/zalandoresearch/fashion-mnist"
