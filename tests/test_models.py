"""Every registered model (a user's own included): trains through the CLI, overfits a batch, samples,
round-trips, runs DDP."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import aegen
from aegen.errors import AegenError
from aegen.registry import models
from aegen.viz import sheet_picture, traversal_sheet
from tests.conftest import FAST, TinyBatch, fit_cli, subprocess_env  # noqa: F401  (TinyBatch: tests import it from here)

# models that train only on factor data (requires_factors: deae, gsl) have the same tests on fonts in
# tests/test_deae.py; the DDP test below runs them too
MODELS = sorted(name for name, cls in models().items() if not getattr(cls, "requires_factors", False))
FACTOR_MODELS = sorted(name for name, cls in models().items() if getattr(cls, "requires_factors", False))
TINY = {"latent_dim": 8, "width": 8}
FONTS = ["--data", "fonts", "--data.image_size", "16", "--data.num_items", "48", "--data.batch_size", "8",
         "--data.subset", "{letter: 3, font: 2, size: 2, font_colour: 2, background_colour: 2}",
         "--model.blocks", "{letter: 2, font: 2, size: 1, font_colour: 1, background_colour: 1}"]


@pytest.mark.parametrize("name", MODELS)
def test_trains_through_the_cli(name, capsys, tmp_path):
    ckpt = fit_cli(capsys, "--model", name, "--model.latent_dim", "8", "--model.width", "8",
                   "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
                   "--trainer.limit_val_batches", "2", "--data.batch_size", "16")
    assert ckpt.is_file() and ckpt.name == "last.ckpt"
    run = ckpt.parent.parent
    assert run.parent.name == f"{name}-digits" and run.name == "version_0"
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()
    kinds = {"recon", "samples", "interp"} if aegen.get_model(name).has_encoder else {"samples", "interp"}
    assert {p.name.split("_")[0] for p in (run / "images").glob("*.png")} == kinds


# max_steps counts optimiser steps: latentgan's default runs 33 per minibatch (16 latent-GAN updates),
# which would leave its autoencoder a handful of minibatches; with one GAN update it runs 3 (autoencoder,
# discriminator, generator), so 225 steps give its autoencoder 75 minibatches, as 150 give GAIA's (2 per minibatch)
OVERFIT_OPTIONS = {"latentgan": {"gan_steps": 1}}
OVERFIT_STEPS = {"latentgan": 225, "ali": 300, "age": 300,  # ali, age: 2 optimiser steps per minibatch
                 "infogan": 300}  # without batch norm in D's trunk Q reads its codes back later (150 steps: 0.27)


@pytest.mark.parametrize("name", MODELS)
def test_overfits_a_small_batch(name, tiny_batch, trainer):
    torch.manual_seed(0)
    dm = tiny_batch(batch_size=16)
    x = dm.tensors("train")[0]
    model = aegen.get_model(name)(latent_dim=8, width=16, lr=2e-3, **OVERFIT_OPTIONS.get(name, {}))
    model.eval()
    mean_image_error = lambda: F.mse_loss(model.sample(64, torch.Generator().manual_seed(1)).mean(0), x.mean(0))
    before = F.mse_loss(model.reconstruct(x), x).item() if model.has_encoder else mean_image_error().item()
    model.train()  # Lightning keeps the modes it finds
    trainer(OVERFIT_STEPS.get(name, 150)).fit(model, dm)
    model.eval()
    if not model.has_encoder:  # no reconstructions: the samples' mean image must move to the batch's
        after = mean_image_error().item()
        assert after < 0.5 * before, (before, after)
    elif getattr(type(model), "learns_reconstruction", True):
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
def test_sample_interpolate_shapes_and_checkpoint_round_trip(name, tmp_path, tiny_batch, trainer):
    dm = tiny_batch(batch_size=8)
    model = aegen.get_model(name)(**TINY)
    fitter = trainer(3)
    fitter.fit(model, dm)
    model.eval()
    assert model.sample(5).shape == (5, 1, 32, 32)
    x = dm.tensors("test", 6)[0]
    sheet_picture(traversal_sheet(model, x if model.has_encoder else None, steps=3))  # one label per row and column
    if not model.has_encoder:
        return _check_encoderless(model, fitter, x, tmp_path)
    path = model.interpolate(x[:3], x[3:], steps=4)
    assert path.shape == (3, 4, 1, 32, 32)
    torch.testing.assert_close(path[:, 0], model.reconstruct(x[:3]))
    torch.testing.assert_close(path[:, -1], model.reconstruct(x[3:]))

    fitter.save_checkpoint(tmp_path / "m.ckpt")
    loaded = aegen.load(tmp_path / "m.ckpt")
    assert type(loaded) is type(model) and not loaded.training
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(loaded.sample(4, gen()), model.sample(4, gen()), rtol=0, atol=0)
    assert aegen.load_datamodule(tmp_path / "m.ckpt").registry_name == "digits"
    # Lightning's own loader works on the same file
    again = type(model).load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu").eval()
    torch.testing.assert_close(again.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


def _check_encoderless(model, fitter, x, tmp_path):
    """A model without an encoder: encode/reconstruct/interpolate raise one line naming it; paths between its
    generator inputs decode those inputs at their ends; a checkpoint round trip keeps G and the prior."""
    from aegen.latent import generator_interpolation

    for method in (lambda: model.encode(x), lambda: model.reconstruct(x), lambda: model.interpolate(x[:3], x[3:])):
        with pytest.raises(AegenError, match=f"^{model.registry_name} has no encoder; ") as err:
            method()
        assert "\n" not in str(err.value)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    path = generator_interpolation(model, 3, 4, generator=gen())
    codes = model.generated_codes(6, gen())
    assert path.shape == (3, 4, 1, 32, 32)
    torch.testing.assert_close(path[:, 0], model.decode(codes[:3]))
    torch.testing.assert_close(path[:, -1], model.decode(codes[3:]))
    fitter.save_checkpoint(tmp_path / "m.ckpt")
    loaded = aegen.load(tmp_path / "m.ckpt")
    assert type(loaded) is type(model) and not loaded.training
    torch.testing.assert_close(loaded.sample(4, gen()), model.sample(4, gen()), rtol=0, atol=0)
    again = type(model).load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu").eval()
    torch.testing.assert_close(again.decode(codes), model.decode(codes), rtol=0, atol=0)


def test_plain_ae_samples_from_the_gaussian_of_its_training_codes(tiny_batch, trainer):
    dm = tiny_batch(batch_size=8)
    model = aegen.get_model("ae")(**TINY)
    trainer(4, val_batches=1).fit(model, dm)  # validation refits the Gaussian
    model.eval()
    codes = model.encode(dm.tensors("train")[0]).double()
    torch.testing.assert_close(model.sampler.mean.double(), codes.mean(0), atol=1e-5, rtol=1e-4)
    fitted_cov = (model.sampler.scale_tril @ model.sampler.scale_tril.T).double()
    torch.testing.assert_close(fitted_cov, codes.T.cov(), atol=1e-4, rtol=1e-3)


def test_non_finite_loss_stops_with_a_clear_error():
    model = aegen.get_model("ae")(**TINY)
    model._watch_losses({"recon": torch.tensor(1.0)}, batch_idx=0, check=True)
    with pytest.raises(AegenError, match="loss recon became NaN/inf at epoch 0, batch 7"):
        model._watch_losses({"recon": torch.tensor(float("nan"))}, batch_idx=7, check=False)  # the CPU checks every step


def test_two_process_cpu_ddp_of_every_model(tmp_path):
    """Every model trains under 2-process CPU DDP: one `aegen fit` per model, all in one pair of
    processes (tests/ddp_fit.py), so the processes start once."""
    ddp = [*FAST, "--trainer.devices", "2", "--trainer.max_steps", "6", "--trainer.limit_val_batches", "2",
           "--model.width", "8"]
    runs = [["--model", name, *ddp, "--data.batch_size", "16"] for name in MODELS]
    runs += [["--model", name, *ddp, *FONTS] for name in FACTOR_MODELS]
    result = subprocess.run([sys.executable, "-m", "tests.ddp_fit", json.dumps(runs)], cwd=tmp_path,
                            env=subprocess_env(), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpts = [tmp_path / line.removeprefix("checkpoint: ") for line in result.stdout.splitlines()
             if line.startswith("checkpoint: ")]
    assert [c.parents[2].name for c in ckpts] == [f"{n}-digits" for n in MODELS] + [f"{n}-fonts" for n in FACTOR_MODELS]
    for ckpt, channels, size in [(c, 1, 32) for c in ckpts[:len(MODELS)]] + [(c, 3, 16) for c in ckpts[len(MODELS):]]:
        assert aegen.load(ckpt).sample(2).shape == (2, channels, size, size), ckpt
        assert [p.name for p in ckpt.parents[2].iterdir()] == ["version_0"]  # both ranks wrote to one run
