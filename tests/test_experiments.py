"""experiments/harness.py: mean ± std over seeds, the markdown table and the results writer (no training)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

HARNESS = Path(__file__).resolve().parents[1] / "experiments" / "harness.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("experiments_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mean_std_is_numpy_with_ddof_1(harness):
    runs = [{"fid": 1.0, "acc": 0.5, "name": "a", "ok": True}, {"fid": 2.0, "acc": 0.7, "name": "b", "ok": False},
            {"fid": 4.0, "acc": 0.6, "name": "c", "ok": True}]
    stats = harness.mean_std(runs)
    assert set(stats) == {"fid", "acc"}  # strings and bools are not averaged
    assert stats["fid"] == (pytest.approx(7 / 3), pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1)))
    assert harness.mean_std(runs, ["fid"], ddof=0)["fid"][1] == pytest.approx(np.std([1.0, 2.0, 4.0]))
    assert harness.mean_std(runs[:1], ["fid"]) == {"fid": (1.0, 0.0)}  # one seed: std 0, not nan


def test_over_seeds_runs_each_seed_in_order(harness):
    seen = []
    runs, stats = harness.over_seeds(lambda s: {"x": float(s)}, range(3), after=lambda s, r: seen.append((s, r["x"])))
    assert seen == [(0, 0.0), (1, 1.0), (2, 2.0)] and [r["x"] for r in runs] == [0.0, 1.0, 2.0]
    assert stats["x"] == (1.0, 1.0)
    assert harness.pm(*stats["x"], ".2f") == "1.00 ± 1.00"


def test_write_results_json_and_markdown(harness, tmp_path):
    rows = [{"model": "ae", "fid": "1.00 ± 0.10"}, {"model": "gaia", "fid": "2.00 ± 0.20"}]
    table = harness.write_results(rows, tmp_path / "sub" / "r.json", harness.md_beside(tmp_path / "sub" / "r.json"),
                                  data={"results": {"ae": 1.0}})
    assert table == "| model | fid |\n|---|---|\n| ae | 1.00 ± 0.10 |\n| gaia | 2.00 ± 0.20 |"
    assert json.loads((tmp_path / "sub" / "r.json").read_text()) == {"results": {"ae": 1.0}}
    assert (tmp_path / "sub" / "r.md").read_text() == table + "\n"
    assert harness.write_results(rows, tmp_path / "rows.json") == table  # no md_path: JSON of the rows only
    assert json.loads((tmp_path / "rows.json").read_text()) == rows and not (tmp_path / "rows.md").exists()
    assert harness.markdown_table([], ["a", "b"]) == "| a | b |\n|---|---|"
    assert harness.markdown_table([{"seed": 0, "error": 0.123456, "s": 28.16}]).endswith("| 0 | 0.1235 | 28.16 |")
    assert harness.md_beside("x.md") == Path("x.md.md")


def test_flags_and_checkpoint_line(harness):
    assert harness.model_flags({"gan_steps": 16, "preset": "mnist", "blocks": {"a": 2}}) == [
        "--model.gan_steps=16", "--model.preset=mnist", '--model.blocks={"a": 2}']
    assert harness.last_checkpoint("run: r\ncheckpoint: /a/last.ckpt\n") == Path("/a/last.ckpt")
    with pytest.raises(RuntimeError, match="checkpoint"):
        harness.last_checkpoint("Traceback ...")
