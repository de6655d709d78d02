"""Loading checkpoints as untrusted input: weights only, one-line errors, never pickled code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from aegen.errors import AegenError
from aegen.registry import get_data, get_model


def _init_args(hparams: dict[str, Any]) -> dict[str, Any]:
    """Saved hyperparameters minus LightningCLI's bookkeeping keys (``_class_path``, ``_instantiator``)."""
    return {k: v for k, v in hparams.items() if not k.startswith("_")}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an aegen checkpoint with ``torch.load(weights_only=True)``; refuse anything else."""
    path = Path(path)
    if not path.is_file():
        raise AegenError(
            f"no checkpoint at {path}; pass a .ckpt written by `aegen fit` "
            "(runs/<model>-<data>/version_N/checkpoints/last.ckpt)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        code = [ln.strip() for ln in str(err).splitlines() if "GLOBAL" in ln]
        if not code:
            raise AegenError(f"{path} is not a readable checkpoint (corrupt or not a torch file)") from None
        raise AegenError(
            f"refusing {path}: it carries pickled code ({code[0]}); nothing in it was run. "
            "Only load checkpoints from sources you trust, written by aegen"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AegenError(f"{path} is not a readable checkpoint (corrupt or truncated?): {first}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "aegen" not in checkpoint:
        raise AegenError(f"{path} is not an aegen checkpoint (no aegen metadata); train one with `aegen fit`")
    return checkpoint


def read_state_dict(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict written with ``torch.save``, read with ``weights_only=True``; one-line errors.

    For auxiliary networks (metric judges, Inception weights); ``what`` names the file in errors.
    """
    path = Path(path)
    if not path.is_file():
        raise AegenError(f"no {what} at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise AegenError(f"refusing {what} at {path}: the file carries pickled code; nothing in it was run") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AegenError(f"{what} at {path} are not readable (corrupt or truncated?): {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AegenError(f"{what} at {path} are not a state dict of tensors")
    return state


def load(path: str | Path, map_location: str | torch.device = "cpu"):
    """Rebuild the model saved in an aegen checkpoint, in eval mode.

    >>> model = aegen.load("runs/ae-digits/version_0/checkpoints/last.ckpt")
    >>> images = model.sample(16)
    """
    checkpoint = read_checkpoint(path)
    cls = get_model(checkpoint["aegen"]["model"])
    hparams = _init_args(checkpoint.get("hyper_parameters", {}))
    try:
        model = cls(**hparams)
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise AegenError(f"{path} does not match model {cls.registry_name!r}: {err}".splitlines()[0]) from None
    return model.to(map_location).eval()


def load_datamodule(path: str | Path, **overrides: Any):
    """Rebuild the datamodule a checkpoint was trained on (``overrides`` replace its settings)."""
    record = read_checkpoint(path)["aegen"].get("data")
    if not record:
        raise AegenError(f"{path} does not record its dataset; pass --data NAME")
    return get_data(record["name"])(**{**_init_args(record["hparams"]), **overrides})
