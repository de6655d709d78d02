"""Loading checkpoints as untrusted input: weights only, one-line errors, never pickled code."""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aegen.errors import AegenError
from aegen.registry import get_data, get_model

if TYPE_CHECKING:
    from aegen.models.base import GenerativeAE

# opcodes with which a pickle imports or calls something: code, as opposed to plain data
_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}
_SCAN_BYTES = 1 << 20  # how much of a file that is not a zip archive is read to look for pickled code
_SHOWN = 3  # mismatching keys named in an error, of each kind


def init_args(hparams: dict[str, Any]) -> dict[str, Any]:
    """Saved hyperparameters minus LightningCLI's bookkeeping keys (``_class_path``, ``_instantiator``)."""
    return {k: v for k, v in hparams.items() if not k.startswith("_")}


def _pickled_code(path: Path) -> str | None:
    """What a raw pickle file (not a zip archive) imports or calls first, e.g. ``posix.system``; else None.

    ``torch.save`` writes zip archives, whose pickles torch's weights-only loader checks itself; a
    bare pickle (``pickle.dumps``) is read here opcode by opcode, without running anything.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(_SCAN_BYTES)
    except OSError:  # unreadable: torch.load says so below
        return None
    if head.startswith(b"PK"):  # a zip archive, truncated or whole: torch's loader reports it
        return None
    strings: list[str] = []
    found: str | None = None
    complete = False
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name in _CODE_OPCODES and found is None:
                if opcode.name in ("GLOBAL", "INST"):
                    found = str(arg).replace(" ", ".")
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found = ".".join(strings[-2:])
                else:
                    found = f"the {opcode.name} opcode"
            if isinstance(arg, str):
                strings.append(arg)
            if opcode.name == "STOP":
                complete = True
    except Exception:  # noqa: BLE001 - garbage or a cut-off pickle: judged by what parsed
        pass
    # a real pickle: starts with a PROTO opcode (protocol 2+) or parses to its STOP (protocols 0, 1)
    return found if found and (head[:1] == b"\x80" or complete) else None


def _refuse_code(path: Path, what: str, name: str) -> AegenError:
    return AegenError(
        f"refusing {what} at {path}: the file carries pickled code (it calls {name}); nothing in it was run. "
        "aegen loads weights only: use a file written by aegen, from a source you trust"
    )


def _safe_load(path: Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` with aegen's one-line refusals instead of torch's messages."""
    code = _pickled_code(path)
    if code:
        raise _refuse_code(path, what, code)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        name = re.search(r"GLOBAL ([\w.]+)", str(err))
        if name:
            raise _refuse_code(path, what, name.group(1)) from None
        raise AegenError(
            f"{what} at {path} is not readable: corrupt, not written by torch.save, or holding objects other than "
            "tensors and plain values (nothing in it was run); use a file written by aegen"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError) as err:
        lines = [ln for ln in str(err).strip().splitlines() if ln.strip() and "weights_only" not in ln]
        first = lines[0].strip().split(". ")[0].rstrip(".") if lines else type(err).__name__
        if path.stat().st_size == 0:
            first = "the file is empty"
        raise AegenError(f"{what} at {path} is not readable (corrupt or truncated?): {first}") from None


def first_nonfinite(checkpoint: dict[str, Any]) -> str | None:
    """Name of the first NaN/inf tensor among a checkpoint's weights, buffers and optimiser states."""
    for name, tensor in checkpoint.get("state_dict", {}).items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    for i, optimizer in enumerate(checkpoint.get("optimizer_states", [])):
        for param, state in optimizer.get("state", {}).items():
            for key, tensor in state.items():
                if torch.is_tensor(tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    return f"optimizer {i} {key} of parameter {param}"
    return None


def read_checkpoint(path: str | Path, finite: bool = True) -> dict[str, Any]:
    """Read an aegen checkpoint with ``torch.load(weights_only=True)``, or a folder written by
    ``aegen export`` (``aegen.export.read_export``: safetensors and YAML); refuse anything else.

    With ``finite`` (the default) a checkpoint whose weights hold NaN or inf is refused too.
    """
    from aegen.export import is_export, read_export

    path = Path(path)
    if is_export(path):
        checkpoint = read_export(path)
    elif not path.is_file():
        where = "a directory, not a checkpoint file" if path.is_dir() else "not there"
        if (path / "checkpoints").is_dir():
            where = "a run folder: pass its checkpoints/last.ckpt"
        raise AegenError(
            f"no checkpoint at {path} ({where}); pass a .ckpt written by `aegen fit` "
            "(runs/<model>-<data>/version_N/checkpoints/last.ckpt) or a folder written by `aegen export`"
        )
    else:
        checkpoint = _safe_load(path, "checkpoint")
    if (not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict)
            or not isinstance(checkpoint.get("aegen"), dict) or "model" not in checkpoint["aegen"]):
        raise AegenError(f"{path} is not an aegen checkpoint (no aegen metadata); train one with `aegen fit`")
    if finite:
        bad = first_nonfinite(checkpoint)
        if bad:
            raise AegenError(
                f"refusing {path}: its weights hold NaN or inf (first in {bad}), so the run diverged before it was "
                "written; use an earlier checkpoint of the run (its checkpoints/ folder) or retrain with a lower "
                "--model.lr"
            )
    return checkpoint


