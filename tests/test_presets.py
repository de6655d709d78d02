"""Presets: packaged YAML configs selected with ``aegen fit --model NAME --preset PRESET``."""

from __future__ import annotations

import pytest
import yaml

from aegen import cli, presets
from aegen.errors import AegenError

PACKAGED = [(model, name) for model, names in presets.catalogue().items() for name in names if name != presets.DEFAULT]


@pytest.fixture
def tiny_presets(tmp_path, monkeypatch):
    """A preset folder with one preset for ``ae`` that sets model, data and trainer values."""
    (tmp_path / "ae").mkdir()
    (tmp_path / "ae" / "small.yaml").write_text(
        "# a small ae\nmodel:\n  init_args:\n    latent_dim: 7\n    betas: [0.5, 0.9]\n"
        "data:\n  init_args:\n    batch_size: 17\ntrainer:\n  max_epochs: 3\n")
    monkeypatch.setattr(presets, "ROOT", tmp_path)
    return tmp_path


def resolved(capsys, *argv: str) -> dict:
    with pytest.raises(SystemExit) as stop:  # --print_config prints and exits, as LightningCLI does
        cli.main(["fit", *argv, "--print_config"])
    assert stop.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_catalogue_and_options(tiny_presets):
    listed = presets.catalogue()
    assert listed["ae"] == {"default": "the model's own defaults", "small": "a small ae"}
    assert listed["gaia"] == {"default": "the model's own defaults"}  # every model, with or without files
    assert presets.options("ae", "small") == {"latent_dim": 7, "betas": (0.5, 0.9)}
    assert presets.options("ae", "default") == {}
    with pytest.raises(AegenError, match="no preset 'nope'; choose one of: default, small"):
        presets.path("ae", "nope")


def test_preset_sets_model_data_and_trainer_and_later_flags_win(tiny_presets, capsys):
    config = resolved(capsys, "--model", "ae", "--preset", "small", "--model.latent_dim", "9")
    assert config["model"]["init_args"]["latent_dim"] == 9  # the flag after the preset wins
    assert config["model"]["init_args"]["betas"] == [0.5, 0.9]
    assert config["data"]["init_args"]["batch_size"] == 17
    assert config["trainer"]["max_epochs"] == 3


def test_preset_applies_to_the_data_given_after_it(tiny_presets, capsys):
    config = resolved(capsys, "--model", "ae", "--preset", "small", "--data", "fonts")
    assert config["data"]["class_path"].endswith("Fonts")
    assert config["data"]["init_args"]["batch_size"] == 17


def test_unknown_preset_and_preset_without_model_fail_in_one_line(tiny_presets, capsys):
    assert cli.main(["fit", "--model", "ae", "--preset", "nope"]) == 2
    assert "choose one of: default, small" in capsys.readouterr().err
    assert cli.main(["fit", "--preset", "small"]) == 2
    assert "--model NAME" in capsys.readouterr().err


@pytest.mark.parametrize(("model", "name"), PACKAGED, ids=[f"{m}-{p}" for m, p in PACKAGED])
def test_packaged_presets_parse(model, name, capsys):
    """Every packaged preset is a valid config for its model (jsonargparse checks names and types)."""
    config = resolved(capsys, "--model", model, "--preset", name)
    for key, value in presets.options(model, name).items():
        got = config["model"]["init_args"][key]
        assert (tuple(got) if isinstance(got, list) else got) == value, key
