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
from aegen.errors import AegenError
from aegen.metrics import fidelity
from aegen.metrics.clustering import ClusteringScores, CodeSplit, clustering_scores
from aegen.metrics.disentanglement import DisentanglementScores
from tests.conftest import FAST, fit_cli, run_aegen

TINY = ["--model.latent_dim", "8", "--model.width", "8", "--data.batch_size", "64"]


@pytest.fixture
def judged(digits_judge):
    """Install the test run's digits judge under this test's data root."""
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
    assert main(["evaluate", "--json", str(ae_checkpoint), "--out", "ev", "--num_samples", "300", "--interp_samples", "200"]) == 0
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
    assert main(["evaluate", "--json", str(ae_checkpoint), "--out", "ev2", "--metrics", "judge,recon", "--seeds", "2",
                 "--num_samples", "100"]) == 0
    captured = capsys.readouterr()
    two = json.loads(captured.out)
    assert "aegen evaluate: sampling pass 2/2 (seed 1)" in captured.err.splitlines()
    assert two["fid_judge_seed_std"] > 0 and "recon_mse_seed_std" not in two and two["groups"] == ["judge", "recon"]
    assert two["recon_mse"] == pytest.approx(saved["recon_mse"])


def test_inception_groups_fail_in_one_line_without_weights_and_run_with_them(capsys, ae_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(fidelity.INCEPTION_ENV, raising=False)
    line = _error(capsys, ["evaluate", str(ae_checkpoint), "--metrics", "fid"])
    assert "Inception weights" in line and "--inception_weights" in line
    weights = tmp_path / fidelity.INCEPTION_FILE
    torch.save(fidelity.random_inception_state_dict(), weights)
    # Inception is slow on a CPU: a handful of samples and reference images (random weights: meaningless values)
    assert main(["evaluate", "--json", str(ae_checkpoint), "--out", "ev", "--metrics", "fid,is", "--num_samples", "4",
                 "--num_reference", "4", "--inception_weights", str(weights)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] >= 0 and out["is_mean"] >= 1 and out["feature_extractor"] == "inception-v3-compat"
    assert out["inception_weights"] == str(weights) and out["reference_split"] == "train[:4]" and "fid_judge" not in out


def test_evaluate_bad_arguments_get_one_line(capsys, ae_checkpoint):
    line = _error(capsys, ["evaluate", str(ae_checkpoint), "--metrics", "fid,nope"])
    assert "nope" in line and "disentangle" in line
    assert "--data.image_size" in _error(capsys, ["evaluate", str(ae_checkpoint), "--data.image_size", "big"])
    assert "images" in _error(capsys, ["evaluate", str(ae_checkpoint), "--metrics", "recon", "--data.image_size", "16"])


def test_evaluate_from_python_checks_its_numbers_and_defaults_to_the_runs_eval(capsys, ae_checkpoint):
    from aegen.evaluate import evaluate

    with pytest.raises(AegenError, match="--num_samples must be an integer of at least 2, got 1"):
        evaluate(ae_checkpoint, "ev", num_samples=1)
    assert main(["evaluate", str(ae_checkpoint), "--metrics", "recon"]) == 0
    assert json.loads((ae_checkpoint.parent.parent / "eval" / "metrics.json").read_text())["groups"] == ["recon"]


def test_evaluate_data_options_replace_the_checkpoints(capsys, ae_checkpoint):
    assert main(["evaluate", "--json", str(ae_checkpoint), "--out", "ev", "--metrics", "recon", "--data.test_fraction", "0.2"]) == 0
    wider = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--json", str(ae_checkpoint), "--out", "ev", "--metrics", "recon"]) == 0
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



@pytest.fixture
def cold_cache(tmp_path, monkeypatch) -> Path:
    """No judge cached anywhere this test could read: a fresh data root (conftest's $AEGEN_DATA) and a
    fresh HOME (no ~/.cache/aegen); returns the (not yet existing) judge cache folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    judges = Path(os.environ["AEGEN_DATA"]) / "judges"
    assert not judges.exists()
    return judges


def _cached_judges(judges: Path) -> list[str]:
    """Names of the judges cached whole in ``judges`` (a .pt with its .json), checking no temporary is left."""
    assert not [f.name for f in judges.iterdir() if f.suffix not in (".pt", ".json", ".lock")]
    names = sorted(f.stem for f in judges.glob("*.pt"))
    assert names == sorted(f.stem for f in judges.glob("*.json"))
    for name in names:
        assert json.loads((judges / f"{name}.json").read_text())["key"] == name
    return names


def test_every_metric_group_of_a_model_trained_on_fonts_from_a_cold_judge_cache(capsys, cold_cache, one_thread):
    # `aegen fit --model ae --data fonts` then `aegen evaluate CKPT`, shrunk: no judge is cached, so the
    # evaluation trains the letter judge (judge, interp) and one judge per factor (edit, under no_grad),
    # on a judge draw as small as the run's (the default draw, the whole 2,400-item grid here, takes longer)
    data = ["--data", "fonts", "--data.image_size", "16", "--data.num_items", "400", "--data.judge_items", "400",
            "--data.subset", "{letter: 4, font: 2}"]
    ckpt = fit_cli(capsys, "--model", "ae", *data, "--model.latent_dim", "8", "--model.width", "8",
                   "--trainer.max_steps", "12")
    assert not cold_cache.exists()
    assert main(["evaluate", "--json", str(ckpt), "--out", "ev", "--num_samples", "100", "--interp_samples", "50",
                 "--disentangle_points", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"] == "fonts"
    assert out["groups"] == ["judge", "cluster", "disentangle", "edit", "recon", "interp"], out["skipped"]
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factorvae_score", "sap",
                "edit_acc", "edit_acc_target", "edit_acc_keep", "edit_acc/letter", "recon_acc_keep", "judge_test_acc",
                "nmi", "ssim"):
        assert 0 <= out[key] <= 1, key
    assert out["edit_acc"] <= min(out["edit_acc_target"], out["edit_acc_keep"]) + 1e-9
    for key in ("fid_judge", "interp_fid_judge", "psnr"):
        assert out[key] > 0, key
    factors = ("letter", "font", "size", "font_colour", "background_colour")
    names = _cached_judges(cold_cache)
    assert len(names) == 5 and sum(n.startswith("fonts-") for n in names) == 1  # the letter's judge is the class judge
    assert {n.split("-")[0] for n in names} == {"fonts", *(f"fonts.{f}" for f in factors[1:])}


def test_judge_groups_on_digits_from_a_cold_judge_cache(capsys, trained_ae, cold_cache, one_thread):
    # the digits judge, trained by the first group that needs it (the order given); no digits_judge fixture
    assert main(["evaluate", "--json", str(trained_ae), "--out", "ev", "--metrics", "interp,judge,cluster",
                 "--num_samples", "200", "--interp_samples", "100"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert captured.err.count("aegen: training the judge of digits (once; cached at") == 1
    assert out["groups"] == ["interp", "judge", "cluster"]
    assert out["interp_fid_judge"] > 0 and out["fid_judge"] > 0 and out["is_judge_mean"] >= 1
    assert out["judge_test_acc"] > 0.8 and out["judge_path"].startswith(str(cold_cache))
    assert [n.split("-")[0] for n in _cached_judges(cold_cache)] == ["digits"]


def test_judges_train_whatever_the_callers_grad_mode(tmp_path, one_thread):
    from aegen.data.fonts import Fonts
    from aegen.metrics import controllability as ctl
    from aegen.metrics.judge import JudgeNet, get_judge, judge_path, train_judge

    settings = {"image_size": 16, "num_items": 48, "root": str(tmp_path / "judge-data"),
                "subset": {"letter": 3, "font": 2, "size": 2, "font_colour": 2, "background_colour": 2}}
    with torch.inference_mode():  # the data set up in inference mode too: its tensors cannot be saved for backward
        dm = Fonts(**settings)
        dm.setup("fit")
        in_inference = train_judge(dm, max_steps=3)
        assert torch.is_inference_mode_enabled()
    # cache misses under no_grad (as in edit_scores): the class judge and a factor's are trained and cached
    assert not judge_path(dm).exists()
    with torch.no_grad():
        in_no_grad = get_judge(dm, max_steps=3)
        judges = ctl.factor_judges(dm, ["font"], max_steps=3)
        assert not torch.is_grad_enabled()
    assert in_no_grad.meta["path"] == str(judge_path(dm, max_steps=3)) and "path" in judges["font"].meta  # trained, not loaded
    assert len(_cached_judges(judge_path(dm).parent)) == 2

    reference = train_judge(Fonts(**settings), max_steps=3).state_dict()
    torch.manual_seed(0)
    assert not torch.equal(JudgeNet(3, 3, 16).head.weight, reference["head.weight"])  # training moved the weights
    for net in (in_inference, in_no_grad):
        assert not net.training and net.meta["train"]["steps"] == 3
        assert all(torch.equal(v, reference[k]) for k, v in net.state_dict().items())
    again = ctl.factor_judges(dm, ["font"], max_steps=3)
    assert "path" not in again["font"].meta  # loaded from the cache
    assert torch.equal(again["font"].head.weight, judges["font"].head.weight)


CONCURRENT_JUDGE = """
import contextlib, sys, time
from pathlib import Path
import torch
import aegen.metrics.judge as J
from aegen.data.fonts import Fonts

torch.set_num_threads(1)

dm = Fonts(image_size=16, num_items=48, root=sys.argv[1], subset={"letter": 3, "font": 2})
dm.setup("fit")
lock, train = J.judge_lock, J.train_judge

@contextlib.contextmanager
def spy_lock(path):
    print("judge-test: missed the cache", flush=True)
    with lock(path):
        yield

def slow_train(*args, **kwargs):
    time.sleep(1.5)  # hold the lock long enough that the other process surely misses the cache too
    return train(*args, **kwargs)

J.judge_lock, J.train_judge = spy_lock, slow_train
ready = Path(sys.argv[1]) / f"ready{sys.argv[2]}"
ready.touch()
while len(list(Path(sys.argv[1]).glob("ready*"))) < 2:  # start both at once
    time.sleep(0.01)
net = J.get_judge(dm, max_steps=5)
print("judge-test:", "trained" if "path" in net.meta else "loaded", flush=True)
"""


def test_concurrent_evaluations_train_one_judge_and_both_get_it(tmp_path):
    import subprocess
    import sys

    from aegen.data.fonts import Fonts
    from aegen.metrics.judge import judge_path, load_judge

    root = tmp_path / "shared-data"
    root.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_JUDGE, str(root), str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    said = [[ln.removeprefix("judge-test: ") for ln in out.splitlines() if ln.startswith("judge-test: ")]
            for out, _ in results]
    assert all(lines[0] == "missed the cache" for lines in said)  # both missed the cache ...
    assert sorted(lines[-1] for lines in said) == ["loaded", "trained"]  # ... and only one trained
    path = judge_path(Fonts(image_size=16, num_items=48, root=str(root), subset={"letter": 3, "font": 2}), max_steps=5)
    assert _cached_judges(path.parent) == [path.stem]
    assert load_judge(path).meta["train"]["steps"] == 5


def test_a_judge_trained_otherwise_or_by_an_older_aegen_is_not_read_as_the_default(tmp_path, monkeypatch, one_thread):
    from aegen.data.fonts import Fonts
    from aegen.metrics import judge as J

    dm = Fonts(image_size=16, num_items=48, root=str(tmp_path), subset={"letter": 3, "font": 2})
    short = J.get_judge(dm, max_steps=2)
    assert short.meta["train"]["steps"] == 2 and short.meta["key"] == J.judge_path(dm, max_steps=2).stem
    assert J.judge_path(dm, max_steps=2) != J.judge_path(dm) and not J.judge_path(dm).exists()
    fonts_defaults = {**J.JUDGE_TRAINING, "max_steps": 6000}  # fonts' judges train longer (Fonts.judge_training)
    assert J.training_settings(dm) == fonts_defaults
    assert J.judge_path(dm, **fonts_defaults) == J.judge_path(dm)  # the defaults spelt out: the same judge
    assert J.judge_path(dm, **J.JUDGE_TRAINING) != J.judge_path(dm)
    default = J.get_judge(dm)  # trained anew, not the 2-step one
    assert "path" in default.meta and default.meta["train"]["steps"] > 2
    assert default.meta["train"]["max_steps"] == 6000 and default.meta["judge_version"] == J.JUDGE_VERSION
    assert "path" not in J.get_judge(dm).meta  # now cached
    monkeypatch.setattr(J, "JUDGE_VERSION", J.JUDGE_VERSION + 1)
    assert not J.judge_path(dm).exists()  # a judge format change retrains
    with pytest.raises(AegenError, match="unknown judge training option.*steps.*known: epochs, max_steps"):
        J.get_judge(dm, steps=3)


def test_judge_cache_key_ignores_loader_settings_but_not_data_settings(tmp_path):
    from aegen.data.fonts import Fonts
    from aegen.metrics.judge import dataset_key

    base = dataset_key(Fonts(root=str(tmp_path)))
    assert dataset_key(Fonts(root=str(tmp_path / "other"), batch_size=7, groups=True)) == base
    assert dataset_key(Fonts(root=str(tmp_path), subset={"letter": 10})) != base


def test_fonts_judges_do_not_change_with_the_runs_item_count_or_bias_and_never_train_on_its_test_items(tmp_path):
    from aegen.data.fonts import Fonts
    from aegen.metrics.controllability import FactorView
    from aegen.metrics.judge import judge_data, judge_path

    def fonts(**options):
        return Fonts(root=str(tmp_path), **options)

    default = judge_path(fonts())
    biased = fonts(num_items=12000, bias=["letter", "background_colour"])
    assert judge_path(fonts(num_items=500)) == judge_path(biased) == default
    assert judge_path(FactorView(judge_data(fonts(num_items=500)), "font")) == judge_path(FactorView(judge_data(biased), "font"))
    assert judge_path(fonts(judge_items=30000)) != default and judge_path(fonts(image_size=16)) != default
    large = fonts(num_items=30000)
    assert judge_data(large) is large and judge_path(large) != default  # a larger draw is its own judge data

    # the judge data's training split holds none of the run's validation or test items
    small = {"image_size": 16, "subset": {"letter": 4, "font": 3, "font_colour": 2, "background_colour": 2}}  # 144 items
    for run in (fonts(num_items=60, judge_items=120, **small),
                fonts(num_items=120, judge_items=60, bias=["letter", "font"], **small)):
        judged = judge_data(run)
        assert judged.bias is None and judged.num_items == 120
        held_out = torch.cat([run.split_factors()[name] for name in ("val", "test")])
        trained = judged.split_factors()["train"]
        assert len(trained) == 96 and not (trained[:, None] == held_out[None]).all(-1).any()


def test_codes_tsne_of_a_learned_prior_is_in_the_default_set_and_linked_from_the_report(capsys, tmp_path):
    from PIL import Image

    from aegen.evaluate import Evaluation, _model_and_data, _plan

    ckpt = fit_cli(capsys, "--model", "codegen_aae", *TINY, "--model.generator_hidden", "[16]",
                   "--model.code_disc_hidden", "[16]", "--model.disc_fc", "16", "--trainer.max_steps", "2")
    runs, skipped = _plan(Evaluation(*_model_and_data(ckpt, None, None, "cpu"), out=tmp_path), None)
    assert "codes" in runs and "codes" not in skipped
    assert main(["evaluate", "--json", str(ckpt), "--out", "ev", "--metrics", "recon,codes", "--tsne_points", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["groups"] == ["recon", "codes"] and "codes" not in out["skipped"]
    with Image.open(tmp_path / "ev" / "codes_tsne.png") as image:
        image.verify()
        assert image.format == "PNG" and min(image.size) >= 100
    assert "(codes_tsne.png)" in (tmp_path / "ev" / "report.md").read_text()


def test_codes_tsne_is_off_by_default_for_a_fitted_gaussian_and_skipped_without_generated_codes(
        capsys, trained_ae, tmp_path, monkeypatch):
    import aegen.checkpoint
    from aegen.evaluate import Evaluation, _model_and_data, _plan

    runs, skipped = _plan(Evaluation(*_model_and_data(trained_ae, None, None, "cpu"), out=tmp_path), None)
    assert "codes" not in runs and "--metrics codes" in skipped["codes"]
    # asked for, a plain AE's Gaussian codes are drawn
    assert main(["evaluate", "--json", str(trained_ae), "--out", "ev", "--metrics", "codes", "--tsne_points", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == ["codes"]
    assert (tmp_path / "ev" / "codes_tsne.png").is_file()

    def without_sampler(*args, **kwargs):  # neither a prior nor a sampler: no generated codes
        model = load(*args, **kwargs)
        model.sampler = None
        return model

    load = aegen.checkpoint.load
    monkeypatch.setattr(aegen.checkpoint, "load", without_sampler)
    assert main(["evaluate", "--json", str(trained_ae), "--out", "ev2", "--metrics", "recon,codes", "--tsne_points", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["groups"] == ["recon"] and "no generated codes" in out["skipped"]["codes"]
    assert not (tmp_path / "ev2" / "codes_tsne.png").exists()
    assert "`codes`: " in (tmp_path / "ev2" / "report.md").read_text()


def test_evaluate_prints_progress_on_stderr_and_ends_with_where_it_wrote(capsys, ae_checkpoint, tmp_path):
    from aegen.checkpoint import load_datamodule
    from aegen.metrics.splits import split_size

    assert main(["evaluate", str(ae_checkpoint), "--metrics", "recon", "--out", "ev"]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert "aegen evaluate: recon ..." in err and any(ln.startswith("aegen evaluate: recon done (") for ln in err)
    assert "aegen: training the judge" not in captured.err  # the judge comes from the cache
    out = captured.out.strip().splitlines()
    assert out[-1] == f"wrote {Path('ev') / 'metrics.json'} and {Path('ev') / 'report.md'}"
    assert "{" not in captured.out and any(ln.split()[0] == "recon_mse" for ln in out[:-1])
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert "recon_mse" in saved and "recon_judge_acc" in saved and "fid_judge" not in saved  # only the asked group
    # num_samples by default: the whole training split of digits, which is smaller than 10,000
    datamodule = load_datamodule(ae_checkpoint, device_cache=False)
    datamodule.setup("test")
    assert saved["num_samples"] == split_size(datamodule, "train") < 10_000
    assert main(["evaluate", str(ae_checkpoint), "--metrics", "recon", "--out", "ev", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == saved
