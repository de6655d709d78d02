"""The sheet commands' default output (the checkpoint's run folder), the grid layout and the labels."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from aegen.cli import main
from aegen.commands import sheet_path
from aegen.viz import Sheet, interpolation_sheet, save_sheet, sheet_grid
from tests.conftest import tiny_ae_checkpoint

TILE = 34  # a 32-pixel digit and its 2-pixel padding


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_ae_checkpoint(tmp_path_factory.mktemp("sheets"))


def test_sample_writes_into_the_run_and_prints_it(capsys, checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(checkpoint), "--num", "10"]) == 0
    written = checkpoint.parent.parent / "images" / "sample.png"
    assert capsys.readouterr().out.strip() == str(written)
    assert Image.open(written).size == (2 + 4 * TILE, 2 + 3 * TILE)  # 10 images: 4 columns by 3 rows
    assert not list(tmp_path.iterdir())  # nothing in the current directory


def test_explicit_out_and_checkpoints_outside_a_run(capsys, checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(checkpoint), "--num", "9", "--out", "x.png"]) == 0
    assert capsys.readouterr().out.strip() == "x.png"
    assert Image.open(tmp_path / "x.png").size == (2 + 3 * TILE, 2 + 3 * TILE)
    loose = tmp_path / "elsewhere" / "model.ckpt"
    loose.parent.mkdir()
    shutil.copy(checkpoint, loose)
    assert main(["sample", str(loose), "--num", "4"]) == 0
    assert (loose.parent / "sample.png").is_file()
    assert sheet_path(tmp_path, None, "edit") == tmp_path / "edit.png"  # an exported model folder: inside it
    for command in ("interpolate", "traverse", "attribute", "explore"):
        assert sheet_path(checkpoint, None, command) == checkpoint.parent.parent / "images" / f"{command}.png"


@pytest.mark.parametrize("n, cols, rows", [(2, 2, 1), (9, 3, 3), (10, 4, 3), (17, 5, 4), (64, 8, 8)])
def test_grid_is_square_ish_with_blank_tiles(n, cols, rows):
    grid = sheet_grid(torch.ones(n, 1, 4, 4))  # white tiles
    assert grid.shape[1:] == (2 + rows * 6, 2 + cols * 6)
    assert (grid[0, 2:, 2:].unfold(0, 4, 6).unfold(1, 4, 6).amin((2, 3)) == 1).sum() == n  # blank tiles stay dark


def _tiles(png, rows: int, cols: int, tile: int) -> tuple[np.ndarray, int, int]:
    """(pixels, left, top) of a sheet's PNG: its margins are what lies beyond its grid of rows x cols tiles."""
    pixels = np.asarray(Image.open(png).convert("RGB"))
    return pixels, pixels.shape[1] - (2 + cols * (tile + 2)), pixels.shape[0] - (2 + rows * (tile + 2))


def _uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] as a PNG stores them: (..., H, W, 3) uint8."""
    return images.add(1).div(2).mul(255).add(0.5).clamp(0, 255).to(torch.uint8).movedim(-3, -1).expand(
        *images.shape[:-3], *images.shape[-2:], 3).numpy()


def test_labels_go_in_a_margin_and_the_images_stay_unchanged(tmp_path):
    from PIL import ImageDraw, ImageFont

    images = torch.rand(2, 3, 1, 8, 8) * 2 - 1
    sheet = Sheet(images, rows=["input", "reconstruction"], cols=["a", "b", "c"], corner="x")
    pixels, left, top = _tiles(save_sheet(sheet, tmp_path / "s.png"), 2, 3, 8)
    draw, font = ImageDraw.Draw(Image.new("L", (1, 1))), ImageFont.load_default()
    assert left > draw.textlength("reconstruction", font=font) and top > font.getbbox("Ag")[3] - 1
    grid = sheet_grid(images).mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert (pixels[top:, left:] == grid).all()  # the grid, pixel for pixel, below and right of the labels
    assert pixels[top:, :left].max() > 200 and pixels[:top, left:].max() > 200  # row and column labels drawn
    unlabelled, *margins = _tiles(save_sheet(images, tmp_path / "u.png"), 2, 3, 8)
    assert margins == [0, 0] and (unlabelled == grid).all()
    with pytest.raises(ValueError, match="2 column labels for 3 columns"):
        save_sheet(Sheet(images, cols=["a", "b"]), tmp_path / "bad.png")


def test_interpolation_rows_hold_both_real_endpoints(tmp_path):
    class Frames:  # decodes every interpolation step to mid-grey
        def interpolate(self, a, b, steps):
            return torch.zeros(len(a), steps, *a.shape[1:])

    x = torch.linspace(-1, 1, 4 * 3 * 4 * 4).view(4, 3, 4, 4)  # two pairs: (x0, x2) and (x1, x3)
    sheet = interpolation_sheet(Frames(), x, steps=3)
    assert list(sheet.cols) == ["input", "0", "0.5", "1", "input"] and sheet.corner == "alpha"
    pixels, left, top = _tiles(save_sheet(sheet, tmp_path / "i.png"), 2, 5, 4)
    assert left > 0 and top > 0

    def tile(r, c):
        y, x0 = top + 2 + r * 6, left + 2 + c * 6
        return pixels[y : y + 4, x0 : x0 + 4]

    expected = _uint8(x)
    for r in range(2):
        assert (tile(r, 0) == expected[r]).all() and (tile(r, 4) == expected[2 + r]).all()
        assert all((tile(r, c) == 128).all() for c in (1, 2, 3))


def test_interpolate_and_traverse_commands_label_their_sheets(capsys, checkpoint, tmp_path, monkeypatch):
    from aegen.checkpoint import load_datamodule

    monkeypatch.chdir(tmp_path)
    assert main(["interpolate", str(checkpoint), "--pairs", "2", "--steps", "3", "--out", "i.png"]) == 0
    pixels, left, top = _tiles("i.png", 2, 5, 32)
    assert left > 0 and top > 0
    bank = _uint8(load_datamodule(checkpoint).tensors("test", 2000)[0])
    for r in range(2):  # each row starts and ends with a real test image
        for c in (0, 4):
            y, x = top + 2 + r * TILE, left + 2 + c * TILE
            assert (bank == pixels[y : y + 32, x : x + 32]).all(axis=(1, 2, 3)).any()
    assert main(["traverse", str(checkpoint), "--steps", "5", "--out", "t.png"]) == 0
    _, left, top = _tiles("t.png", 4, 5, 32)  # one row per code dimension, labelled z0..z3
    assert left > 0 and top > 0
