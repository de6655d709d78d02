"""CIFAR-10 and SVHN: 32x32 colour images with 10 classes, from local files in torchvision's layout.

CIFAR-10: ``<root>/cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5`` and
``test_batch``. These official files are Python pickles; they are read with a restricted
unpickler that can only rebuild numpy arrays, lists, dicts, numbers and strings, so a tampered file
cannot run code (it is refused, naming the file).

SVHN (cropped digits): ``<root>/svhn/train_32x32.mat`` and ``test_32x32.mat`` (MATLAB files,
read with scipy); ``--data.extra true`` adds ``extra_32x32.mat`` to the training data. Label 10
(the digit 0) becomes class 0.

Place the files there yourself, or pass ``download=True`` (``--data.download true``) to fetch the
missing ones from torchvision's sources, checked against its md5 sums (CIFAR-10: the archive is
downloaded, its batches copied into ``cifar-10-batches-py/`` and the archive removed; the batches
are then read with the restricted unpickler like any others).
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np
import scipy.io
import torch

from aegen.data.base import TensorSplit, TrainTestDataModule, find_files
from aegen.data.download import download_file, extract_members, sources
from aegen.errors import AegenError
from aegen.registry import register_data

_numpy_core = getattr(np, "_core", None) or np.core
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_core.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol 2: str -> bytes, no code
}


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; any other global is refused."""

    def find_class(self, module: str, name: str):
        try:
            return _ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays are allowed") from None


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch -> uint8 images (N, 3, 32, 32) and int64 labels (N,)."""
    try:
        with open(path, "rb") as f:
            batch = ArrayUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as err:
        raise AegenError(f"{path} is not a CIFAR-10 batch ({err}); delete it and fetch it again") from None
    except (OSError, EOFError, ValueError, TypeError, IndexError, AttributeError) as err:
        raise AegenError(f"{path} is corrupt or truncated ({type(err).__name__}: {err}); delete it and fetch it again") from None
    if not isinstance(batch, dict):
        raise AegenError(f"{path} is not a CIFAR-10 batch (no dict inside); delete it and fetch it again")
    data, labels = batch.get(b"data", batch.get("data")), batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels is None:
        raise AegenError(f"{path} is not a CIFAR-10 batch (expected data (N, 3072) and labels); delete it and fetch it again")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(data) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise AegenError(f"{path} holds {len(labels)} labels in 0..9 for {len(data)} images; delete it and fetch it again")
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32), labels


@register_data("cifar10")
class CIFAR10(TrainTestDataModule):
    """CIFAR-10 from local python batches (<root>/cifar-10-batches-py), 10 classes, RGB 32x32."""

    channels = 3
    num_classes = 10
    folder = "cifar-10-batches-py"
    TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
    TEST = ("test_batch",)

    def fetch(self) -> None:
        """Download torchvision's cifar-10-python.tar.gz when batches are missing, copy them into
        <root>/cifar-10-batches-py and remove the downloaded archive."""
        from torchvision.datasets import CIFAR10 as Source

        missing = [n for n in (*self.TRAIN, *self.TEST) if not (self.root / self.folder / n).is_file()]
        if not missing:
            return
        archive = self.root / Source.filename
        placed = archive.is_file()  # an archive the user put there is used (when its md5 matches) and kept
        download_file(sources([Source.url], self.registry_name, Source.filename), archive, self.registry_name,
                      md5=Source.tgz_md5)
        try:
            extract_members(archive, self.folder, missing, self.root / self.folder, self.registry_name)
        finally:
            if not placed:
                archive.unlink(missing_ok=True)

    def load_train_test(self) -> tuple[TensorSplit, TensorSplit]:
        how = ("extract cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) into the data root, "
               f"or point --data.root (or $AEGEN_DATA) at the directory holding {self.folder}, or pass "
               "--data.download true; aegen never downloads it otherwise")
        paths = find_files(self.root / self.folder, (*self.TRAIN, *self.TEST), self.registry_name, how)
        parts = [read_cifar_batch(p) for p in paths]
        train_x, train_y = (np.concatenate(a) for a in zip(*parts[:-1]))
        test_x, test_y = parts[-1]
        as_tensors = lambda x, y: (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))  # noqa: E731
        return as_tensors(train_x, train_y), as_tensors(test_x, test_y)


def read_svhn_mat(path: Path) -> TensorSplit:
    """One SVHN cropped-digits .mat file -> uint8 images (N, 3, 32, 32), labels (N,) with 10 -> 0."""
    try:
        mat = scipy.io.loadmat(str(path))
        images, labels = mat["X"], mat["y"]
    except KeyError as err:
        raise AegenError(f"{path} is not an SVHN file (no {err} array); delete it and fetch it again") from None
    except Exception as err:  # noqa: BLE001 - scipy raises many types (MatReadError, ValueError, OSError, ...) for bad files
        raise AegenError(f"{path} is corrupt or truncated ({type(err).__name__}: {err}); delete it and fetch it again") from None
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.shape[3] != len(labels):
        raise AegenError(f"{path} holds X {images.shape} and y {labels.shape}, expected (32, 32, 3, N) and (N,)")
    if labels.min(initial=1) < 1 or labels.max(initial=1) > 10:
        raise AegenError(f"{path} holds labels outside 1..10; delete it and fetch it again")
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1), dtype=np.uint8))
    return x, torch.from_numpy(labels % 10)


@register_data("svhn")
class SVHN(TrainTestDataModule):
    """SVHN house-number digits from local .mat files (<root>/svhn), 10 classes, RGB 32x32."""

    channels = 3
    num_classes = 10
    folder = "svhn"

    def __init__(self, extra: bool = False, **kwargs) -> None:
        """
        Args:
            extra: also train on the 531,131 easier images of extra_32x32.mat.
        """
        super().__init__(**kwargs)
        self.extra = extra

    def _files(self) -> tuple[str, ...]:
        return ("train_32x32.mat", "test_32x32.mat", *(("extra_32x32.mat",) if self.extra else ()))

    def fetch(self) -> None:
        """Download the missing .mat files into <root>/svhn from torchvision's sources."""
        from torchvision.datasets import SVHN as Source

        for split in ("train", "test", *(("extra",) if self.extra else ())):
            url, name, md5 = Source.split_list[split]
            if not (self.root / self.folder / name).is_file():
                download_file(sources([url], self.registry_name, name), self.root / self.folder / name,
                              self.registry_name, md5=md5)

    def load_train_test(self) -> tuple[TensorSplit, TensorSplit]:
        how = ("get them from http://ufldl.stanford.edu/housenumbers/ into that directory, or point --data.root "
               f"(or $AEGEN_DATA) at the directory holding {self.folder}/, or pass --data.download true; "
               "aegen never downloads them otherwise")
        paths = find_files(self.root / self.folder, self._files(), self.registry_name, how)
        train, test, *extra = (read_svhn_mat(p) for p in paths)
        if extra:
            train = (torch.cat([train[0], extra[0][0]]), torch.cat([train[1], extra[0][1]]))
        return train, test
