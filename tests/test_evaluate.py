import contextlib
import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from aegen.cli import main
from aegen.metrics import fidelity
from aegen.metrics.clustering import ClusteringScores, CodeSplit, clustering_scores
from aegen.metrics.disentanglement import DisentanglementScores
from tests.conftest import FAST, fit_cli, run_aegen

TINY = ["--model.latent_dim", "8", "--model.width", "8", "--data.batch_size", "64"]


@pytest.fixture
def judged(digits_judge):
    """Install the session's digits judge under this test's data root."""
    shutil.copytree(digits_judge.parent, Path(os.environ["AEGEN_DATA"]) / "judges")


@pytest.fixture(scope="module")
def trained_ae(tmp_path_factory):
    """A tiny AE trained 1 epoch on digits, once for this module."""
    root = tmp_path_factory.mktemp("ae-run")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("AEGEN_DATA", str(root / "data"))
        assert main(["fit", *FAST, "--model", "ae", *TINY, "--trainer.max_epochs", "1",
                     "--trainer.default_root_dir", str(root)]) == 0
    return Path(out.getvalue().strip().splitlines()[-1].removeprefix("checkpoint: "))


@pytest.fixture
def ae_checkpoint(trained_ae, judged):
    return trained_ae


def _error(capsys, argv):
    assert main(argv) != 0
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("aegen: error:")]
    assert len(lines) == 1
    return lines[0]


