"""Lightning parity: ``trainer.predict``, ``aegen predict``, ``GenerativeAE.load_from_checkpoint``."""

from pathlib import Path

import pytest
import torch

import aegen
from aegen.cli import main
from aegen.models.base import GenerativeAE
from tests.conftest import tiny_ae_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny AE trained for two steps on digits, once for this module."""
    return tiny_ae_checkpoint(tmp_path_factory.mktemp("predict-run"))


def test_trainer_predict_returns_codes_reconstructions_and_labels(tiny_batch, trainer):
    model = aegen.get_model("ae")(latent_dim=4, width=8)
    batches = trainer(1).predict(model, datamodule=tiny_batch(batch_size=8))
    assert len(batches) == 2
    assert batches[0]["codes"].shape == (8, 4)
    assert batches[0]["reconstructions"].shape == (8, 1, 32, 32)
    assert batches[0]["labels"].shape == (8,)
    assert set(model.predict_step(torch.zeros(2, 1, 32, 32), 0)) == {"codes", "reconstructions"}


def test_aegen_predict_writes_weights_only_codes(ckpt, tmp_path, capsys):
    out = tmp_path / "codes.pt"
    assert main(["predict", str(ckpt), "--out", str(out), "--batch_size", "7"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    saved = torch.load(out, weights_only=True)
    images, labels = aegen.load_datamodule(ckpt).tensors("test")
    assert saved["split"] == "test" and saved["checkpoint"] == str(ckpt)
    assert saved["codes"].shape == (len(images), 4) and torch.equal(saved["labels"], labels)
    model = aegen.load(ckpt)
    with torch.no_grad():
        torch.testing.assert_close(saved["codes"][:5], model.encode(images[:5]))


def test_base_class_load_from_checkpoint_returns_the_trained_model(ckpt):
    model = GenerativeAE.load_from_checkpoint(ckpt)
    assert type(model) is aegen.get_model("ae") and not model.training
    reference = aegen.get_model("ae").load_from_checkpoint(ckpt)
    assert type(reference) is type(model)
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(TypeError, match="no overrides"):
        GenerativeAE.load_from_checkpoint(ckpt, latent_dim=3)


def test_bad_split_is_a_one_line_error(ckpt, tmp_path, capsys):
    assert main(["predict", str(ckpt), "--out", str(tmp_path / "codes.pt"), "--split", "nope"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--split" in lines[0] and "test" in lines[0], lines
    assert not (tmp_path / "codes.pt").exists()
