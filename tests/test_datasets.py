"""The data layer: tiny fixture files in the real on-disk formats, loaded through the user code paths."""

import gzip
import pickle
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import aegen.data.fonts as fonts
from aegen.cli import main
from aegen.data.base import to_mode
from aegen.errors import AegenError
from aegen.registry import get_data
from tests.conftest import FAST, fit_cli

TINY_FIT = ["--model", "ae", "--model.latent_dim", "8", "--model.width", "8", "--data.batch_size", "4",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
CELEBA_ATTRS = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
                "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby",
                "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male",
                "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
                "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
                "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young"]


def _one_error_line(capsys, argv) -> str:
    assert main(argv) != 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("aegen: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- MNIST-likes (IDX)
def write_idx(path: Path, array: np.ndarray) -> None:
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if path.suffix == ".gz" else open)(path, "wb").write(data)


def make_mnist(root: Path, folder: str = "MNIST", suffix: str = "", n_train: int = 40, n_test: int = 10):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)), "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)), "t10k-labels-idx1-ubyte": np.arange(n_test) % 10}
    for name, array in arrays.items():
        write_idx(root / folder / "raw" / (name + suffix), array)
    return arrays


@pytest.mark.parametrize("name, folder, suffix", [("mnist", "MNIST", ""), ("fashion_mnist", "FashionMNIST", ".gz")])
def test_mnist_likes_read_raw_idx_files_exactly(tmp_path, name, folder, suffix):
    arrays = make_mnist(tmp_path / "data", folder, suffix)
    dm = get_data(name)(image_size=28, val_fraction=0.25)
    dm.setup("fit")
    assert dm.img_shape == (1, 28, 28) and dm.num_classes == 10 and dm.factor_names is None
    test_x, test_y = dm.split("test")
    assert torch.equal(test_x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).to(torch.uint8))
    assert torch.equal(test_y, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]))
    (train_x, train_y), (val_x, val_y) = dm.split("train"), dm.split("val")
    assert len(train_x) == 30 and len(val_x) == 10
    pool = {tuple(img.flatten().tolist()): int(y) for img, y in zip(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"])}
    assert all(pool[tuple(img.flatten().tolist())] == int(y) for img, y in zip(torch.cat([train_x, val_x])[:, 0], torch.cat([train_y, val_y])))
    assert get_data(name)(image_size=32).tensors("train", 3)[0].shape == (3, 1, 32, 32)


def test_mnist_missing_files_is_one_line_naming_the_files_and_directory(capsys, tmp_path):
    empty = tmp_path / "EMPTY"
    empty.mkdir()
    line = _one_error_line(capsys, ["fit", *FAST, "--model", "ae", "--data", "mnist", "--data.root", str(empty)])
    assert "train-images-idx3-ubyte" in line and "t10k-labels-idx1-ubyte" in line
    assert str(empty / "MNIST" / "raw") in line and "never downloads" in line


def test_truncated_or_foreign_idx_files_are_named(tmp_path):
    make_mnist(tmp_path / "data")
    raw = tmp_path / "data" / "MNIST" / "raw"
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(AegenError, match="train-images-idx3-ubyte is truncated"):
        get_data("mnist")().setup()
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(AegenError, match="train-images-idx3-ubyte is not an IDX file"):
        get_data("mnist")().setup()


def test_real_datasets_never_download(tmp_path, monkeypatch):
    import torchvision.datasets

    def downloader(*args, **kwargs):  # torchvision's downloaders must never be reached
        raise AssertionError("aegen tried to download")

    for name in ("MNIST", "FashionMNIST", "CIFAR10", "SVHN"):
        monkeypatch.setattr(torchvision.datasets, name, downloader)
    for name in ("mnist", "fashion_mnist", "cifar10", "svhn"):
        with pytest.raises(AegenError, match="missing .*never downloads"):
            get_data(name)(root=str(tmp_path / "none")).setup()
    assert get_data("mnist")().download is False  # downloads are opt-in (--data.download true)


def test_mnist_trains_through_aegen_fit_with_device_cache(capsys, tmp_path):
    make_mnist(tmp_path / "data")
    ckpt = fit_cli(capsys, *TINY_FIT, "--data", "mnist", "--data.device_cache", "true")
    assert ckpt.is_file()


# ----------------------------------------------------------------------------- CIFAR-10 (pickles) and SVHN (.mat)
def make_cifar(root: Path, per_batch: int = 4):
    rng = np.random.default_rng(1)
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        batches[name] = (data, labels)
        with open(directory / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
    return batches


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_cifar10_reads_pickled_batches_and_refuses_code(tmp_path):
    batches = make_cifar(tmp_path / "data")
    dm = get_data("cifar10")(val_fraction=0.25)
    assert dm.img_shape == (3, 32, 32) and dm.num_classes == 10
    test_x, test_y = dm.split("test")
    assert torch.equal(test_x, torch.from_numpy(batches["test_batch"][0]).view(-1, 3, 32, 32))
    assert test_y.tolist() == batches["test_batch"][1]
    assert len(dm.split("train")[0]) == 15 and len(dm.split("val")[0]) == 5
    marker = tmp_path / "pwned"
    with open(tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": _RunsCode(marker), b"labels": []}, f, protocol=2)
    with pytest.raises(AegenError, match=r"data_batch_3 is not a CIFAR-10 batch \(refusing io.open"):
        get_data("cifar10")().setup()
    assert not marker.exists()
    (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(AegenError, match=r"cifar10: missing test_batch in .*cifar-10-batches-py; extract cifar-10-python.tar.gz"):
        get_data("cifar10")().setup()


def test_svhn_reads_mat_files_and_names_a_corrupt_one(tmp_path):
    directory = tmp_path / "data" / "svhn"
    directory.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for name, n in (("train_32x32.mat", 12), ("test_32x32.mat", 5)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        scipy.io.savemat(directory / name, {"X": x, "y": (np.arange(n) % 10 + 1).reshape(-1, 1)})
    dm = get_data("svhn")()
    test_x, test_y = dm.split("test")
    assert test_y.tolist() == [1, 2, 3, 4, 5] and dm.img_shape == (3, 32, 32)
    x = scipy.io.loadmat(directory / "test_32x32.mat")["X"]
    assert int(test_x[2, 1, 5, 7]) == int(x[5, 7, 1, 2])  # (H, W, C, N) -> (N, C, H, W)
    assert len(dm.split("train")[0]) + len(dm.split("val")[0]) == 12
    train_labels = torch.cat([dm.split("train")[1], dm.split("val")[1]])
    assert sorted(train_labels.tolist()) == sorted([(i % 10 + 1) % 10 for i in range(12)])  # 10 -> class 0
    path = directory / "train_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(AegenError, match="train_32x32.mat is corrupt or truncated"):
        get_data("svhn")().setup()
    with pytest.raises(AegenError, match="extra_32x32.mat"):
        get_data("svhn")(extra=True).setup()


# ----------------------------------------------------------------------------- CelebA
def make_celeba(root: Path, n: int = 12, attributes: bool = True, landmarks: bool = True) -> Path:
    directory = root / "celeba"
    images = directory / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(3)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(images / name, quality=90)
    (directory / "list_eval_partition.txt").write_text("".join(f"{f} {min(2, i * 3 // n)}\n" for i, f in enumerate(names)))
    if attributes:
        rows = [f"{f} " + " ".join("1" if (i + j) % 3 == 0 else "-1" for j in range(40)) for i, f in enumerate(names)]
        (directory / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_ATTRS) + "\n" + "\n".join(rows) + "\n")
    if landmarks:
        header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
        rows = [f"{f} 69 109 106 113 77 142 73 152 108 154" for f in names]
        (directory / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{header}\n" + "\n".join(rows) + "\n")
    return directory


def test_celeba_needs_only_images_and_partition_and_exposes_attributes(tmp_path):
    directory = make_celeba(tmp_path / "data")
    dm = get_data("celeba")()
    assert dm.img_shape == (3, 64, 64) and dm.attribute_names == CELEBA_ATTRS and dm.num_classes is None
    assert [len(dm.split(s)) for s in ("train", "val", "test")] == [4, 4, 4]
    x, y = dm.split("val")[1]
    assert x.shape == (3, 64, 64) and -1 <= x.min() < x.max() <= 1
    smiling = CELEBA_ATTRS.index("Smiling")
    assert y.shape == (40,) and int(y[smiling]) == int((5 + smiling) % 3 == 0)  # item 1 of val is image 000006
    marks = dm.landmarks("train")
    torch.testing.assert_close(marks[0, 2], torch.tensor([77 - 19, 142 - 39]) * (64 / 140))  # nose, in output pixels
    assert get_data("celeba")(image_size=32).split("test")[0][0].shape == (3, 32, 32)
    assert get_data("celeba")(image_size=128).split("test")[0][0].shape == (3, 128, 128)
    (directory / "list_attr_celeba.txt").unlink()
    (directory / "list_landmarks_align_celeba.txt").unlink()
    bare = get_data("celeba")()
    assert bare.attribute_names is None and bare.landmarks("train") is None
    assert bare.tensors("train")[1].tolist() == [-1] * 4
    with pytest.raises(AegenError, match=r"celeba: missing list_attr_celeba.txt in .*celeba; download"):
        get_data("celeba")(attributes=True).setup()


def test_celeba_missing_and_corrupt_files_are_named(tmp_path, capsys):
    empty = tmp_path / "nothing"
    line = _one_error_line(capsys, ["fit", *FAST, "--model", "ae", "--data", "celeba", "--data.root", str(empty)])
    assert "missing img_align_celeba/, list_eval_partition.txt" in line and str(empty / "celeba") in line
    directory = make_celeba(tmp_path / "data", n=6, attributes=False, landmarks=False)
    (directory / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(AegenError, match=r"1 of the 6 images in list_eval_partition.txt are missing .* \(e.g. 000004.jpg\)"):
        get_data("celeba")().setup()
    first = directory / "img_align_celeba" / "000001.jpg"
    make_celeba(tmp_path / "d2", n=6, attributes=False, landmarks=False)
    (tmp_path / "d2" / "celeba" / "img_align_celeba" / "000001.jpg").write_bytes(first.read_bytes()[:400])
    dm = get_data("celeba")(root=str(tmp_path / "d2"))
    with pytest.raises(AegenError, match="000001.jpg is corrupt or truncated"):
        dm.split("train")[0]


def test_celeba_with_only_images_and_both_lists_trains_at_64px(capsys, tmp_path):
    make_celeba(tmp_path / "data", n=24, landmarks=False)  # 8 images per split: 2 batches of 4
    ckpt = fit_cli(capsys, *TINY_FIT, "--data", "celeba", "--data.num_workers", "0")
    assert ckpt.is_file()


# ----------------------------------------------------------------------------- folder
def make_folder(root: Path, classes=("cats", "dogs"), per_class: int = 6, broken: str | None = "dogs/broken.png") -> Path:
    rng = np.random.default_rng(4)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    if broken:
        (root / broken).write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return root


def test_folder_class_subfolders_give_labels_and_a_broken_png_is_named(tmp_path):
    root = make_folder(tmp_path / "pics")
    dm = get_data("folder")(root=str(root), image_size=16, channels=1)
    assert dm.num_classes == 2 and dm.class_names == ["cats", "dogs"] and dm.img_shape == (1, 16, 16)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file\(s\) in .*: dogs/broken.png$"):
        dm.setup()
    sizes = [len(dm.split(s)[0]) for s in ("train", "val", "test")]
    assert sizes == [10, 1, 1]
    labels = torch.cat([dm.split(s)[1] for s in ("train", "val", "test")])
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 6
    again = get_data("folder")(root=str(root), image_size=16, channels=1, in_memory_limit_mb=0)  # read on demand
    with pytest.warns(UserWarning, match="broken.png"):
        x, y = again.tensors("test")
    torch.testing.assert_close(x, dm.tensors("test")[0])
    assert torch.equal(y, dm.split("test")[1])


def test_folder_flat_none_readable_and_missing_root(tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        Image.new("RGB", (30, 20), (i * 40, 0, 0)).save(flat / f"{i}.jpg")
    dm = get_data("folder")(root=str(flat), image_size=16)
    assert dm.num_classes is None and dm.img_shape == (3, 16, 16)
    x, y = dm.tensors("train")
    assert y.tolist() == [-1] * 3 and x.shape == (3, 3, 16, 16)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"nope")
    with pytest.raises(AegenError, match=r"none of the 1 image files in .*junk could be read"):
        get_data("folder")(root=str(junk)).setup()
    assert "folder needs --data.root" in _one_error_line(capsys, ["fit", *FAST, "--model", "ae", "--data", "folder"])


def test_folder_with_a_broken_png_trains_through_aegen_fit(capsys, tmp_path):
    root = make_folder(tmp_path / "pics", per_class=10)  # 2 val images: the image sheets interpolate a pair
    with pytest.warns(UserWarning, match="broken.png"):
        ckpt = fit_cli(capsys, *TINY_FIT, "--data", "folder", "--data.root", str(root), "--data.image_size", "16")
    assert ckpt.is_file()


def gradient16(size: int = 32) -> np.ndarray:
    """A horizontal 16-bit gradient, 0 at the left to 65535 at the right, as a (size, size) uint16 array."""
    return np.tile(np.rint(np.arange(size) * 65535 / (size - 1)).astype(np.uint16), (size, 1))


def make_gradient_folder(root: Path, n: int = 6, size: int = 32) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = Image.fromarray(gradient16(size))
        assert image.mode == "I;16"
        image.save(root / f"{i}.png")
    with Image.open(root / "0.png") as check:
        assert check.mode == "I;16"  # really written as 16-bit
    return root


def to_mode_cases() -> dict[str, tuple[Image.Image, str, np.ndarray]]:
    """name -> (image, target mode, expected uint8 pixels)."""
    v = gradient16(16)
    grey = np.rint(v / 257).astype(np.uint8)
    f01 = np.linspace(0, 1, 16, dtype=np.float32)[None].repeat(4, 0)
    palette = Image.new("P", (4, 2))
    palette.putpalette([200, 30, 60, 10, 220, 90] + [0] * 762)
    palette.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    colours = np.array([[200, 30, 60], [10, 220, 90]], dtype=np.uint8)[[0, 1, 0, 1, 1, 1, 0, 0]].reshape(2, 4, 3)
    transparent = palette.copy()
    transparent.info["transparency"] = 0  # index 0 transparent: composited over white
    see_through = colours.copy()
    see_through[np.array([0, 1, 0, 1, 1, 1, 0, 0]).reshape(2, 4) == 0] = 255
    rgba = np.array([[[250, 120, 0, 255], [0, 0, 255, 0], [0, 0, 255, 128]]], dtype=np.uint8)
    la = np.array([[[100, 255], [100, 0], [0, 51]]], dtype=np.uint8)
    bits = Image.fromarray(np.array([[True, False], [False, True]]))
    return {
        "I;16": (Image.fromarray(v), "L", grey),
        "I;16B": (Image.frombytes("I;16B", (16, 16), v.astype(">u2").tobytes()), "L", grey),
        "I": (Image.fromarray(v.astype(np.int32)), "RGB", np.repeat(grey[..., None], 3, axis=2)),
        "F 0-1": (Image.fromarray(f01), "L", np.rint(f01 * 255).astype(np.uint8)),
        "F 0-65535": (Image.fromarray(v.astype(np.float32)), "L", grey),
        "P": (palette, "RGB", colours),
        "P transparent": (transparent, "RGB", see_through),
        "RGBA": (Image.fromarray(rgba), "RGB", np.array([[[250, 120, 0], [255, 255, 255], [127, 127, 255]]])),
        "LA": (Image.fromarray(la), "L", np.array([[100, 255, 204]])),
        "CMYK": (Image.new("CMYK", (2, 2), (0, 255, 255, 0)), "RGB", np.full((2, 2, 3), [255, 0, 0])),
        "1": (bits, "L", np.array([[255, 0], [0, 255]])),
    }


@pytest.mark.parametrize("case", list(to_mode_cases()))
def test_to_mode_keeps_the_full_range_of_every_mode(case):
    image, mode, expected = to_mode_cases()[case]
    out = to_mode(image, mode)
    assert out.mode == mode
    got = np.asarray(out).astype(int)
    assert got.shape == expected.shape
    assert np.abs(got - expected.astype(int)).max() <= 1, (case, got, expected)  # to within 1/255


@pytest.mark.parametrize("channels, in_memory_limit_mb", [(1, 1024), (1, 0), (3, 1024)])
def test_folder_16_bit_pngs_match_their_gradient_to_1_in_255(tmp_path, channels, in_memory_limit_mb):
    root = make_gradient_folder(tmp_path / "grad16")
    dm = get_data("folder")(root=str(root), image_size=32, channels=channels, in_memory_limit_mb=in_memory_limit_mb)
    expected = torch.from_numpy(gradient16(32) / 65535.0).float()
    for split in ("train", "val", "test"):
        x, _ = dm.tensors(split)
        assert x.shape[1:] == (channels, 32, 32)
        loaded = (x + 1) / 2  # [-1, 1] -> [0, 1]
        assert (loaded - expected).abs().max() <= 1 / 255 + 1e-6
        assert 0.45 < loaded.mean() < 0.55  # not ~98 % white


def test_folder_palette_rgba_and_la_pngs_load_with_their_colours(tmp_path):
    root = tmp_path / "colours"
    for name in ("la", "palette", "palette_transparent", "rgba"):
        (root / name).mkdir(parents=True)
    index = np.zeros((16, 16), dtype=np.uint8)
    index[:, 8:] = 1
    palette = Image.frombytes("P", (16, 16), index.tobytes())
    palette.putpalette([200, 30, 60, 10, 220, 90] + [0] * 762)
    palette.save(root / "palette" / "p.png")
    palette.save(root / "palette_transparent" / "p.png", transparency=0)
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[:, :8] = [250, 120, 0, 255]  # right half fully transparent black
    Image.fromarray(rgba).save(root / "rgba" / "a.png")
    la = np.zeros((16, 16, 2), dtype=np.uint8)
    la[:, :8] = [100, 255]
    Image.fromarray(la).save(root / "la" / "a.png")
    with Image.open(root / "palette_transparent" / "p.png") as check:
        assert check.mode == "P" and check.info.get("transparency") is not None
    left, right = {}, {}
    expected = {"la": ([100] * 3, [255] * 3), "palette": ([200, 30, 60], [10, 220, 90]),
                "palette_transparent": ([255] * 3, [10, 220, 90]), "rgba": ([250, 120, 0], [255] * 3)}
    dm = get_data("folder")(root=str(root), image_size=16, channels=3)
    assert dm.class_names == list(expected)
    for split in ("train", "val", "test"):
        x, y = dm.tensors(split)
        pixels = ((x + 1) * 127.5).round().int()
        for image, label in zip(pixels, y.tolist()):
            name = dm.class_names[label]
            left[name], right[name] = image[:, :, :8].flatten(1).unique(dim=1), image[:, :, 8:].flatten(1).unique(dim=1)
    for name, (lhs, rhs) in expected.items():
        assert left[name].T.tolist() == [lhs] and right[name].T.tolist() == [rhs], name


@pytest.mark.parametrize("in_memory_limit_mb", [1024, 0])
def test_folder_tiny_images_give_one_warning_with_their_count(tmp_path, in_memory_limit_mb):
    root = tmp_path / "tiny"
    root.mkdir()
    sizes = {"a.png": (1, 1), "b.png": (4, 4), "c.png": (4, 4), "d.png": (7, 40),  # < 32 / 4 on a side
             "e.png": (8, 40), "f.png": (32, 32), "g.png": (50, 40)}
    for name, (w, h) in sizes.items():
        Image.new("L", (w, h), 90).save(root / name)
    dm = get_data("folder")(root=str(root), image_size=32, channels=1, in_memory_limit_mb=in_memory_limit_mb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup()
    small = [str(w.message) for w in caught if "smaller than a quarter" in str(w.message)]
    assert len(small) == 1, small
    assert re.search(r"^folder: 4 image\(s\) in .*tiny are smaller than a quarter of --data.image_size 32 .*"
                     r"\(e\.g\. a\.png, 1x1\)", small[0]), small[0]
    x, _ = dm.tensors("train")
    assert x.shape[1:] == (1, 32, 32)


def test_folder_of_16_bit_pngs_trains_through_aegen_fit(capsys, tmp_path):
    root = make_gradient_folder(tmp_path / "grad16", n=24)  # 2 val images, 20 train: 2 batches of 8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ckpt = fit_cli(capsys, "--model", "ae", "--data", "folder", "--data.root", str(root), "--data.image_size", "32",
                       "--data.channels", "1", "--model.latent_dim", "4", "--model.width", "8", "--trainer.max_epochs",
                       "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                       "--data.batch_size", "8")
    assert ckpt.is_file()
    assert not [w for w in caught if "folder:" in str(w.message)]  # neither unreadable nor tiny


# ----------------------------------------------------------------------------- fonts
SMALL = {"letter": 4, "font": 2, "size": 2, "font_colour": 2, "background_colour": 3}


def test_fonts_factor_api_render_and_labels():
    dm = get_data("fonts")(image_size=16, subset=SMALL)
    assert dm.factor_names == ["letter", "font", "size", "font_colour", "background_colour"]
    assert dm.factor_sizes == [4, 2, 2, 2, 3] and dm.num_classes == 4 and dm.img_shape == (3, 16, 16)
    image = dm.render([0] * 5)
    assert image.shape == (3, 16, 16) and image.min() >= -1 and image.max() <= 1
    dm.setup("fit")
    x, y = dm.tensors("train")
    assert y.shape[1] == 5 and (y < torch.tensor(dm.factor_sizes)).all() and (y >= 0).all()
    torch.testing.assert_close(dm.render(y[3]), x[3], rtol=0, atol=0)  # items are render() of their labels
    assert torch.equal(dm.class_labels(y), y[:, 0])
    sizes = [len(dm.split(s)[0]) for s in ("train", "val", "test")]
    assert sum(sizes) == 96 and sizes[1] == sizes[2] == 10
    grid = dm.factor_grid()
    assert len(grid) == 96 and len({tuple(r) for r in grid.tolist()}) == 96
    labels = torch.cat([dm.split(s)[1] for s in ("train", "val", "test")])
    assert len({tuple(r) for r in labels.tolist()}) == 96  # the whole grid, no repeats across splits


def test_fonts_render_is_deterministic_and_each_factor_changes_the_image():
    a = get_data("fonts")(image_size=32)
    b = get_data("fonts")(image_size=32)
    anchor = torch.tensor([27, 5, 1, 3, 7])
    assert torch.equal(a.render(anchor), b.render(anchor.tolist()))
    for k in range(5):
        other = anchor.clone()
        other[k] = (other[k] + 1) % a.factor_sizes[k]
        assert not torch.equal(a.render(anchor), a.render(other)), a.factor_names[k]
    image = a.render(anchor)  # font colour "salmon" (255, 120, 110) on background "purple" (80, 20, 110)
    corner, colours = image[:, 0, 0], {tuple(c) for c in image.flatten(1).T.add(1).mul(127.5).round().int().tolist()}
    torch.testing.assert_close(corner, torch.tensor([80, 20, 110]) / 127.5 - 1)
    assert (255, 120, 110) in colours
    with pytest.raises(ValueError, match="factor value indices"):
        a.render([52, 0, 0, 0, 0])


def test_every_fonts_face_draws_real_letters_and_excluded_faces_do_not():
    assert len(fonts.FACES) == 21
    for face in fonts.FACES:
        assert fonts.check_face(face, em=24) == [], face
    assert any("turnstileright" in p for p in fonts.check_face("cmsy10.ttf", em=24))  # math symbols
    assert "'A' is the symbol 'lastresortlatin'" in fonts.check_face("LastResortHE-Regular.ttf", em=24)  # boxes
    assert "no glyph for 'A'" in fonts.check_face("DejaVuSansDisplay.ttf", em=24)  # blanks
    assert fonts.check_face("STIXSizOneSymReg.ttf", em=24) and fonts.check_face("cmex10.ttf", em=24)
    dm = get_data("fonts")(image_size=32, subset={"font": [0, 16, 20], "size": ["small"]})
    letters = dm.render_uint8(torch.tensor([[c, f, 0, 0, 0] for f in range(3) for c in range(52)]))
    assert len({img.numpy().tobytes() for img in letters}) == 3 * 52  # distinct letters, none blank
    assert all(len(img[0].unique()) > 2 for img in letters)


def test_fonts_subset_by_count_names_and_indices_and_bad_specs():
    dm = get_data("fonts")(subset={"letter": ["a", "B", 2], "font": ["cmr10", 0], "size": 1})
    assert dm.factor_values[0] == ["a", "B", "C"] and dm.factor_values[1] == ["cmr10", "DejaVuSans"]
    assert dm.factor_sizes == [3, 2, 1, 10, 10] and dm.num_classes == 3
    for subset, message in [({"colour": 3}, "unknown factor 'colour'"), ({"letter": 53}, "between 1 and 52"),
                            ({"font": ["Comic Sans"]}, "unknown value 'Comic Sans'"), ({"size": [0, 0]}, "without repeats")]:
        with pytest.raises(ValueError, match=message):
            get_data("fonts")(subset=subset)
    with pytest.raises(ValueError, match="two different factor names"):
        get_data("fonts")(bias=["letter", "letter"])


def test_fonts_subset_and_bias_parse_from_the_cli():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(get_data("fonts"), "data")
    cfg = parser.parse_args(["--data.subset", "{letter: 10, font: [cmr10, 2], font_colour: 3}",
                             "--data.bias", "[letter, background_colour]"])
    assert cfg.data.subset == {"letter": 10, "font": ["cmr10", 2], "font_colour": 3}
    assert cfg.data.bias == ["letter", "background_colour"]


def test_fonts_bias_correlates_the_training_split_only():
    dm = get_data("fonts")(image_size=16, subset={"letter": 6, "font": 1, "size": 1, "font_colour": 2, "background_colour": 3},
                           bias=["letter", "background_colour"])
    train, test = dm.split("train")[1], dm.split("test")[1]
    assert len(train) > 0 and (train[:, 4] == train[:, 0] % 3).all()
    val_test = torch.cat([dm.split("val")[1], test])
    assert (val_test[:, 4] != val_test[:, 0] % 3).any()
    items = {tuple(r) for s in ("train", "val", "test") for r in dm.split(s)[1].tolist()}
    assert len(items) == sum(len(dm.split(s)[1]) for s in ("train", "val", "test"))  # disjoint splits


def test_fonts_partners_share_exactly_one_factor():
    dm = get_data("fonts")(image_size=16, subset=SMALL)
    g = torch.Generator().manual_seed(0)
    anchors = dm.sample_factors(20, g)
    for k in range(5):
        drawn = dm.partner_factors(anchors, k, g)
        same = drawn == anchors
        assert same[:, k].all()
        assert not same[:, [j for j in range(5) if j != k]].any()
        labels = dm.split("train")[1]
        index = dm.partners(anchors, dm.factor_names[k], generator=g)
        assert (index >= 0).all() and (labels[index, k] == anchors[:, k]).all()
    one_value = get_data("fonts")(image_size=16, subset={**SMALL, "size": 1})
    drawn = one_value.partner_factors(one_value.sample_factors(8, g), "letter", g)
    assert (drawn[:, 2] == 0).all()


def test_fonts_cache_renders_once_then_loads_from_disk_and_memory(monkeypatch, tmp_path):
    settings = {"image_size": 16, "subset": SMALL, "split_seed": 7}
    first = get_data("fonts")(**settings)
    first.setup()
    assert first.loaded_from == "render" and first.cache_path.is_file()
    assert first.cache_path.is_relative_to(tmp_path / "data" / "cache" / "fonts")
    fonts._MEMORY.clear()
    monkeypatch.setattr(fonts.Fonts, "render_uint8", lambda *a, **k: pytest.fail("rendered despite the cache"))
    second = get_data("fonts")(**settings)
    second.setup()
    assert second.loaded_from == "disk"
    for s in ("train", "val", "test"):
        assert torch.equal(second.split(s)[0], first.split(s)[0]) and torch.equal(second.split(s)[1], first.split(s)[1])
    third = get_data("fonts")(**settings)
    third.setup()
    assert third.loaded_from == "memory"
    assert get_data("fonts")(**{**settings, "split_seed": 8}).cache_path != first.cache_path


def test_fonts_broken_cache_is_rendered_again(tmp_path):
    settings = {"image_size": 16, "subset": SMALL, "split_seed": 9}
    dm = get_data("fonts")(**settings)
    dm.cache_path.parent.mkdir(parents=True)
    dm.cache_path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="ignoring unreadable fonts cache"):
        dm.setup()
    assert dm.loaded_from == "render"


def test_fonts_trains_through_aegen_fit(capsys):
    ckpt = fit_cli(capsys, *TINY_FIT, "--data", "fonts", "--data.image_size", "16", "--data.batch_size", "64",
                   "--data.subset", "{letter: 10, font: 3, font_colour: 3}")  # DEAE's small-data regime
    assert ckpt.is_file()


def test_a_training_split_smaller_than_one_batch_is_a_clear_error():
    dm = get_data("fonts")(image_size=16, subset=SMALL, batch_size=128)
    with pytest.raises(AegenError, match="training split has 76 items per device, fewer than --data.batch_size 128"):
        dm.train_dataloader()


def test_aegen_list_names_every_dataset(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "fonts", "mnist", "fashion_mnist", "cifar10", "svhn", "celeba", "folder"):
        assert f"  {name} " in out
