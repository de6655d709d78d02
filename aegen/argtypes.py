"""Checked argument types of the tool commands (``aegen sample``, ``aegen evaluate``, ...).

Each is a jsonargparse type (``jsonargparse.typing.extend_base_type``): a subclass of ``int``,
``float`` or ``str`` whose constructor refuses a bad value with a message saying what is wanted
and what was given, so ``aegen sample CKPT --num 0`` fails in one line before anything is loaded,
and ``--help`` names the type. Imports neither torch nor Lightning.
"""

from __future__ import annotations

import math
from pathlib import Path

from jsonargparse.typing import extend_base_type, register_type

MAX_SHEET = 10_000  # images in one PNG sheet: larger requests are refused before anything is loaded


def _integer(name: str, minimum: int, maximum: int | None = None, why: str = "") -> type[int]:
    """An int type taking values in [minimum, maximum] (no maximum: unbounded)."""
    if maximum is not None:
        wanted = f"an integer from {minimum} to {maximum:,}{why}"
    else:
        named = {0: "a non-negative integer", 1: "a positive integer"}
        wanted = named.get(minimum, f"an integer of at least {minimum}")

    def check(cls, value) -> None:
        try:
            number = int(value)
            if isinstance(value, bool) or number != float(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"must be {wanted}, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            raise ValueError(f"must be {wanted}, got {number}")

    return extend_base_type(name, int, check, docstring=f"{wanted[0].upper()}{wanted[1:]}.")


Count = _integer("Count", 1)
Index = _integer("Index", 0)
AtLeast2 = _integer("AtLeast2", 2)
AtLeast10 = _integer("AtLeast10", 10)
Seed = _integer("Seed", 0, 2**32 - 1)
SheetSide = _integer("SheetSide", 1, MAX_SHEET)  # rows (or columns) of a sheet
SheetSize = _integer("SheetSize", 1, MAX_SHEET, " (the most images in one sheet)")
Steps = _integer("Steps", 2, MAX_SHEET)  # images along a path: at least its two ends


def _positive_number(cls, value) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0 < number < math.inf:
        raise ValueError(f"must be a positive number, got {value!r}")


PositiveNumber = extend_base_type("PositiveNumber", float, _positive_number, docstring="A positive finite number.")


class Range(tuple):
    """``LOW,HIGH``: two finite numbers, e.g. ``-3,3`` (a tuple of two floats)."""

    def __new__(cls, value: str | tuple[float, float]):
        parts = value.split(",") if isinstance(value, str) else value if isinstance(value, (tuple, list)) else [value]
        try:
            low, high = (float(p) for p in parts)
        except (TypeError, ValueError):
            raise ValueError(f"must be LOW,HIGH (two numbers, e.g. -3,3), got {value!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"must be two finite numbers LOW,HIGH, got {value!r}")
        return super().__new__(cls, (low, high))

    def __str__(self) -> str:
        return f"{self[0]:g},{self[1]:g}"


register_type(Range, serializer=str, deserializer=Range)


def _blocking_file(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is a file (so nothing can be written under it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _writable(text: str) -> Path:
    path = Path(text)
    blocking = _blocking_file(path)
    if blocking is not None:
        raise ValueError(f"cannot write {text}: {blocking} is a file, not a directory; choose another path")
    return path


def _image_file(cls, value) -> None:
    path = _writable(value)
    if path.is_dir():
        raise ValueError(f"{value} is a directory; give a file name inside it")
    if path.suffix.lower() != ".png":  # PIL only for the rarer formats: the defaults end in .png
        from PIL import Image

        Image.init()
        if path.suffix.lower() not in {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}:
            raise ValueError(f"{value} is not an image file name; end it in .png")


def _file(cls, value) -> None:
    if _writable(value).is_dir():
        raise ValueError(f"{value} is a directory; give a file name inside it")


def _directory(cls, value) -> None:
    path = _writable(value)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{value} is a file; give a directory for the outputs")


ImageFile = extend_base_type("ImageFile", str, _image_file, docstring="An image file to write (.png).")
OutputFile = extend_base_type("OutputFile", str, _file, docstring="A file to write.")
OutputDir = extend_base_type("OutputDir", str, _directory, docstring="A directory to write into.")
