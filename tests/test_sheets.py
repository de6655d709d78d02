"""The sheet commands' default output (the checkpoint's run folder) and the grid layout."""

import shutil

import pytest
import torch
from PIL import Image

from aegen.cli import main
from aegen.commands import sheet_path
from aegen.viz import sheet_grid
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
