"""Image sheets: PNG grids of samples, reconstructions and interpolations."""

from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from aegen.errors import AegenError


def sheet_grid(images: Tensor, nrow: int | None = None) -> Tensor:
    """One (C, H, W) grid in [0, 1] of images in [-1, 1]: (N, C, H, W), or (rows, cols, C, H, W) row by row.

    N images without ``nrow`` go ceil(sqrt(N)) to a row, so the grid is square-ish: 10 images make 4
    columns by 3 rows, the last row's two missing tiles left blank (the padding colour).
    """
    if images.dim() == 5:
        nrow = images.shape[1]
        images = images.flatten(0, 1)
    if len(images) == 0:
        raise AegenError("no images to put in a sheet")
    nrow = nrow or math.isqrt(len(images) - 1) + 1  # ceil(sqrt(N)) columns, in integers
    return make_grid(images.detach().float().cpu().add(1).div(2).clamp(0, 1), nrow=nrow, padding=2)


def save_sheet(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] as one PNG grid: (N, C, H, W), or (rows, cols, C, H, W) row by row."""
    if len(images) == 0:
        raise AegenError(f"no images to write to {path}")
    grid = sheet_grid(images, nrow)
    path = Path(path)
    for parent in path.parents:  # the nearest existing folder on the way must be a folder, not a file
        if parent.exists():
            if not parent.is_dir():
                raise AegenError(f"cannot write {path}: {parent} is a file, not a directory; choose another path")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return path


@rank_zero_only
def log_sheet(loggers: list[pl.loggers.Logger], tag: str, path: Path, images: Tensor, step: int) -> None:
    """Send a saved sheet to the loggers that keep images: TensorBoard's and wandb's (CSV keeps none)."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, sheet_grid(images), step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(tag, [str(path)], step=step)


@torch.no_grad()
def recon_sheet(model, x: Tensor) -> Tensor:
    """Pairs of rows: originals over their reconstructions, as (2 * rows, cols, C, H, W)."""
    cols = min(len(x), 8)
    rows = len(x) // cols
    x = x[: rows * cols]
    pairs = torch.stack([x, model.reconstruct(x)]).unflatten(1, (rows, cols))  # (2, rows, cols, ...)
    return pairs.transpose(0, 1).flatten(0, 1)


@torch.no_grad()
def interpolation_sheet(model, x: Tensor, steps: int = 8) -> Tensor:
    """Rows of decoded interpolations between consecutive pairs of images: (pairs, steps, C, H, W)."""
    half = len(x) // 2
    return model.interpolate(x[:half], x[half : 2 * half], steps)


class ImageSheets(pl.Callback):
    """Writes reconstructions, samples and interpolations to ``<run>/images/`` after each validation epoch,
    and to the run's TensorBoard or wandb logger as ``images/recon``, ``images/samples``, ``images/interp``."""

    def __init__(self, num: int = 32, steps: int = 8, every_n_epochs: int = 1, seed: int = 0) -> None:
        """
        Args:
            num: images per sheet.
            steps: interpolation steps per row.
            every_n_epochs: write sheets every this many validation epochs.
            seed: seed of the fixed sample noise, so sheets are comparable across epochs.
        """
        self.num, self.steps, self.every_n_epochs, self.seed = num, steps, every_n_epochs, seed
        self._images: Tensor | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask, so not rank_zero_only
        if log_dir is None or not trainer.is_global_zero:
            return
        if self._images is None:
            self._images = trainer.datamodule.tensors("val", self.num)[0]
        x = self._images.to(pl_module.device)
        out = Path(log_dir) / "images"
        epoch = f"epoch{trainer.current_epoch:03d}"
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        sheets = {"recon": recon_sheet(pl_module, x), "samples": pl_module.sample(len(x), generator=generator)}
        if len(x) >= 2:  # a pair is needed to interpolate
            sheets["interp"] = interpolation_sheet(pl_module, x, self.steps)
        for kind, images in sheets.items():
            path = save_sheet(images, out / f"{kind}_{epoch}.png")
            log_sheet(trainer.loggers, f"images/{kind}", path, images, trainer.global_step)
