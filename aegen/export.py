"""``aegen export``: a trained model as a self-describing folder that loads without running code.

The folder holds ``model.safetensors`` (the weights, in the safetensors format), ``config.yaml`` (the
model's name and hyperparameters, the data it was trained on, its sampler and the aegen version that
trained it), ``README.md`` (a model card in the Hugging Face Hub layout, with the evaluation's
metrics when ``aegen evaluate`` wrote them beside the checkpoint's run) and ``samples.png``. Nothing
in it is pickle: ``aegen.load(DIR)`` reads the YAML with ``yaml.safe_load`` and the tensors with
safetensors, so loading runs no code from the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from aegen.errors import AegenError

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
CARD = "README.md"
SAMPLES = "samples.png"
FORMAT = 1  # the layout of config.yaml: raised when it changes incompatibly
_RECORD_KEYS = ("model", "data", "sampler")  # fields of the checkpoint's aegen record with their own key
_SAMPLE_BATCH = 256


def export(checkpoint: str | Path, out: str | Path, num_samples: int = 64, seed: int = 0) -> Path:
    """Write the model of ``checkpoint`` (a .ckpt or an exported folder) as a shareable folder ``out``.

    Returns ``out``, which holds model.safetensors, config.yaml, README.md and samples.png
    (``num_samples`` images drawn with ``seed``).
    """
    from safetensors.torch import save

    from aegen.checkpoint import load, read_checkpoint
    from aegen.io import atomic_path, write_text_atomic

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AegenError(f"cannot export to {out}: it is a file; give a folder")
    if out.resolve() == Path(checkpoint).resolve() or (out / "checkpoints").is_dir():
        raise AegenError(f"cannot export into {out}: it is the model's own folder or a run folder; give a new --out")
    saved = read_checkpoint(checkpoint)
    model = load(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    # own storage per tensor: safetensors refuses tensors that share memory (tied weights) or are strided views
    state = {k: v.detach().cpu().contiguous().clone() for k, v in saved["state_dict"].items()}
    with atomic_path(out / WEIGHTS) as tmp:
        tmp.write_bytes(save(state, metadata={"format": "pt", "library": "aegen"}))
    config = export_config(saved)
    write_text_atomic(out / CONFIG, f"# an aegen model: `aegen.load(\"{out.name}\")` rebuilds it from this file and "
                      f"{WEIGHTS}\n" + yaml.safe_dump(config, sort_keys=False))
    sheet = _write_samples(model, out / SAMPLES, num_samples, seed)
    write_text_atomic(out / CARD, model_card(config, out.name, _metrics(checkpoint), sheet))
    return out


def export_config(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """config.yaml's content from a checkpoint's dict: model name, hyperparameters, data, sampler, aegen record."""
    from aegen import __version__
    from aegen.checkpoint import init_args
    from aegen.models.base import plain

    record = checkpoint["aegen"]
    config: dict[str, Any] = {"model": record["model"],
                              "hyper_parameters": plain(init_args(checkpoint.get("hyper_parameters") or {})),
                              "data": plain(record.get("data"))}
    if "sampler" in record:  # old checkpoints have no sampler record: the model's own sampler is used
        config["sampler"] = plain(record["sampler"])
    others = {k: v for k, v in record.items() if k not in _RECORD_KEYS}
    if isinstance(others.get("prior"), dict) and others["prior"].get("fitted_on"):  # no local paths in a shared file
        others["prior"] = {**others["prior"], "fitted_on": Path(others["prior"]["fitted_on"]).name}
    config["aegen"] = plain({**others, "export_format": FORMAT, "exported_by": __version__})
    return config


def is_export(path: Path) -> bool:
    """Whether ``path`` is a folder to read as an exported model (it holds model.safetensors or config.yaml,
    and is not a training run's folder)."""
    return (path.is_dir() and not (path / "checkpoints").is_dir()
            and ((path / WEIGHTS).exists() or (path / CONFIG).exists()))


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def read_config(path: Path) -> dict[str, Any]:
    """An export's config.yaml, read with ``yaml.safe_load``; one-line errors naming the file."""
    file = path / CONFIG
    if not file.is_file():
        raise AegenError(f"no {CONFIG} in {path}: an exported model needs {CONFIG} beside {WEIGHTS}; "
                         "write the folder with `aegen export`")
    try:
        config = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise AegenError(f"{file} is not readable YAML: {_first_line(err)}") from None
    ok = (isinstance(config, dict) and isinstance(config.get("model"), str)
          and isinstance(config.get("hyper_parameters"), dict) and isinstance(config.get("aegen"), dict))
    if not ok:
        raise AegenError(f"{file} is not an aegen model config (it needs model, hyper_parameters and aegen); "
                         "write the folder with `aegen export`")
    if config["aegen"].get("export_format", FORMAT) > FORMAT:
        raise AegenError(f"{file} has export format {config['aegen']['export_format']}, newer than this aegen "
                         f"reads ({FORMAT}): upgrade aegen")
    return config


def read_export(path: str | Path) -> dict[str, Any]:
    """An exported folder as a checkpoint's dict (``state_dict``, ``hyper_parameters``, ``aegen`` record),
    as ``aegen.checkpoint.read_checkpoint`` returns it; one-line errors naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config = read_config(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise AegenError(f"no weights at {weights}: an exported model needs {WEIGHTS} beside {CONFIG}")
    try:
        state = load_file(weights, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise AegenError(f"weights at {weights} are not readable (corrupt or truncated safetensors file?): "
                         f"{_first_line(err)}") from None
    record = {k: v for k, v in config["aegen"].items() if k not in ("export_format", "exported_by")}
    record.update({k: config[k] for k in _RECORD_KEYS if k in config})
    return {"state_dict": state, "hyper_parameters": config["hyper_parameters"], "aegen": record}


def _write_samples(model, path: Path, num: int, seed: int) -> Path | None:
    """A sheet of ``num`` samples at ``path``; None for a model that cannot sample."""
    from aegen.viz import save_sheet

    generator = torch.Generator().manual_seed(seed)
    try:
        with torch.no_grad():
            images = torch.cat([model.sample(min(_SAMPLE_BATCH, num - i), generator=generator).cpu()
                                for i in range(0, num, _SAMPLE_BATCH)])
    except NotImplementedError:
        path.unlink(missing_ok=True)
        return None
    save_sheet(images, path)
    return path


def _metrics(checkpoint: str | Path) -> dict[str, float]:
    """The numbers of ``aegen evaluate``'s metrics.json in the checkpoint's run (``<run>/eval``), if any."""
    checkpoint = Path(checkpoint).resolve()
    candidates = [checkpoint / "eval" / "metrics.json"] if checkpoint.is_dir() else []
    candidates.append(checkpoint.parent.parent / "eval" / "metrics.json")
    for file in candidates:
        try:
            values = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if isinstance(v, float)}
    return {}


def _table(rows: dict[str, Any], head: tuple[str, str]) -> list[str]:
    """A two-column Markdown table."""
    return [f"| {head[0]} | {head[1]} |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows.items())]


def _cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, strings as they are, the rest as JSON (null, [1, 32, 32])."""
    text = f"{value:.4g}" if isinstance(value, float) else value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|")


def model_card(config: dict[str, Any], name: str, metrics: dict[str, float], samples: Path | None) -> str:
    """README.md of an export: Hugging Face Hub front matter, then what the model is, how to load it,
    its training data, its evaluation (``metrics``) and its samples."""
    from aegen.registry import describe, get_model

    model = config["model"]
    data = config.get("data") or {}
    about = describe(get_model(model)).rstrip(".") or model
    tags = ["aegen", "autoencoder", "generative", model, *([data["name"]] if data.get("name") else [])]
    front = yaml.safe_dump({"library_name": "aegen", "tags": tags, "pipeline_tag": "unconditional-image-generation"},
                           sort_keys=False)
    trained_on = f"the `{data['name']}` dataset of aegen" if data.get("name") else "data the checkpoint does not name"
    lines = [f"---\n{front}---", "", f"# {name}", "",
             f"An aegen `{model}` model: {about}. Trained on {trained_on} with aegen "
             f"{config['aegen'].get('version', '(unknown version)')}.", "",
             "## How to load it", "", "```python", "import aegen", "",
             f'model = aegen.load("{name}")  # this folder: weights in {WEIGHTS}, settings in {CONFIG}',
             "images = model.sample(16)  # (16, C, H, W) in [-1, 1]", "```", "",
             f"or from the shell: `aegen sample {name} --out samples.png`. Loading reads tensors "
             "(safetensors) and YAML only: it runs no code from the folder.", "",
             "## Training data", ""]
    if data.get("hparams"):
        lines += [f"`{data['name']}` with these settings:", "", *_table(data["hparams"], ("setting", "value"))]
    else:
        lines.append(trained_on[0].upper() + trained_on[1:] + ".")
    lines += ["", "## Model settings", "", *_table(config["hyper_parameters"], ("option", "value"))]
    sampler = config.get("sampler")
    if sampler:
        lines += ["", f"`model.sample` draws codes from a `{sampler['name']}` sampler fitted to the training codes."]
    if metrics:
        lines += ["", "## Evaluation", "", "Measured by `aegen evaluate` on the test split:", "",
                  *_table(metrics, ("metric", "value"))]
    if samples is not None:
        lines += ["", "## Samples", "", f"![samples]({samples.name})"]
    return "\n".join(lines) + "\n"
