"""Bad command lines and bad checkpoints: one `aegen: error:` line naming the flag or file, exit 2, nothing written."""

import inspect
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

import aegen.cli as cli
from aegen.checkpoint import read_state_dict
from aegen.cli import main
from aegen.errors import AegenError
from aegen.evaluate import evaluate
from tests.conftest import tiny_ae_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny AE trained for two steps on digits, once for this module."""
    return tiny_ae_checkpoint(tmp_path_factory.mktemp("bad-inputs-run"))


def _error(capsys, argv) -> str:
    """Run the CLI in-process; assert exit 2 and exactly one stderr line, `aegen: error: ...`; return it."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "weights_only" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aegen: error: "), err
    return lines[0]


def _saved(checkpoint, path, edit):
    """A copy of the checkpoint with ``edit`` applied to its loaded dict."""
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    edit(data)
    torch.save(data, path)
    return path


# ---------------------------------------------------------------------- flags, checked at parse time
@pytest.mark.parametrize("argv, named, says", [
    (["sample", "CKPT", "--num", "0"], "--num", "got 0"),
    (["sample", "CKPT", "--num", "-5"], "--num", "got -5"),
    (["sample", "CKPT", "--num", "300000"], "--num", "10,000"),
    (["sample", "CKPT", "--num", "abc"], "--num", "'abc'"),
    (["sample", "CKPT", "--seed", "-1"], "--seed", "got -1"),
    (["interpolate", "CKPT", "--steps", "0"], "--steps", "got 0"),
    (["interpolate", "CKPT", "--pairs", "0"], "--pairs", "got 0"),
    (["interpolate", "CKPT", "--bank", "1"], "--bank", "at least 2"),
    (["attribute", "CKPT", "--attr", "class=3", "--strengths", "abc"], "--strengths", "LOW,HIGH"),
    (["attribute", "CKPT", "--attr", "class=3", "--strengths", "-2"], "--strengths", "LOW,HIGH"),
    (["attribute", "CKPT", "--attr", "class=3", "--strengths", "0,inf"], "--strengths", "finite"),
    (["attribute", "CKPT", "--attr", "class=3", "--steps", "1"], "--steps", "got 1"),
    (["traverse", "CKPT", "--span", "-1"], "--span", "positive"),
    (["traverse", "CKPT", "--span", "nan"], "--span", "positive"),
    (["traverse", "CKPT", "--code", "-1"], "--code", "non-negative"),
    (["traverse", "CKPT", "--image", "x"], "--image", "'x'"),
    (["explore", "CKPT", "--factor", "f", "--num", "0"], "--num", "got 0"),
    (["edit", "CKPT", "--factor", "f", "--value", "1", "--num", "-1"], "--num", "got -1"),
    (["prior", "CKPT", "--out", "p.ckpt", "--steps", "0"], "--steps", "positive"),
    (["prior", "CKPT", "--out", "p.ckpt", "--components", "0"], "--components", "positive"),
    (["evaluate", "CKPT", "--num_samples", "1"], "--num_samples", "at least 2"),
    (["evaluate", "CKPT", "--num-samples", "1"], "--num_samples", "at least 2"),  # the dashed spelling works too
    (["evaluate", "CKPT", "--seeds", "0"], "--seeds", "positive"),
    (["evaluate", "CKPT", "--num_reference", "0"], "--num_reference", "at least 2"),
    (["evaluate", "CKPT", "--disentangle_points", "9"], "--disentangle_points", "at least 10"),
    (["interpolate", "CKPT", "--split", "x"], "--split", "train, val, test"),
    (["prior", "CKPT", "--out", "p.ckpt", "--kind", "flow"], "--kind", "gan, gmm"),
    (["sample", "CKPT", "--out", "samples.txt"], "--out", ".png"),
    (["sample", "CKPT", "--bogus", "1"], "--bogus", "unrecognized"),
    (["sample"], "CHECKPOINT", "required"),
    (["prior", "CKPT"], "--out", "required"),
    (["list", "--presets", "maybe"], "maybe", "unrecognized"),
    (["no_such_command"], "no_such_command", "unknown command"),
])
def test_bad_flags_are_refused_in_one_line(capsys, tmp_path, argv, named, says):
    line = _error(capsys, ["does-not-matter.ckpt" if a == "CKPT" else a for a in argv])
    assert named in line and says in line, line
    assert not list(tmp_path.iterdir())  # refused before anything was read or written


