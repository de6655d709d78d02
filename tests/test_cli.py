import json
import os
import subprocess
import sys

import pytest
import torch

import aegen
from aegen.cli import main
from tests.conftest import FAST, fit_cli, run_aegen

TINY = ["--model.latent_dim", "4", "--model.width", "8", "--data.batch_size", "32"]


@pytest.fixture
def ae_checkpoint(capsys):
    return fit_cli(capsys, "--model", "ae", *TINY, "--trainer.max_epochs", "1")


def test_aegen_load_puts_the_weights_in_the_memory_format_they_trained_in(ae_checkpoint):
    loaded = aegen.load(ae_checkpoint)
    assert loaded.hparams.channels_last  # the default
    weights = [p for p in loaded.parameters() if p.dim() == 4 and p.shape[1] > 1]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("aegen: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_list_names_every_model_and_dataset(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("ae", "vae", "aae", "digits"):
        assert f"  {name} " in out


def test_list_presets_one_line_each(capsys):
    from aegen.presets import catalogue

    assert main(["list", "--presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    presets = catalogue()
    assert len(out) == len(presets) + sum(len(p) for p in presets.values())
    for model, entries in presets.items():
        assert f"{model}:" in out
        for name, description in entries.items():
            assert f"  {name:<14} {description}" in out


def test_unknown_names_list_the_valid_ones(capsys):
    line = _error(capsys, ["fit", "--model", "no_such_model"])
    assert "no_such_model" in line and all(name in line.split(": ")[-1].split(", ") for name in ("ae", "vae", "aae"))
    line = _error(capsys, ["fit", "--model", "ae", "--data", "nope"])
    assert "nope" in line and "digits" in line
    assert "--model" in _error(capsys, ["fit"])


@pytest.mark.parametrize("argv, expected", [
    (["--model.latent_dim", "abc"], "--model.latent_dim"),
    (["--model.latent_dim", "-3"], "latent_dim must be a positive integer"),
    (["--model.no_such_option", "1"], "no_such_option"),
    (["--data.image_size", "48"], "--data.image_size"),
])
def test_bad_hyperparameters_get_one_line(capsys, argv, expected):
    assert expected in _error(capsys, ["fit", *FAST, "--model", "ae", *argv])


def test_unknown_name_from_a_real_process_exits_nonzero_without_traceback(tmp_path):
    result = run_aegen("fit", "--model", "no_such_model", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "no_such_model" in result.stderr and " vae" in result.stderr


def test_fit_evaluate_sample_interpolate(capsys, ae_checkpoint, tmp_path):
    assert main(["evaluate", "--json", str(ae_checkpoint), "--out", "ev", "--metrics", "recon"]) == 0  # all groups: test_evaluate.py
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert printed == saved
    assert 0 < saved["recon_mse"] < 4 and saved["psnr"] > 0 and saved["split"] == "test"
    assert main(["sample", str(ae_checkpoint), "--num", "9", "--out", "s.png"]) == 0
    assert main(["interpolate", str(ae_checkpoint), "--out", "i.png", "--pairs", "3", "--steps", "5"]) == 0
    for path in ("neighbours", "spherical"):
        assert main(["interpolate", str(ae_checkpoint), "--out", f"{path}.png", "--pairs", "2", "--path", path]) == 0
    assert main(["attribute", str(ae_checkpoint), "--attr", "class=3", "--strengths", "-2,2", "--steps", "5",
                 "--num", "4", "--out", "a.png"]) == 0
    from PIL import Image

    def margins(png, rows, cols):  # beyond the grid of rows x cols tiles: the labels
        width, height = Image.open(png).size
        return width - (2 + cols * 34), height - (2 + rows * 34)

    assert Image.open("s.png").size == (2 + 3 * 34, 2 + 3 * 34)  # samples: no labels
    left, top = margins("i.png", 3, 2 + 5)  # the real pair at each row's ends, alpha labels above
    assert left > 0 and top > 0 and margins("neighbours.png", 2, 2 + 10) == (left, top)
    assert min(margins("a.png", 4, 5)) > 0  # strengths above the columns, the attribute in the corner
    assert "class=3" in _error(capsys, ["attribute", str(ae_checkpoint), "--attr", "Smiling"])


def test_runs_are_never_overwritten_and_configs_replay(capsys):
    first = fit_cli(capsys, "--model", "ae", *TINY, "--trainer.max_steps", "2")
    config = first.parent.parent / "config.yaml"
    second = fit_cli(capsys, "--config", str(config))
    assert first.parent.parent.name == "version_0" and second.parent.parent.name == "version_1"
    assert first.is_file() and second.is_file()


def test_last_checkpoint_is_the_final_epoch_even_without_a_new_best(capsys):
    # mode max: the first epoch's (highest) val/loss stays the "best", so no later epoch is a new best
    last = fit_cli(capsys, "--model", "ae", *TINY, "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "2",
                   "--trainer.limit_val_batches", "1", "--checkpoint.mode", "max")
    assert last.name == "last.ckpt" and torch.load(last, weights_only=True)["epoch"] == 2
    assert len(list(last.parent.glob("best-*.ckpt"))) == 1


def test_missing_corrupt_foreign_and_code_carrying_checkpoints_are_refused(capsys, tmp_path):
    assert "no checkpoint at" in _error(capsys, ["evaluate", "missing.ckpt"])

    (tmp_path / "corrupt.ckpt").write_bytes(b"not a checkpoint at all")
    assert "corrupt.ckpt is not readable" in _error(capsys, ["evaluate", "corrupt.ckpt"])

    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.ckpt")
    assert "not an aegen checkpoint" in _error(capsys, ["sample", "foreign.ckpt"])

    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": {}, "aegen": Payload()}, tmp_path / "evil.ckpt")
    for command in ("evaluate", "sample", "interpolate"):
        line = _error(capsys, [command, "evil.ckpt"])
        assert "refusing" in line and "system" in line
    with pytest.raises(Exception, match="refusing"):
        __import__("aegen").load(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_truncated_checkpoint_is_refused(capsys, ae_checkpoint, tmp_path):
    data = ae_checkpoint.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    assert "cut.ckpt is not readable (corrupt or truncated?)" in _error(capsys, ["evaluate", "cut.ckpt"])


def test_debug_flag_shows_the_traceback(capsys):
    with pytest.raises(Exception):
        main(["fit", "--model", "no_such_model", "--debug"])


def test_tensorboard_logger_writes_into_the_same_run(capsys):
    ckpt = fit_cli(capsys, "--model", "ae", *TINY, "--trainer.max_epochs", "1", "--trainer.logger", "tensorboard")
    run = ckpt.parent.parent
    assert list((run / "tensorboard").glob("events.out.tfevents.*")) and (run / "metrics.csv").is_file()


def test_the_tool_commands_start_without_torch_or_lightning():
    """`aegen --help`, `aegen list` (--presets too) and each tool command's --help import no torch or Lightning."""
    code = ("import sys\nfrom aegen.cli import COMMANDS, main\n"
            "for argv in [['list'], ['list', '--presets'], ['--help']] + [[c, '--help'] for c in COMMANDS]:\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'pytorch_lightning', 'torchvision') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_list_reads_the_registry_from_source_as_importing_would():
    from aegen import registry

    listed = registry.catalogue()
    assert listed["models"] == {name: registry.describe(cls) for name, cls in registry.models().items()}
    assert listed["datasets"] == {name: registry.describe(cls) for name, cls in registry.datasets().items()}
