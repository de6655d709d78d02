"""``aegen evaluate``: a checkpoint -> metrics.json and image sheets, reproducibly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torchmetrics.image import PeakSignalNoiseRatio

from aegen import __version__
from aegen.checkpoint import load, load_datamodule
from aegen.viz import interpolation_sheet, recon_sheet, save_sheet


@torch.no_grad()
def reconstruction_metrics(model, loader) -> dict[str, float]:
    """``recon_mse`` (mean squared error per pixel, images in [-1, 1]) and ``psnr`` (data range 2)."""
    psnr = PeakSignalNoiseRatio(data_range=2.0).to(model.device)
    total, count = 0.0, 0
    for x, _ in loader:
        x = x.to(model.device)
        recon = model.reconstruct(x)
        total += torch.nn.functional.mse_loss(recon, x, reduction="sum").item()
        count += x.numel()
        psnr.update(recon, x)
    return {"recon_mse": total / count, "psnr": psnr.compute().item()}


def evaluate(checkpoint: str | Path, out: str | Path, seed: int = 0, device: str | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint on its dataset's test split; write ``out/metrics.json`` and sheets."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load(checkpoint, map_location=device)
    datamodule = load_datamodule(checkpoint, device_cache=False)
    datamodule.setup("test")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = reconstruction_metrics(model, datamodule.test_dataloader())
    metrics.update(
        split="test",
        model=model.registry_name,
        data=datamodule.registry_name,
        checkpoint=str(Path(checkpoint).resolve()),
        seed=seed,
        aegen_version=__version__,
    )
    x = datamodule.tensors("test", 32)[0].to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    save_sheet(model.sample(64, generator=generator), out / "samples.png")
    save_sheet(recon_sheet(model, x), out / "reconstructions.png")
    save_sheet(interpolation_sheet(model, x), out / "interpolations.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
