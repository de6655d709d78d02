"""Image sheets: PNG grids of samples, reconstructions, interpolations and traversals, their rows and columns
labelled in a margin (PIL's default font) so that the images themselves stay as they are."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw, ImageFont
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid

from aegen.errors import AegenError

PAD = 2  # pixels between tiles (make_grid's padding), in the padding colour: black
GAP = 3  # pixels between a label and the tiles
INK = (255, 255, 255)  # labels: white on the black margin


@dataclass
class Sheet:
    """Images (rows, cols, C, H, W) in [-1, 1] with labels: one per row (left margin), one per column (top
    margin), and ``corner``, above the row labels, naming what the columns vary."""

    images: Tensor
    rows: Sequence[str] | None = None
    cols: Sequence[str] | None = None
    corner: str | None = None


def numbers(values: Sequence[float] | Tensor) -> list[str]:
    """Column labels for numbers: two significant digits (three from 10 up), "0" rather than "-0"."""
    out = []
    for value in [float(v) for v in values]:
        text = f"{value:.3g}" if abs(value) >= 10 else f"{value:.2g}"
        out.append("0" if text in ("0", "-0") else text)
    return out


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
    return make_grid(images.detach().float().cpu().add(1).div(2).clamp(0, 1), nrow=nrow, padding=PAD)


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _size(text: str) -> tuple[int, int]:
    """(width, height) of ``text`` in the label font; the height is the font's line height."""
    left, _, right, _ = _font().getbbox(text)
    return int(right - left), int(_font().getbbox("Ag")[3])


def label_margins(sheet: Sheet) -> tuple[int, int, bool]:
    """(left, top, vertical): the margins a sheet's labels take; column labels are written upwards (vertical)
    when one is wider than its column."""
    tile_w = sheet.images.shape[-1]
    line = _size("Ag")[1]
    side = [*(sheet.rows or []), *([sheet.corner] if sheet.corner else [])]
    widest = max((_size(text)[0] for text in sheet.cols or []), default=0)
    vertical = widest > tile_w + PAD - 2
    left = max(_size(text)[0] for text in side) + 2 * GAP if side else 0
    top = (widest if vertical else line) + 2 * GAP if sheet.cols or sheet.corner else 0
    return left, top, vertical


def _check_labels(sheet: Sheet) -> None:
    if sheet.images.dim() != 5:
        raise ValueError(f"labelled sheets take images (rows, cols, C, H, W), not {tuple(sheet.images.shape)}")
    for name, labels, count in (("row", sheet.rows, sheet.images.shape[0]), ("column", sheet.cols,
                                                                           sheet.images.shape[1])):
        if labels is not None and len(labels) != count:
            raise ValueError(f"{len(labels)} {name} labels for {count} {name}s")


def sheet_picture(images: Tensor | Sheet, nrow: int | None = None) -> Image.Image:
    """The RGB picture of a sheet: its grid (``sheet_grid``), with a ``Sheet``'s labels in a margin."""
    sheet = images if isinstance(images, Sheet) else Sheet(images)
    grid = sheet_grid(sheet.images, nrow).mul(255).add(0.5).clamp(0, 255).permute(1, 2, 0).to(torch.uint8)
    picture = Image.fromarray(grid.numpy())
    if not (sheet.rows or sheet.cols or sheet.corner):
        return picture
    _check_labels(sheet)
    left, top, vertical = label_margins(sheet)
    canvas = Image.new("RGB", (left + picture.width, top + picture.height))
    canvas.paste(picture, (left, top))
    draw, font = ImageDraw.Draw(canvas), _font()
    tile_h, tile_w = sheet.images.shape[-2:]
    for r, text in enumerate(sheet.rows or []):  # right-aligned, centred on the row
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        y = top + PAD + r * (tile_h + PAD) + tile_h / 2
        draw.text((left - GAP - x1, round(y - (y0 + y1) / 2)), text, fill=INK, font=font)
    for c, text in enumerate(sheet.cols or []):  # centred on the column, just above the grid
        x = left + PAD + c * (tile_w + PAD) + tile_w / 2
        label = _label(text)
        if vertical:
            label = label.rotate(90, expand=True)
        canvas.paste(INK, (round(x - label.width / 2), top - GAP - label.height), label)
    if sheet.corner:
        label = _label(sheet.corner)
        canvas.paste(INK, (left - GAP - label.width, top - GAP - label.height), label)
    return canvas


def _label(text: str) -> Image.Image:
    """A mask of ``text`` (white on black), as tall as a line."""
    width, height = _size(text)
    mask = Image.new("L", (max(width, 1), height))
    left = _font().getbbox(text)[0]
    ImageDraw.Draw(mask).text((-left, 0), text, fill=255, font=_font())
    return mask


def write_picture(picture: Image.Image, path: str | Path) -> Path:
    """Save a sheet's picture as PNG, creating its folder."""
    path = Path(path)
    for parent in path.parents:  # the nearest existing folder on the way must be a folder, not a file
        if parent.exists():
            if not parent.is_dir():
                raise AegenError(f"cannot write {path}: {parent} is a file, not a directory; choose another path")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG")
    return path


