"""Your own data as tensors or arrays: ``aegen.data.TensorData`` and ``--data arrays --data.path FILE.npz``."""

import numpy as np
import pytest
import torch

import aegen
from aegen.cli import main
from aegen.data import TensorData
from aegen.errors import AegenError
from tests.conftest import FAST, fit_cli


def _digits(n=40, size=16):
    """``n`` uint8 (n, 1, size, size) digits and their labels, as numpy arrays."""
    images, labels = aegen.get_data("digits")(image_size=size).split("train")
    return images[:n].numpy(), labels[:n].numpy()


def test_tensor_data_trains_an_ae_through_a_plain_trainer(trainer):
    images, labels = _digits()
    dm = TensorData(torch.from_numpy(images), torch.from_numpy(labels), batch_size=8)
    assert dm.img_shape == (1, 16, 16) and dm.num_classes == int(labels.max()) + 1
    assert "images" not in dm.hparams and "labels" not in dm.hparams  # data, not settings
    model = aegen.get_model("ae")(img_shape=dm.img_shape, latent_dim=4, width=8)
    fit = trainer(3, val_batches=1)
    fit.fit(model, dm)
    assert fit.global_step == 3
    sizes = [len(dm.split(name)[0]) for name in ("train", "val", "test")]
    assert sizes == [32, 4, 4]
    again = TensorData(images, labels).split("test")
    assert torch.equal(again[0], dm.split("test")[0]) and torch.equal(again[1], dm.split("test")[1])


def test_layouts_ranges_crops_and_factor_labels():
    images, _ = _digits(n=12)
    first = TensorData(images).split("train")[0]
    assert TensorData(images).num_classes is None and (TensorData(images).split("val")[1] == -1).all()
    assert torch.equal(TensorData(images[:, 0]).split("train")[0], first)  # (N, H, W)
    rgb = np.repeat(images, 3, axis=1)
    assert torch.equal(TensorData(rgb.transpose(0, 2, 3, 1)).split("train")[0], TensorData(rgb).split("train")[0])
    signed = images.astype(np.float32) / 127.5 - 1
    assert torch.equal(TensorData(signed).split("train")[0], first)
    assert torch.equal(TensorData(torch.from_numpy(images / 255.0), float_range="unit").split("train")[0], first)
    wide = np.pad(images, ((0, 0), (0, 0), (0, 0), (4, 4)))  # 16 x 24: the centre 16 x 16 is the digit
    assert torch.equal(TensorData(wide).split("train")[0], first)
    assert TensorData(images, image_size=32).img_shape == (1, 32, 32)
    factors = np.stack([np.arange(12) % 3, np.arange(12) % 2], 1)
    dm = TensorData(images, factors, factor_names=["shape", "side"])
    assert dm.factor_names == ["shape", "side"] and dm.factor_sizes == [3, 2] and dm.num_classes is None


def test_float_images_in_0_1_read_as_signed_get_a_warning():
    with pytest.warns(UserWarning, match="float_range='unit'"):
        TensorData(np.full((10, 16, 16), 0.5, dtype=np.float32))


N = 10
BAD = [
    (np.zeros((N, 16)), {}, "shape"),
    (np.zeros((N, 2, 16, 16), np.uint8), {}, "1 \\(grey\\) or 3 \\(RGB\\) channels"),
    (np.zeros((N, 16, 16), np.int64), {}, "uint8 in \\[0, 255\\] or floats"),
    (np.full((N, 16, 16), np.nan, np.float32), {}, f"{N} images hold NaN or inf"),
    (np.full((N, 16, 16), 255.0), {}, "must lie in \\[-1, 1\\], got values from 255 to 255"),
    (np.full((N, 16, 16), -0.5), {"float_range": "unit"}, "must lie in \\[0, 1\\]"),
    (np.zeros((N, 16, 16), np.uint8), {"labels": np.zeros(N - 1, np.int64)}, f"shape \\({N},\\) or \\({N}, K\\)"),
    (np.zeros((N, 16, 16), np.uint8), {"labels": np.zeros(N, np.float32)}, "labels must be integers"),
    (np.zeros((N, 16, 16), np.uint8), {"labels": np.full(N, -2)}, "labels must be >= -1"),
    (np.zeros((N, 16, 16), np.uint8), {"labels": np.zeros((N, 2), np.int64), "factor_names": ["a"]}, "2 distinct names"),
    (np.zeros((3, 16, 16), np.uint8), {}, "too few"),
    ([[0, 1]], {}, "torch tensor or numpy array"),
]


@pytest.mark.parametrize("images, options, says", BAD)
def test_bad_arrays_get_one_line_errors(images, options, says):
    with pytest.raises(ValueError, match=says) as err:
        TensorData(images, **options).setup()
    assert "\n" not in str(err.value)


def test_arrays_file_trains_through_the_cli_and_reloads_from_the_checkpoint(capsys, tmp_path):
    images, labels = _digits(n=48)
    np.savez(tmp_path / "mine.npz", images=images.transpose(0, 2, 3, 1), labels=labels)  # (N, H, W, 1)
    ckpt = fit_cli(capsys, "--model", "ae", "--model.latent_dim", "4", "--model.width", "8",
                   "--data", "arrays", "--data.path", "mine.npz", "--data.batch_size", "8",
                   "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1")
    assert ckpt.parent.parent.parent.name == "ae-arrays"
    record = aegen.read_checkpoint(ckpt)["aegen"]["data"]
    assert record["name"] == "arrays" and record["hparams"]["path"] == "mine.npz"
    dm = aegen.load_datamodule(ckpt)
    assert dm.registry_name == "arrays" and dm.img_shape == (1, 16, 16) and dm.num_classes == int(labels.max()) + 1
    assert torch.equal(dm.split("test")[0], TensorData(images, labels).split("test")[0])


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "mine.npz not found"),
    (lambda p: np.savez(p, pictures=np.zeros((4, 16, 16), np.uint8)), "has no 'images' array \\(it holds: pictures\\)"),
    (lambda p: p.write_text("not numpy"), "not a readable .npz"),
    (lambda p: np.savez(p, images=np.zeros((4, 16, 16), np.int32)), "mine.npz: images must be uint8"),
])
def test_bad_npz_files_name_the_file_or_key(make, says, tmp_path, capsys):
    make(tmp_path / "mine.npz")
    with pytest.raises(AegenError, match=says):
        aegen.get_data("arrays")(path="mine.npz")
    code = main(["fit", *FAST, "--model", "ae", "--data", "arrays", "--data.path", "mine.npz"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "mine.npz" in lines[0], lines
