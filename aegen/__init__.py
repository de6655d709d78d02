"""aegen: a PyTorch Lightning model zoo of generative autoencoders."""

__version__ = "0.1.0"

from aegen.checkpoint import load, load_datamodule, read_checkpoint  # noqa: E402
from aegen.errors import AegenError  # noqa: E402
from aegen.registry import get_data, get_model, register_data, register_model  # noqa: E402

__all__ = [
    "AegenError",
    "__version__",
    "get_data",
    "get_model",
    "load",
    "load_datamodule",
    "read_checkpoint",
    "register_data",
    "register_model",
]
