"""Landmark attributes (GAIA's head rotation) and `aegen attribute --landmarks`, on a tiny fake CelebA."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aegen.cli import main
from aegen.landmarks import head_rotation
from tests.conftest import fit_cli

# (lefteye, righteye, nose, leftmouth, rightmouth) of a frontal, symmetric face, CelebA's column order
FRONTAL = [70, 110, 110, 110, 90, 135, 75, 155, 105, 155]
HEADER = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"


def _shifted(dx: float) -> list[float]:
    marks = list(FRONTAL)
    marks[4] += dx
    return marks


def test_head_rotation_is_zero_when_frontal_and_signed_by_the_nose_side():
    values = head_rotation(torch.tensor([FRONTAL, _shifted(-6), _shifted(6), _shifted(12)]))
    assert values.shape == (4,)
    assert abs(values[0]) < 1e-6
    assert values[1] < 0 < values[2] < values[3]  # nose to the image's left: negative; right: positive
    torch.testing.assert_close(values[1], -values[2])
    doubled = head_rotation(torch.tensor([_shifted(6)]).float() * 2)  # independent of the face's size
    torch.testing.assert_close(doubled, values[2:3])
    torch.testing.assert_close(head_rotation(torch.tensor([FRONTAL, _shifted(6)]).view(2, 5, 2)), values[[0, 2]])


def make_celeba(root: Path, n: int = 12, landmarks: bool = True) -> Path:
    """A CelebA folder in the official formats: n aligned 178x218 JPEGs, partition and landmark lists."""
    directory = root / "celeba"
    (directory / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(5)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(directory / "img_align_celeba" / name)
    (directory / "list_eval_partition.txt").write_text("".join(f"{f} {i * 3 // n}\n" for i, f in enumerate(names)))
    if landmarks:
        rows = [f"{f} " + " ".join(str(v) for v in _shifted(i % 5 - 2)) for i, f in enumerate(names)]
        (directory / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{HEADER}\n" + "\n".join(rows) + "\n")
    return directory


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("aegen: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def celeba_checkpoint(capsys, tmp_path):
    """A tiny ae trained for two steps on a fake CelebA at 32 px (4 images per split)."""
    make_celeba(tmp_path / "data")
    return fit_cli(capsys, "--model", "ae", "--model.latent_dim", "4", "--model.width", "8", "--data", "celeba",
                   "--data.image_size", "32", "--data.batch_size", "2", "--data.num_workers", "0",
                   "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1")


def test_attribute_landmarks_rotation_writes_the_sheet_and_names_a_missing_list(capsys, tmp_path, celeba_checkpoint):
    argv = ["attribute", str(celeba_checkpoint), "--landmarks", "rotation", "--steps", "3", "--num", "2"]
    assert main([*argv, "--out", "rot.png"]) == 0
    width, height = Image.open("rot.png").size  # the 3 x 2 grid of 32 px tiles plus its label margins
    assert width > 2 + 3 * 34 and height > 2 + 2 * 34
    assert "--landmarks" in _error(capsys, [*argv, "--attr", "Smiling"])
    assert "--landmarks" in _error(capsys, ["attribute", str(celeba_checkpoint)])
    assert "rotation" in _error(capsys, ["attribute", str(celeba_checkpoint), "--landmarks", "tilt"])
    landmark_file = tmp_path / "data" / "celeba" / "list_landmarks_align_celeba.txt"
    landmark_file.unlink()
    line = _error(capsys, argv)
    assert "has no landmarks" in line and str(landmark_file) in line
