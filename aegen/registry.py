"""Name -> class registries for models and datamodules.

A method registers itself with ``@register_model("name")`` in its own file; the file is listed
once in ``aegen/models/__init__.py`` (datasets likewise in ``aegen/data/__init__.py``).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Callable, TypeVar

from aegen.errors import AegenError

T = TypeVar("T", bound=type)

MODELS: dict[str, type] = {}
DATA: dict[str, type] = {}


def _register(table: dict[str, type], name: str) -> Callable[[T], T]:
    def decorator(cls: T) -> T:
        if name in table and table[name] is not cls:
            raise ValueError(f"{name!r} is registered twice: {table[name]} and {cls}")
        cls.registry_name = name
        table[name] = cls
        return cls

    return decorator


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator: make a model available as ``--model name``."""
    return _register(MODELS, name)


def register_data(name: str) -> Callable[[T], T]:
    """Class decorator: make a datamodule available as ``--data name``."""
    return _register(DATA, name)


def _load_all() -> None:
    importlib.import_module("aegen.models")
    importlib.import_module("aegen.data")


def _get(table: dict[str, type], kind: str, name: str) -> type:
    _load_all()
    try:
        return table[name]
    except KeyError:
        raise AegenError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(table))}") from None


def get_model(name: str) -> type:
    """The model class registered as ``name`` (an AegenError lists the valid names)."""
    return _get(MODELS, "model", name)


def get_data(name: str) -> type:
    """The datamodule class registered as ``name`` (an AegenError lists the valid names)."""
    return _get(DATA, "dataset", name)


def models() -> dict[str, type]:
    """All registered models, by name."""
    _load_all()
    return dict(sorted(MODELS.items()))


def datasets() -> dict[str, type]:
    """All registered datamodules, by name."""
    _load_all()
    return dict(sorted(DATA.items()))


def describe(cls: type) -> str:
    """The first line of a class docstring: the one-line description `aegen list` prints."""
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def _declared(package: str, decorator: str) -> dict[str, str]:
    """name -> description of the classes a package's modules register, read from their source
    (``ast``), so that listing them imports neither torch nor Lightning."""
    found = {}
    for path in sorted((Path(__file__).parent / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == decorator and deco.args
                        and isinstance(deco.args[0], ast.Constant)):
                    doc = ast.get_docstring(node) or ""
                    found[deco.args[0].value] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def catalogue() -> dict[str, dict[str, str]]:
    """``{"models": {name: description}, "datasets": {...}}``: aegen's own, read from source, plus any
    registered in this process (e.g. a user's model in their own module)."""
    out = {"models": _declared("models", "register_model"), "datasets": _declared("data", "register_data")}
    for kind, table in (("models", MODELS), ("datasets", DATA)):
        out[kind].update({name: describe(cls) for name, cls in table.items()})
        out[kind] = dict(sorted(out[kind].items()))
    return out