def save_sheet(images: Tensor | Sheet, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] as one PNG grid: (N, C, H, W), (rows, cols, C, H, W) row by row, or a labelled
    ``Sheet``."""
    if len(images.images if isinstance(images, Sheet) else images) == 0:
        raise AegenError(f"no images to write to {path}")
    return write_picture(sheet_picture(images, nrow), path)


@rank_zero_only
def log_sheet(loggers: list[pl.loggers.Logger], tag: str, path: Path, picture: Image.Image, step: int) -> None:
    """Send a saved sheet to the loggers that keep images: TensorBoard's and wandb's (CSV keeps none)."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, np.asarray(picture), step, dataformats="HWC")
        elif isinstance(logger, WandbLogger):
            logger.log_image(tag, [str(path)], step=step)


@torch.no_grad()
def recon_sheet(model, x: Tensor) -> Sheet:
    """Pairs of rows, labelled "input" and "reconstruction": originals over their reconstructions."""
    cols = min(len(x), 8)
    rows = len(x) // cols
    x = x[: rows * cols]
    pairs = torch.stack([x, model.reconstruct(x)]).unflatten(1, (rows, cols))  # (2, rows, cols, ...)
    return Sheet(pairs.transpose(0, 1).flatten(0, 1), rows=["input", "reconstruction"] * rows)


def interpolation_rows(starts: Tensor, frames: Tensor, ends: Tensor) -> Sheet:
    """Rows of interpolations (pairs, steps, C, H, W) between the images ``starts`` and ``ends``, with those real
    images at the row's ends and the interpolation weight (alpha, 0 to 1) above each frame."""
    frames = frames.cpu()
    images = torch.cat([starts.cpu().unsqueeze(1), frames, ends.cpu().unsqueeze(1)], dim=1)
    alphas = numbers(torch.linspace(0, 1, frames.shape[1]))
    return Sheet(images, cols=["input", *alphas, "input"], corner="alpha")


@torch.no_grad()
def interpolation_sheet(model, x: Tensor, steps: int = 8, seed: int = 0) -> Sheet:
    """Rows of decoded interpolations between consecutive pairs of images, the real pair at each row's ends; for a
    model without an encoder, as many rows of paths between pairs of generator inputs (drawn from ``seed``)."""
    half = len(x) // 2
    if not getattr(model, "has_encoder", True):
        from aegen.latent import generator_interpolation

        generator = torch.Generator(device=model.device).manual_seed(seed)
        frames = generator_interpolation(model, half, steps, generator=generator).cpu()
        return Sheet(frames, cols=numbers(torch.linspace(0, 1, steps)), corner="alpha")
    starts, ends = x[:half], x[half : 2 * half]
    return interpolation_rows(starts, model.interpolate(starts, ends, steps), ends)


@torch.no_grad()
def traversal_sheet(model, x: Tensor | None = None, steps: int = 10, span: float | None = None,
                    code: int | None = None, generator: torch.Generator | None = None) -> Sheet:
    """``model.traversal`` labelled: rows by code dimension (LatentGAN: by category), columns by the swept value
    (multiples of the codes' standard deviation; LatentGAN: of its continuous code)."""
    from aegen.models.base import GenerativeAE

    images = model.traversal(x, steps=steps, span=span, code=code, generator=generator).cpu()
    if type(model).traversal is GenerativeAE.traversal:
        dims = range(len(images)) if code is None else [code]  # the code's dimensions (aae_cluster: K + latent_dim)
        values = torch.linspace(-(2.0 if span is None else span), 2.0 if span is None else span, steps)
        return Sheet(images, rows=[f"z{d}" for d in dims], cols=numbers(values), corner="std")
    if hasattr(model, "num_categories") and hasattr(model, "num_continuous"):  # LatentGAN's category x code sheet
        rows = [f"c={k}" for k in range(len(images))]
        if not model.num_continuous:
            return Sheet(images, rows=rows)  # columns: other noise
        values = torch.linspace(-(1.5 if span is None else span), 1.5 if span is None else span, steps)
        return Sheet(images, rows=rows, cols=numbers(values), corner=f"u{code or 0}")
    return Sheet(images)


class ImageSheets(pl.Callback):
    """Writes reconstructions, samples and interpolations to ``<run>/images/`` after each validation epoch,
    and to the run's TensorBoard or wandb logger as ``images/recon``, ``images/samples``, ``images/interp``
    (models without an encoder: no reconstructions; interpolations between generator inputs)."""

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
        sheets = {"recon": recon_sheet(pl_module, x)} if getattr(pl_module, "has_encoder", True) else {}
        sheets["samples"] = pl_module.sample(len(x), generator=generator)
        if len(x) >= 2:  # a pair is needed to interpolate
            sheets["interp"] = interpolation_sheet(pl_module, x, self.steps)
        for kind, images in sheets.items():
            picture = sheet_picture(images)
            path = write_picture(picture, out / f"{kind}_{epoch}.png")
            log_sheet(trainer.loggers, f"images/{kind}", path, picture, trainer.global_step)