def test_every_numeric_flag_is_validated():
    """No tool command takes a bare int or float: each numeric option has a checking type (aegen.argtypes)."""
    import typing

    from aegen import argtypes

    checked = 0
    for name, function in cli.COMMANDS.items():
        for option, hint in typing.get_type_hints(function).items():
            types = typing.get_args(hint) or (hint,)
            assert not {int, float} & set(types), f"aegen {name} --{option}: unchecked {hint}"
            checked += any(getattr(argtypes, t.__name__, None) is t for t in types if isinstance(t, type))
    assert checked >= 30


def test_dashed_and_underscored_flags_parse_alike():
    dashed = cli.parse(["evaluate", "c", "--num-samples", "5", "--inception-weights", "w.pth", "--interp-samples=3"])
    assert dashed == cli.parse(["evaluate", "c", "--num_samples", "5", "--inception_weights", "w.pth",
                                "--interp_samples=3"])
    assert dashed[1]["num_samples"] == 5 and dashed[1]["interp_samples"] == 3
    assert cli.parse(["prior", "c", "--out", "p.ckpt", "--batch-size", "7", "--gan-loss", "standard"])[1] == {
        "checkpoint": Path("c"), "out": "p.ckpt", "kind": "gan", "steps": 2000, "batch_size": 7, "components": 10,
        "gan_loss": "standard", "seed": 0}
    # negative numbers and ranges are values, not options
    assert cli.parse(["attribute", "c", "--attr", "x", "--strengths", "-2,2.5"])[1]["strengths"] == (-2.0, 2.5)
    # the evaluate options are evaluate()'s, all of them but the --data.x flags' data_options
    options = set(inspect.signature(evaluate).parameters) - {"data_options"}
    assert set(cli.parse(["evaluate", "c"])[1]) == options


