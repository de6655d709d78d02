"""Every dataset file registers itself on import; one line per dataset family."""

from aegen.data import digits  # noqa: F401
from aegen.data import fonts  # noqa: F401
from aegen.data import mnist  # noqa: F401
from aegen.data import cifar_svhn  # noqa: F401
from aegen.data import celeba  # noqa: F401
from aegen.data import folder  # noqa: F401
from aegen.data import arrays  # noqa: F401
from aegen.data.arrays import TensorData
from aegen.data.base import AEDataModule, InMemoryLoader

__all__ = ["AEDataModule", "InMemoryLoader", "TensorData"]
