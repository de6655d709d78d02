"""Named configurations of a model: packaged YAML files ``aegen/configs/<model>/<preset>.yaml``.

A model's own defaults are its ``default`` preset (the one that trains on the embedded data);
each file holds another: ``paper`` is the paper's setting. A file is a fragment of a
``aegen fit`` config whose first line, a comment, describes it::

    # Table 2 of the paper: MNIST 32x32, raw codes, one latent GAN
    model:
      init_args:
        lr: 0.0002
    data:
      init_args:
        batch_size: 128

``aegen fit --model NAME --preset PRESET`` reads it before every other flag (so ``--config`` and
later flags override it); ``aegen list --presets`` lists them; in Python,
``Model(**aegen.presets.options(NAME, PRESET))``. Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aegen.errors import AegenError

ROOT = Path(__file__).parent / "configs"
DEFAULT = "default"


def _description(path: Path) -> str:
    with path.open(encoding="utf-8") as f:
        first = f.readline().strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""


def catalogue() -> dict[str, dict[str, str]]:
    """``{model: {preset: description}}`` for every registered model: ``default`` (its own
    defaults) and its packaged presets."""
    from aegen.registry import catalogue as registered

    out = {name: {DEFAULT: "the model's own defaults"} for name in registered()["models"]}
    for folder in sorted(p for p in ROOT.iterdir() if p.is_dir()) if ROOT.is_dir() else ():
        out.setdefault(folder.name, {DEFAULT: "the model's own defaults"})
        out[folder.name].update({p.stem: _description(p) for p in sorted(folder.glob("*.yaml"))})
    return dict(sorted(out.items()))


def path(model: str, preset: str) -> Path | None:
    """The file of ``preset`` for ``model`` (None for ``default``: the model's own defaults).

    Raises AegenError naming the presets that exist when there is no such preset.
    """
    if preset == DEFAULT:
        return None
    file = ROOT / model / f"{preset}.yaml"
    if not file.is_file():
        names = [DEFAULT, *sorted(p.stem for p in (ROOT / model).glob("*.yaml"))]
        raise AegenError(f"model {model!r} has no preset {preset!r}; choose one of: {', '.join(names)}")
    return file


def load(model: str, preset: str) -> dict[str, Any]:
    """The preset's config fragment (``{"model": {"init_args": ...}, "data": ..., "trainer": ...}``)."""
    import yaml

    file = path(model, preset)
    if file is None:
        return {}
    config = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise AegenError(f"{file} is not a config mapping")
    return config


def options(model: str, preset: str) -> dict[str, Any]:
    """The model options the preset sets, as keyword arguments for the model's class
    (``LatentGAN(**options("latentgan", "paper"))``); lists in the YAML become tuples."""
    init_args = (load(model, preset).get("model") or {}).get("init_args") or {}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in init_args.items()}