def test_out_whose_parent_is_a_file(capsys, checkpoint, tmp_path):
    (tmp_path / "taken").write_text("a file")
    for argv in (["sample", checkpoint, "--out", "taken/samples.png"],
                 ["interpolate", checkpoint, "--out", "taken/deeper/i.png"],
                 ["evaluate", checkpoint, "--out", "taken/eval"],
                 ["prior", checkpoint, "--out", "taken/p.ckpt"]):
        line = _error(capsys, argv)
        assert "--out" in line and "taken is a file" in line, line
    assert "is a file" in _error(capsys, ["evaluate", checkpoint, "--out", "taken"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    from aegen.viz import save_sheet

    with pytest.raises(AegenError, match="taken is a file, not a directory"):
        save_sheet(torch.zeros(4, 1, 8, 8), tmp_path / "taken" / "x.png")


# ---------------------------------------------------------------------- large sheets
def test_sample_limit_and_batches(capsys, checkpoint, tmp_path, monkeypatch):
    assert cli.parse(["sample", "c", "--num", "10000"])[1]["num"] == cli.MAX_SHEET == 10_000
    assert "10,000" in _error(capsys, ["sample", checkpoint, "--num", "10001"])
    line = _error(capsys, ["interpolate", checkpoint, "--pairs", "101", "--steps", "100"])
    assert "--pairs x --steps" in line and "10,100" in line and "10,000" in line
    assert not (checkpoint.parent.parent / "images" / "interpolate.png").exists()

    from aegen.models.base import GenerativeAE

    sizes: list[int] = []
    original = GenerativeAE.sample

    def spy(self, n, generator=None):
        sizes.append(n)
        return original(self, n, generator=generator)

    monkeypatch.setattr(GenerativeAE, "sample", spy)
    monkeypatch.setattr("aegen.commands.DECODE_BATCH", 4)
    assert main(["sample", str(checkpoint), "--num", "10", "--out", "s.png"]) == 0
    assert sizes == [4, 4, 2] and (tmp_path / "s.png").is_file()


# ---------------------------------------------------------------------- bad checkpoints
def test_missing_and_truncated_checkpoints(capsys, checkpoint, tmp_path):
    line = _error(capsys, ["sample", "nowhere.ckpt"])
    assert "nowhere.ckpt" in line and "aegen fit" in line
    assert "not a checkpoint file" in _error(capsys, ["sample", tmp_path])
    data = checkpoint.read_bytes()
    (tmp_path / "half.ckpt").write_bytes(data[: len(data) // 2])
    line = _error(capsys, ["sample", "half.ckpt"])
    assert "half.ckpt" in line and "truncated" in line
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert "empty" in _error(capsys, ["sample", "empty.ckpt"])
    assert not (tmp_path / "sample.png").exists()


class _Payload:
    """Unpickling this runs a shell command: a stand-in for a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo hi > {self.marker}",))


@pytest.mark.parametrize("kind", ["pickle", "pickle-protocol-0", "torch-zip"])
def test_malicious_pickle_is_refused_and_not_run(capsys, tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    if kind == "torch-zip":
        torch.save({"state_dict": {}, "aegen": {"model": "ae"}, "x": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload(marker), protocol=0 if kind.endswith("0") else None))
    for argv in (["sample", path], ["evaluate", path, "--out", "ev"]):
        line = _error(capsys, argv)
        assert "evil.ckpt" in line and "carries pickled code" in line and "system" in line, line
        assert "corrupt" not in line
    with pytest.raises(AegenError, match="carries pickled code"):
        read_state_dict(path, "judge weights")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.ckpt"]


def test_non_finite_checkpoint(capsys, checkpoint, tmp_path):
    def poison(data):
        key = next(k for k, v in data["state_dict"].items() if v.is_floating_point() and k.startswith("decoder"))
        data["state_dict"][key].view(-1)[0] = float("nan")
        data["poisoned"] = key

    path = _saved(checkpoint, tmp_path / "nan.ckpt", poison)
    key = torch.load(path, weights_only=True)["poisoned"]
    for argv in (["sample", path], ["evaluate", path, "--out", "ev"], ["traverse", path]):
        line = _error(capsys, argv)
        assert "nan.ckpt" in line and key in line and "diverged" in line and "earlier checkpoint" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.ckpt"]


def test_hyperparameters_that_do_not_fit_the_weights(capsys, checkpoint, tmp_path):
    path = _saved(checkpoint, tmp_path / "wide.ckpt", lambda d: d["hyper_parameters"].update(latent_dim=8))
    line = _error(capsys, ["sample", path])
    assert "wide.ckpt" in line and "model ae" in line, line
    assert re.search(r"expects \S+ of shape \(8[,)].* but the checkpoint has \(4[,)]", line), line

    def rename(data):
        state = data["state_dict"]
        state["decoder.renamed.weight"] = state.pop(next(k for k in state if k.startswith("decoder")))

    line = _error(capsys, ["sample", _saved(checkpoint, tmp_path / "renamed.ckpt", rename)])
    assert "missing: decoder." in line and "unexpected: decoder.renamed.weight" in line, line
    line = _error(capsys, ["sample", _saved(checkpoint, tmp_path / "extra.ckpt",
                                            lambda d: d["hyper_parameters"].update(no_such_option=1))])
    assert "extra.ckpt" in line and "no_such_option" in line
    assert not (tmp_path / "sample.png").exists()


def test_a_checkpoint_of_an_older_aegen_names_its_version(capsys, checkpoint, tmp_path):
    """An option removed since (e.g. latentgan's code_bank, gone in 0.2.0): the error names both versions."""
    import aegen

    def older(data):
        data["aegen"]["version"] = "0.1.0"
        data["hyper_parameters"]["code_bank"] = 0

    line = _error(capsys, ["sample", _saved(checkpoint, tmp_path / "old.ckpt", older)])
    assert f"written by aegen 0.1.0 and this is aegen {aegen.__version__}" in line and "code_bank" in line, line


# ---------------------------------------------------------------------- exit codes
def test_user_errors_exit_2_and_internal_errors_exit_1(capsys, checkpoint, monkeypatch):
    line = _error(capsys, ["traverse", checkpoint, "--image", "100000"])
    assert "--image" in line
    assert "--code 4" in _error(capsys, ["traverse", checkpoint, "--code", "4"])

    def broken(*args, **kwargs):
        raise RuntimeError("an aegen bug")

    monkeypatch.setattr("aegen.checkpoint.load", broken)
    assert main(["sample", str(checkpoint)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("aegen: error: RuntimeError: an aegen bug") and "--debug" in err
    assert len(err.splitlines()) == 1
