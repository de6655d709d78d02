import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from aegen.data.base import signed_to_uint8, unit_to_uint8
from aegen.data.digits import Digits
from aegen.errors import AegenError
from aegen.evaluate import conditional_accuracy
from aegen.metrics import fidelity
from aegen.metrics.judge import FEATURE_EXTRACTOR, get_judge, judge_path, load_judge, train_judge


@pytest.fixture
def digits(digits_judge):
    """Default digits under this test's data root, with the test run's judge installed."""
    shutil.copytree(digits_judge.parent, Path(os.environ["AEGEN_DATA"]) / "judges")
    return Digits()


def test_judge_is_cached_with_its_accuracy_and_reused(digits, digits_judge):
    meta = json.loads(digits_judge.with_suffix(".json").read_text())
    assert meta["test_accuracy"] > 0.8 and meta["num_classes"] == 10  # 4 epochs already judge digits well
    judge = get_judge(digits)  # found in the cache: no training
    assert judge_path(digits).is_file()
    reference = load_judge(digits_judge)
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), reference.state_dict().values()))
    x, y = digits.tensors("test")
    assert (judge.predict(x) == y).float().mean() == pytest.approx(meta["test_accuracy"])


def test_judge_training_is_deterministic(tmp_path):
    nets = [train_judge(Digits(root=str(tmp_path)), max_steps=3) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))


def test_judge_files_with_pickled_code_are_refused(digits, tmp_path):
    path = judge_path(digits)

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"trunk.0.weight": Evil()}, path)
    with pytest.raises(AegenError, match="refusing"):
        get_judge(digits)


def test_judge_fid_and_is_separate_real_from_broken_images(digits):
    weights = judge_path(digits)
    train = fidelity.SplitImages(digits, "train")
    test = fidelity.SplitImages(digits, "test")
    real = fidelity.fidelity(test, train, ("fid", "kid", "is"), FEATURE_EXTRACTOR, weights, suffix="_judge")
    noise = fidelity.ChunkedImages(lambda i, n: torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1,
                                   180, chunk_size=50)
    fake = fidelity.fidelity(noise, train, ("fid", "kid", "is"), FEATURE_EXTRACTOR, weights, suffix="_judge")
    assert set(real) == {"fid_judge", "kid_judge_mean", "kid_judge_std", "is_judge_mean", "is_judge_std"}
    assert fake["fid_judge"] > 5 * real["fid_judge"] and fake["kid_judge_mean"] > 10 * abs(real["kid_judge_mean"])
    assert real["is_judge_mean"] > 5 > fake["is_judge_mean"] >= 1  # ten confident classes vs one class of noise


def test_chunked_samples_do_not_depend_on_access_order():
    data = fidelity.ChunkedImages(lambda i, n: torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(i)), 25, 10)
    forward = torch.stack([data[i] for i in range(25)])
    backward = torch.stack([data[i] for i in reversed(range(25))]).flip(0)
    assert forward.dtype == torch.uint8 and torch.equal(forward, backward)
    assert signed_to_uint8(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]
    assert unit_to_uint8(torch.tensor([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]


class Conditional:
    """A stand-in conditional model: returns real test digits of the requested (or a wrong) class."""

    device = torch.device("cpu")

    def __init__(self, images, labels, shift=0):
        self.images, self.labels, self.shift = images, labels, shift

    def sample_conditional(self, n, classes, generator=None):
        picks = [(self.labels == (c + self.shift) % 10).nonzero()[0, 0] for c in classes.tolist()]
        return self.images[torch.stack(picks)]


def test_conditional_accuracy(digits):
    judge = get_judge(digits)
    x, y = digits.tensors("test")
    assert conditional_accuracy(Conditional(x, y), judge, 10, 40, chunk_size=16) > 0.8
    assert conditional_accuracy(Conditional(x, y, shift=3), judge, 10, 40) < 0.2
    unconditional = type("Plain", (), {"device": torch.device("cpu"), "sample_conditional": lambda self, *a, **k: None})()
    assert conditional_accuracy(unconditional, judge, 10, 40) is None


# ------------------------------------------------------------------ Inception weights
@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(fidelity.INCEPTION_ENV, raising=False)


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / fidelity.INCEPTION_FILE
    torch.save(fidelity.random_inception_state_dict(), path)
    return path


def test_missing_inception_weights_say_where_to_put_them(no_weights, tmp_path):
    with pytest.raises(AegenError, match="Inception weights not found") as err:
        fidelity.inception_weights()
    assert "--inception_weights" in str(err.value) and str(tmp_path / "torch-home") in str(err.value)
    with pytest.raises(AegenError, match="Inception weights not found at .*nope.pth"):
        fidelity.inception_weights(tmp_path / "nope.pth")


def test_inception_weights_from_argument_environment_and_hub_cache(no_weights, random_inception, tmp_path, monkeypatch):
    assert fidelity.inception_weights(random_inception) == random_inception
    monkeypatch.setenv(fidelity.INCEPTION_ENV, str(random_inception))
    assert fidelity.inception_weights() == random_inception
    monkeypatch.delenv(fidelity.INCEPTION_ENV)
    hub = fidelity.hub_inception_path()
    assert hub.is_relative_to(tmp_path / "torch-home")
    hub.parent.mkdir(parents=True)
    shutil.copy(random_inception, hub)
    assert fidelity.inception_weights() == hub


def test_inception_files_are_checked_before_use(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(AegenError, match="not torch-fidelity's InceptionV3"):
        fidelity.inception_weights(tmp_path / "other.pth")
