"""Every registered model: trains through the CLI, overfits a batch, samples, round-trips, runs DDP."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

import aegen
from aegen.data.base import AEDataModule
from aegen.errors import AegenError
from aegen.registry import models
from tests.conftest import fit_cli, run_aegen

# models that train only on factor data (requires_factors: deae, gsl) have the same tests on fonts in tests/test_deae.py
MODELS = sorted(name for name, cls in models().items() if not getattr(cls, "requires_factors", False))
TINY = {"latent_dim": 8, "width": 8}


class TinyBatch(AEDataModule):
    """The same 16 digits for train, val and test: for overfitting."""

    channels = 1
    registry_name = "digits"

    def load_splits(self):
        images, labels = aegen.get_data("digits")().split("train")
        images, labels = images[:16], labels[:16]
        return {name: (images, labels) for name in ("train", "val", "test")}


def _trainer(tmp_path, steps, val_batches=0):
    return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=val_batches,
                      default_root_dir=tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_trains_through_the_cli(name, capsys, tmp_path):
    ckpt = fit_cli(capsys, "--model", name, "--model.latent_dim", "8", "--model.width", "8",
                   "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
                   "--trainer.limit_val_batches", "2", "--data.batch_size", "16")
    assert ckpt.is_file() and ckpt.name == "last.ckpt"
    run = ckpt.parent.parent
    assert run.parent.name == f"{name}-digits" and run.name == "version_0"
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()
    assert {p.name.split("_")[0] for p in (run / "images").glob("*.png")} == {"recon", "samples", "interp"}


# max_steps counts optimiser steps: latentgan's default runs 33 per minibatch (16 latent-GAN updates),
# which would leave its autoencoder a handful of minibatches
OVERFIT_OPTIONS = {"latentgan": {"gan_steps": 1}}


@pytest.mark.parametrize("name", MODELS)
def test_overfits_a_small_batch(name, tmp_path):
    torch.manual_seed(0)
    dm = TinyBatch(batch_size=16)
    x = dm.tensors("train")[0]
    model = aegen.get_model(name)(latent_dim=8, width=16, lr=2e-3, **OVERFIT_OPTIONS.get(name, {}))
    model.eval()
    before = F.mse_loss(model.reconstruct(x), x).item()
    model.train()  # Lightning keeps the modes it finds
    _trainer(tmp_path, 150).fit(model, dm)
    model.eval()
    if getattr(type(model), "learns_reconstruction", True):
        after = F.mse_loss(model.reconstruct(x), x).item()
        assert after < 0.5 * before, (before, after)
    else:  # InfoGAN regenerates from inferred codes, which it does not train for: Q must read back its own codes
        categories = torch.arange(10).repeat_interleave(16)
        with torch.no_grad():
            read = model.cluster_probs(model.sample(len(categories), category=categories)).argmax(1)
        assert (read == categories).float().mean() > 0.5


def test_default_encode_decode_use_the_encoder_and_decoder():
    from aegen.models.base import GenerativeAE

    model = aegen.get_model("ae")(**TINY).eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.equal(model.encode(x), model.encoder(x))
    with pytest.raises(NotImplementedError, match="no encoder submodule: it must override encode"):
        GenerativeAE(**TINY).encode(x)


@pytest.mark.parametrize("name", MODELS)
def test_sample_interpolate_shapes_and_checkpoint_round_trip(name, tmp_path):
    dm = TinyBatch(batch_size=8)
    model = aegen.get_model(name)(**TINY)
    trainer = _trainer(tmp_path, 3)
    trainer.fit(model, dm)
    model.eval()
    assert model.sample(5).shape == (5, 1, 32, 32)
    x = dm.tensors("test", 6)[0]
    path = model.interpolate(x[:3], x[3:], steps=4)
    assert path.shape == (3, 4, 1, 32, 32)
    torch.testing.assert_close(path[:, 0], model.reconstruct(x[:3]))
    torch.testing.assert_close(path[:, -1], model.reconstruct(x[3:]))

    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = aegen.load(tmp_path / "m.ckpt")
    assert type(loaded) is type(model) and not loaded.training
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(loaded.sample(4, gen()), model.sample(4, gen()), rtol=0, atol=0)
    assert aegen.load_datamodule(tmp_path / "m.ckpt").registry_name == "digits"
    # Lightning's own loader works on the same file
    again = type(model).load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu").eval()
    torch.testing.assert_close(again.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


def test_plain_ae_samples_from_the_gaussian_of_its_training_codes(tmp_path):
    dm = TinyBatch(batch_size=8)
    model = aegen.get_model("ae")(**TINY)
    trainer = _trainer(tmp_path, 4, val_batches=1)  # validation refits the Gaussian
    trainer.fit(model, dm)
    model.eval()
    codes = model.encode(dm.tensors("train")[0]).double()
    torch.testing.assert_close(model.code_gaussian.mean.double(), codes.mean(0), atol=1e-5, rtol=1e-4)
    fitted_cov = (model.code_gaussian.scale_tril @ model.code_gaussian.scale_tril.T).double()
    torch.testing.assert_close(fitted_cov, codes.T.cov(), atol=1e-4, rtol=1e-3)


def test_non_finite_loss_stops_with_a_clear_error():
    model = aegen.get_model("ae")(**TINY)
    model._watch_losses({"recon": torch.tensor(1.0)}, batch_idx=0, check=True)
    with pytest.raises(AegenError, match="loss recon became NaN/inf at epoch 0, batch 7"):
        model._watch_losses({"recon": torch.tensor(float("nan"))}, batch_idx=7, check=False)  # the CPU checks every step


@pytest.mark.parametrize("name", MODELS)
def test_two_process_cpu_ddp(name, tmp_path):
    result = run_aegen("fit", "--model", name, "--trainer.accelerator", "cpu", "--trainer.devices", "2",
                       "--trainer.max_steps", "6", "--trainer.limit_val_batches", "2", "--model.width", "8",
                       "--data.batch_size", "16", "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = tmp_path / result.stdout.strip().splitlines()[-1].removeprefix("checkpoint: ")
    assert ckpt.is_file()
    assert aegen.load(ckpt).sample(2).shape == (2, 1, 32, 32)
    assert len(list((tmp_path / "runs").glob("*/version_*"))) == 1  # both ranks wrote to one run
