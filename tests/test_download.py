"""Opt-in downloads against a real HTTP server on 127.0.0.1 serving fixture files ($AEGEN_DOWNLOAD_MIRROR)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import struct
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

from aegen import cli
from aegen.data.download import MIRROR_ENV
from aegen.errors import AegenError
from aegen.evaluate import _inception_weights
from aegen.metrics import fidelity
from aegen.registry import get_data

MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes); paths in ``server.drop`` announce their length, send half, close."""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path in self.server.drop else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.drop = {}, set()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def mirror(server, monkeypatch):
    """The local server as the download mirror, empty; returns it (``files``, ``drop`` to fill)."""
    server.files.clear()
    server.drop.clear()
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("no_proxy", "*")  # never through a proxy from the environment
    return server


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def _serve_mnist(server, monkeypatch, bad_md5: str | None = None) -> dict[str, np.ndarray]:
    """Tiny MNIST IDX .gz files at <mirror>/mnist/, with torchvision's md5 sums patched to theirs."""
    rng = np.random.default_rng(0)
    arrays = dict(zip(MNIST_NAMES, (rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10,
                                     rng.integers(0, 256, (10, 28, 28)), np.arange(10) % 10)))
    resources = []
    for name, array in arrays.items():
        body = _idx_gz(array)
        server.files[f"/mnist/{name}.gz"] = body
        resources.append((f"{name}.gz", bad_md5 if bad_md5 and name == MNIST_NAMES[0] else _md5(body)))
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)
    return arrays


def _serve_cifar(server, monkeypatch) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A tiny cifar-10-python.tar.gz (python pickles, 3 images per batch) at <mirror>/cifar10/, md5 patched."""
    rng = np.random.default_rng(1)
    buffer, batches = io.BytesIO(), {}
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i, name in enumerate(CIFAR_BATCHES):
            data, labels = rng.integers(0, 256, (3, 3072), dtype=np.uint8), [(i + j) % 10 for j in range(3)]
            batches[name] = (data, labels)
            blob = pickle.dumps({b"batch_label": name.encode(), b"labels": labels, b"data": data}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    body = buffer.getvalue()
    server.files["/cifar10/cifar-10-python.tar.gz"] = body
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "tgz_md5", _md5(body))
    return batches


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _one_line_error(make) -> str:
    with pytest.raises(AegenError) as err:
        make().setup()
    message = str(err.value)
    assert "\n" not in message
    return message


def test_download_mnist_then_load_it_offline(mirror, monkeypatch, tmp_path):
    arrays = _serve_mnist(mirror, monkeypatch)
    root = tmp_path / "data"
    dm = get_data("mnist")(root=str(root), download=True, val_fraction=0.25, image_size=28)
    dm.setup()
    assert _files(root) == [f"MNIST/raw/{name}.gz" for name in sorted(MNIST_NAMES)]
    test_x, test_y = dm.split("test")
    assert torch.equal(test_x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).to(torch.uint8))
    assert torch.equal(test_y, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]))
    assert len(dm.split("train")[0]) == 15 and dm.tensors("train", 3)[0].shape == (3, 1, 28, 28)
    mirror.files.clear()  # present files are used as they are: no request
    assert len(get_data("mnist")(root=str(root), download=True).split("test")[0]) == 10


def test_download_cifar10_extracts_the_batches_and_reads_them_through_the_restricted_unpickler(mirror, monkeypatch, tmp_path):
    batches = _serve_cifar(mirror, monkeypatch)
    root = tmp_path / "data"
    dm = get_data("cifar10")(root=str(root), download=True)
    dm.prepare_data()  # Lightning's hook downloads; setup then reads
    assert _files(root) == [f"cifar-10-batches-py/{name}" for name in sorted(CIFAR_BATCHES)]  # archive removed
    test_x, test_y = dm.split("test")
    assert torch.equal(test_x, torch.from_numpy(batches["test_batch"][0].reshape(-1, 3, 32, 32)))
    assert test_y.tolist() == batches["test_batch"][1] and dm.tensors("train", 4)[0].shape == (4, 3, 32, 32)


def test_download_with_a_bad_checksum_fails_in_one_line_leaving_nothing(mirror, monkeypatch, tmp_path):
    _serve_mnist(mirror, monkeypatch, bad_md5="0" * 32)
    root = tmp_path / "data"
    message = _one_line_error(lambda: get_data("mnist")(root=str(root), download=True))
    assert "checksum mismatch" in message and "expected " + "0" * 32 in message and MIRROR_ENV in message
    assert _files(root) == [] and not (root / "MNIST").exists()


@pytest.mark.parametrize("name, path", [("mnist", "/mnist/t10k-images-idx3-ubyte.gz"),
                                        ("cifar10", "/cifar10/cifar-10-python.tar.gz")])
def test_download_dropped_connection_fails_in_one_line_leaving_no_partial_file(mirror, monkeypatch, tmp_path, name, path):
    (_serve_mnist if name == "mnist" else _serve_cifar)(mirror, monkeypatch)
    mirror.drop.add(path)
    root = tmp_path / "data"
    message = _one_line_error(lambda: get_data(name)(root=str(root), download=True))
    assert "connection dropped after" in message and path.rsplit("/", 1)[1] in message
    left = _files(root)  # MNIST's files before the dropped one are complete and checked; nothing else
    assert left == ([f"MNIST/raw/{n}.gz" for n in sorted(MNIST_NAMES[:2])] if name == "mnist" else [])


def test_download_unreachable_or_missing_source_fails_in_one_line(mirror, monkeypatch, tmp_path):
    _serve_mnist(mirror, monkeypatch)
    mirror.files.pop("/mnist/train-images-idx3-ubyte.gz")
    message = _one_line_error(lambda: get_data("mnist")(root=str(tmp_path / "a"), download=True))
    assert "HTTP 404" in message and _files(tmp_path / "a") == []
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}")
    message = _one_line_error(lambda: get_data("svhn")(root=str(tmp_path / "b"), download=True))
    assert "network unreachable" in message and "train_32x32.mat" in message and not (tmp_path / "b").exists()


def test_download_is_off_by_default(mirror, monkeypatch, tmp_path):
    _serve_mnist(mirror, monkeypatch)
    message = _one_line_error(lambda: get_data("fashion_mnist")(root=str(tmp_path / "data")))
    assert "--data.download true" in message and _files(tmp_path / "data") == []


def test_download_inception_into_the_hub_cache_checked_before_use(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(fidelity.INCEPTION_ENV, raising=False)
    buffer = io.BytesIO()
    torch.save({"conv.weight": torch.zeros(1)}, buffer)
    mirror.files[f"/inception/{fidelity.INCEPTION_FILE}"] = buffer.getvalue()
    with pytest.raises(AegenError, match="not torch-fidelity's InceptionV3") as err:
        fidelity.inception_weights(download=True)
    assert "\n" not in str(err.value) and _files(tmp_path / "torch-home") == []
    buffer = io.BytesIO()
    torch.save({key: torch.zeros(1) for key in fidelity.INCEPTION_KEYS}, buffer)  # the layout check's keys
    mirror.files[f"/inception/{fidelity.INCEPTION_FILE}"] = buffer.getvalue()
    assert cli.parse(["evaluate", "c.ckpt", "--download-inception"])[1]["download_inception"] is True
    assert _inception_weights(None, None, download=True) is None  # fetched, though no Inception group runs
    assert fidelity.inception_weights() == fidelity.hub_inception_path()