def read_state_dict(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict written with ``torch.save``, read with ``weights_only=True``; one-line errors.

    For auxiliary networks (metric judges, Inception weights); ``what`` names the file in errors.
    """
    path = Path(path)
    if not path.is_file():
        raise AegenError(f"no {what} at {path}")
    state = _safe_load(path, what)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AegenError(f"{what} at {path} are not a state dict of tensors")
    return state


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN]) + (f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def _mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """The keys and shapes in which a checkpoint's state dict differs from a model's, first few of each."""
    shapes = [f"{k} of shape {tuple(v.shape)} but the checkpoint has {tuple(found[k].shape)}"
              for k, v in expected.items()
              if k in found and hasattr(v, "shape") and hasattr(found[k], "shape") and v.shape != found[k].shape]
    parts = []
    if shapes:
        parts.append("it expects " + "; ".join(shapes[:_SHOWN])
                     + (f" (+{len(shapes) - _SHOWN} more shapes differ)" if len(shapes) > _SHOWN else ""))
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing:
        parts.append(f"missing: {_few(missing)}")
    if unexpected:
        parts.append(f"unexpected: {_few(unexpected)}")
    return "; ".join(parts)


def _origin(checkpoint: dict[str, Any]) -> str:
    """Which aegen wrote a checkpoint, for errors about checkpoints that no longer load."""
    from aegen import __version__

    written = checkpoint["aegen"].get("version", "an unknown version")
    if written != __version__:
        return (f"it was written by aegen {written} and this is aegen {__version__}, whose options or weights "
                f"differ: load it with aegen {written} (pip install aegen=={written}) or retrain")
    return ("were its hyperparameters or weights edited? Use a checkpoint written by `aegen fit` (or a folder "
            "written by `aegen export`)")


def load(path: str | Path, map_location: str | torch.device = "cpu") -> GenerativeAE:
    """Rebuild the model saved in an aegen checkpoint (or a folder written by ``aegen export``), with
    the sampler it records, in eval mode.

    >>> model = aegen.load("runs/ae-digits/version_0/checkpoints/last.ckpt")
    >>> model = aegen.load("exports/ae-digits")  # a folder written by `aegen export`
    >>> images = model.sample(16)
    """
    checkpoint = read_checkpoint(path)
    cls = get_model(checkpoint["aegen"]["model"])
    name = cls.registry_name
    hparams = checkpoint.get("hyper_parameters", {})
    if not isinstance(hparams, dict):
        raise AegenError(f"{path} is not an aegen checkpoint (its hyper_parameters are not a mapping)")
    try:
        model = cls(**{**cls.added_options, **init_args(hparams)})
        if "sampler" in checkpoint["aegen"]:  # the sampler it was saved with, e.g. one fitted by `aegen prior`
            model.use_sampler(checkpoint["aegen"]["sampler"])
    except (TypeError, ValueError, KeyError, AegenError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AegenError(f"{path}: its hyperparameters do not build model {name!r} ({first}); {_origin(checkpoint)}"
                         ) from None
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        detail = _mismatch(model.state_dict(), checkpoint["state_dict"])
        if not detail:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            detail = lines[-1] if lines else type(err).__name__
        raise AegenError(f"{path}: model {name} with the checkpoint's hyperparameters does not fit its weights: "
                         f"{detail}; {_origin(checkpoint)}") from None
    model.use_memory_format()  # as Lightning's load_from_checkpoint does (through configure_model)
    return model.to(map_location).eval()


def load_datamodule(path: str | Path, **overrides: Any):
    """Rebuild the datamodule a checkpoint was trained on (``overrides`` replace its settings)."""
    record = read_checkpoint(path, finite=False)["aegen"].get("data")
    if not record:
        raise AegenError(f"{path} does not record its dataset; pass --data NAME")
    return get_data(record["name"])(**{**init_args(record["hparams"]), **overrides})