def test_evaluate_writes_every_default_metric_and_a_report(capsys, ae_checkpoint, tmp_path):
    assert main(["evaluate", str(ae_checkpoint), "--out", "ev", "--num-samples", "300", "--interp-samples", "200"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert printed == saved
    for key in ("cluster_error_hungarian", "cluster_error_majority", "cluster_error_aae", "nmi", "ari", "probe_acc",
                "judge_test_acc", "recon_mse", "ssim"):
        assert 0 <= saved[key] <= 1, key
    assert saved["cluster_error_majority"] <= saved["cluster_error_hungarian"]
    assert saved["probe_acc"] > 0.5  # even a barely trained AE's codes separate digits linearly
    # the floor on the same images: k-means on digits' pixels errs on about a fifth (random: ~0.9)
    assert 0.05 < saved["kmeans_pixels_cluster_error_hungarian"] < 0.3 and "kmeans_pixels_probe_acc" not in saved
    assert 0 <= saved["kmeans_pixels_cluster_error_majority"] <= saved["kmeans_pixels_cluster_error_hungarian"]
    for key in ("fid_judge", "kid_judge_std", "interp_fid_judge", "psnr"):
        assert saved[key] > 0, key
    assert saved["is_judge_mean"] >= 1 and saved["kid_judge_mean"] > -1
    assert saved["num_samples"] == 300 and saved["reference_split"] == "train" and saved["feature_extractor"] == "aegen-judge"
    assert saved["cluster_source"] == "kmeans" and saved["checkpoint"] == str(ae_checkpoint.resolve())
    assert {"disentangle", "cond_acc_judge", "fid", "pr"} <= set(saved["skipped"]) and "fid" not in saved
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "| `fid_judge` |" in report and "disentangle" in report
    for sheet in ("samples", "reconstructions", "interpolations", "traversals", "codes_pca"):
        assert f"({sheet}.png)" in report and (tmp_path / "ev" / f"{sheet}.png").is_file()

    # more seeds: a spread over seeds for the sampling-based numbers only
    assert main(["evaluate", str(ae_checkpoint), "--out", "ev2", "--metrics", "judge,recon", "--seeds", "2",
                 "--num-samples", "100"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert two["fid_judge_seed_std"] > 0 and "recon_mse_seed_std" not in two and two["groups"] == ["judge", "recon"]
    assert two["recon_mse"] == pytest.approx(saved["recon_mse"])


def test_inception_groups_fail_in_one_line_without_weights_and_run_with_them(capsys, ae_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(fidelity.INCEPTION_ENV, raising=False)
    line = _error(capsys, ["evaluate", str(ae_checkpoint), "--metrics", "fid"])
    assert "Inception weights" in line and "--inception-weights" in line
    weights = tmp_path / fidelity.INCEPTION_FILE
    torch.save(fidelity.random_inception_state_dict(), weights)
    # Inception is slow on a CPU: a handful of samples and reference images (random weights: meaningless values)
    assert main(["evaluate", str(ae_checkpoint), "--out", "ev", "--metrics", "fid,is", "--num-samples", "4",
                 "--num-reference", "4", "--inception-weights", str(weights)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] >= 0 and out["is_mean"] >= 1 and out["feature_extractor"] == "inception-v3-compat"
    assert out["inception_weights"] == str(weights) and out["reference_split"] == "train[:4]" and "fid_judge" not in out


def test_evaluate_bad_arguments_get_one_line(capsys, ae_checkpoint):
    line = _error(capsys, ["evaluate", str(ae_checkpoint), "--metrics", "fid,nope"])
    assert "nope" in line and "disentangle" in line
    assert "--data.image_size" in _error(capsys, ["evaluate", str(ae_checkpoint), "--data.image_size", "big"])
    assert "images" in _error(capsys, ["evaluate", str(ae_checkpoint), "--metrics", "recon", "--data.image_size", "16"])


def test_evaluate_data_options_replace_the_checkpoints(capsys, ae_checkpoint):
    assert main(["evaluate", str(ae_checkpoint), "--out", "ev", "--metrics", "recon", "--data.test_fraction", "0.2"]) == 0
    wider = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(ae_checkpoint), "--out", "ev", "--metrics", "recon"]) == 0
    assert wider["recon_mse"] != json.loads(capsys.readouterr().out)["recon_mse"]


def test_metric_states_merge_like_one_pass():
    g = torch.Generator().manual_seed(0)
    codes, labels = torch.randn(90, 4, generator=g), torch.arange(90) % 3
    codes[:, 0] += 10 * labels
    metric = ClusteringScores(num_clusters=3)
    for part in range(3):
        metric.update(codes[part::3], labels[part::3])
    merged = metric.compute()
    order = torch.cat([torch.arange(90)[p::3] for p in range(3)])
    whole = clustering_scores(CodeSplit(codes[order], None, labels[order]), num_clusters=3)
    assert merged == {k: whole[k] for k in merged} and merged["cluster_error_hungarian"] == 0

    factors = torch.stack([torch.arange(300) % 3, torch.arange(300) % 4], 1)
    scores = DisentanglementScores(num_train=200, num_test=100)
    scores.update(factors.float() + 0.01 * torch.randn(300, 2, generator=g), factors)
    assert scores.compute()["mig"] > 0.9


CALLBACKS = ["--trainer.callbacks+=SampleQuality", "--trainer.callbacks.num_samples=64",
             "--trainer.callbacks+=ClusteringMetrics", "--trainer.callbacks+=ReconstructionMetrics",
             "--trainer.callbacks+=DisentanglementMetrics"]


def _logged(run_dir: Path) -> dict[str, str]:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return {k: v for row in rows for k, v in row.items() if v}


def test_callbacks_log_metrics_under_two_process_ddp(judged, tmp_path):
    result = run_aegen("fit", "--model", "ae", *FAST, *TINY, "--trainer.devices", "2", "--trainer.max_epochs", "1",
                       "--trainer.limit_train_batches", "2", *CALLBACKS, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    logged = _logged(next((tmp_path / "runs").glob("*/version_0")))
    for key in ("fid_judge", "kid_judge_mean", "is_judge_mean", "psnr", "ssim"):
        assert float(logged[f"val/{key}"]) > 0, key
    for key in ("cluster_error_hungarian", "cluster_error_majority", "nmi", "ari"):
        assert -0.5 <= float(logged[f"val/{key}"]) <= 1, key
    assert "val/mig" not in logged  # digits has no factors: DisentanglementMetrics warns and skips


def test_disentanglement_of_a_model_trained_on_fonts(capsys, tmp_path):
    data = ["--data", "fonts", "--data.num_items", "400", "--data.subset", "{letter: 4, font: 2}"]
    ckpt = fit_cli(capsys, "--model", "ae", *data, "--model.latent_dim", "8", "--model.width", "8",
                   "--trainer.max_epochs", "1")
    assert main(["evaluate", str(ckpt), "--out", "ev", "--metrics", "disentangle", "--disentangle-points", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factorvae_score", "sap"):
        assert 0 <= out[key] <= 1, key
    assert out["data"] == "fonts" and out["groups"] == ["disentangle"]


def test_judge_cache_key_ignores_loader_settings_but_not_data_settings(tmp_path):
    from aegen.data.fonts import Fonts
    from aegen.metrics.judge import dataset_key

    base = dataset_key(Fonts(root=str(tmp_path)))
    assert dataset_key(Fonts(root=str(tmp_path / "other"), batch_size=7, groups=True)) == base
    assert dataset_key(Fonts(root=str(tmp_path), subset={"letter": 10})) != base
