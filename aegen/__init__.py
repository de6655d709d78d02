"""aegen: a PyTorch Lightning model zoo of generative autoencoders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

from aegen.errors import AegenError  # noqa: E402
from aegen.registry import get_data, get_model, register_data, register_model  # noqa: E402

if TYPE_CHECKING:
    from aegen.checkpoint import load, load_datamodule, read_checkpoint
    from aegen.models.base import GenerativeAE

_LAZY = {"load": "aegen.checkpoint", "load_datamodule": "aegen.checkpoint", "read_checkpoint": "aegen.checkpoint",
         "GenerativeAE": "aegen.models.base"}


def __getattr__(name: str) -> Any:
    """``aegen.load``, ``aegen.GenerativeAE`` and friends import torch on first use: ``import aegen`` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aegen' has no attribute {name!r}")


__all__ = [
    "AegenError",
    "GenerativeAE",
    "__version__",
    "get_data",
    "get_model",
    "load",
    "load_datamodule",
    "read_checkpoint",
    "register_data",
    "register_model",
]
