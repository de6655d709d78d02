"""`aegen export`: a trained model as a folder of safetensors, YAML, a model card and samples, read
back by `aegen.load` and every command that takes a checkpoint, without unpickling anything."""

import json
import shutil

import pytest
import torch
import yaml

import aegen
from aegen.cli import main
from aegen.errors import AegenError
from aegen.export import CARD, CONFIG, SAMPLES, WEIGHTS, export
from aegen.prior import fit_prior
from tests.conftest import tiny_ae_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny AE trained for two steps on digits, once for this module."""
    return tiny_ae_checkpoint(tmp_path_factory.mktemp("export-run"))


def _same_model(a, b) -> None:
    """Equal weights and equal samples from equal seeds."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(a.sample(4, generator=torch.Generator().manual_seed(1)),
                       b.sample(4, generator=torch.Generator().manual_seed(1)))


def test_export_round_trip(checkpoint, tmp_path):
    out = export(checkpoint, tmp_path / "ae-digits", num_samples=9)
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS, CONFIG, CARD, SAMPLES])
    model = aegen.load(out)
    _same_model(model, aegen.load(checkpoint))
    assert model.sample(4).shape[0] == 4 and not model.training
    config = yaml.safe_load((out / CONFIG).read_text())
    assert config["model"] == "ae" and config["hyper_parameters"]["latent_dim"] == 4
    assert config["data"]["name"] == "digits" and config["sampler"]["name"] == "gaussian"
    assert config["aegen"]["version"] == aegen.__version__
    card = (out / CARD).read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert card.startswith("---\n") and front["library_name"] == "aegen" and "ae" in front["tags"]
    assert 'aegen.load("ae-digits")' in card and "## Training data" in card and "![samples](samples.png)" in card
    assert "## Evaluation" not in card  # no metrics.json beside the run
    assert aegen.load_datamodule(out).registry_name == "digits"


def test_export_and_sample_on_the_command_line(checkpoint, tmp_path, capsys):
    assert main(["export", str(checkpoint), "--out", "shared", "--num", "4"]) == 0
    assert capsys.readouterr().out.strip() == "shared"
    assert main(["sample", "shared", "--out", "s.png", "--num", "4"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_model_card_has_the_evaluation(checkpoint, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "eval").mkdir()
    shutil.copy(checkpoint, run / "checkpoints" / "last.ckpt")
    (run / "eval" / "metrics.json").write_text(json.dumps({"fid": 12.5, "recon_mse": 0.0312, "num_samples": 100}))
    card = (export(run / "checkpoints" / "last.ckpt", tmp_path / "out", num_samples=1) / CARD).read_text()
    assert "## Evaluation" in card and "| fid | 12.5 |" in card and "| recon_mse | 0.0312 |" in card
    assert "num_samples" not in card.split("## Evaluation")[1]


def test_fitted_sampler_round_trips(checkpoint, tmp_path):
    fit_prior(checkpoint, tmp_path / "gmm.ckpt", kind="gmm", gmm_components=2, accelerator="cpu")
    out = export(tmp_path / "gmm.ckpt", tmp_path / "gmm", num_samples=4)
    model = aegen.load(out)
    assert type(model.sampler).__name__ == "GMMSampler"
    assert yaml.safe_load((out / CONFIG).read_text())["aegen"]["prior"]["kind"] == "gmm"
    _same_model(model, aegen.load(tmp_path / "gmm.ckpt"))


def _one_line_error(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aegen: error: "), lines
    return lines[0]


def test_tampered_or_missing_files_fail_in_one_line(checkpoint, tmp_path, capsys):
    out = export(checkpoint, tmp_path / "x", num_samples=1)
    weights = out / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[:8] = (2**62).to_bytes(8, "little")  # a header length far beyond the file
    weights.write_bytes(bytes(data))
    line = _one_line_error(capsys, ["sample", out])
    assert str(weights) in line and "not readable" in line
    with pytest.raises(AegenError, match="model.safetensors"):
        aegen.load(out)
    weights.unlink()
    assert f"no weights at {weights}" in _one_line_error(capsys, ["sample", out])
    (out / CONFIG).write_text("model: [unclosed")
    assert "config.yaml is not readable YAML" in _one_line_error(capsys, ["sample", out])
    # a run folder is not an export: the error points at its checkpoint
    assert "checkpoints/last.ckpt" in _one_line_error(capsys, ["sample", checkpoint.parent.parent])
