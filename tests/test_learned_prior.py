"""The learned_prior model (a base model plus a latent-GAN sampler, trained jointly) and `aegen prior`
(aegen.prior: a sampler fitted to a trained model's codes, saved with the model)."""

import pytest
import pytorch_lightning as pl
import torch

import aegen
from aegen.errors import AegenError
from aegen.models.learned_prior import LearnedPrior
from aegen.prior import fit_prior, save_checkpoint
from aegen.samplers import GaussianSampler, GMMSampler, LatentGANSampler

TINY_GAN = {"generator_hidden": (16,), "disc_hidden": (16,)}


def _fit(model, steps, tmp_path, batch_size=32):
    trainer = pl.Trainer(max_steps=steps, max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, default_root_dir=tmp_path, log_every_n_steps=1)
    trainer.fit(model, aegen.get_data("digits")(batch_size=batch_size))
    return trainer


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _trained(name, tmp_path, **options):
    """A checkpoint of ``name`` trained 3 steps on the digits (it records its data)."""
    torch.manual_seed(0)
    model = aegen.get_model(name)(latent_dim=8, width=8, **options)
    _fit(model, 3, tmp_path).save_checkpoint(tmp_path / f"{name}.ckpt")
    return model.eval(), tmp_path / f"{name}.ckpt"


def test_learned_prior_trains_the_base_and_its_latent_gan_jointly(tmp_path):
    torch.manual_seed(0)
    model = LearnedPrior(base="ae", latent_dim=3, width=8, **TINY_GAN)
    assert isinstance(model.sampler, LatentGANSampler) and isinstance(model.base.sampler, GaussianSampler)
    base = {k: v.clone() for k, v in model.base.state_dict().items()}
    generator = {k: v.clone() for k, v in model.sampler.code_generator.state_dict().items()}
    trainer = _fit(model, 4, tmp_path)
    assert {"train/recon", "train/prior_disc", "train/prior_gen"} <= set(trainer.callback_metrics)
    assert any(not torch.equal(v, model.base.state_dict()[k]) for k, v in base.items())  # the base trains too
    assert any(not torch.equal(v, model.sampler.code_generator.state_dict()[k]) for k, v in generator.items())
    assert not torch.equal(model.sampler.code_scale_tril, torch.eye(3))  # the start was fitted to the codes
    model.eval()
    torch.testing.assert_close(model.sample(3, _gen()), model.decode(model.sampler.sample(3, _gen())), rtol=0, atol=0)


@pytest.mark.parametrize("kind, options", [("gan", {}), ("gan", {"gan_loss": "standard", "gaussian_start": False}),
                                           ("gmm", {})])
def test_aegen_prior_round_trip(kind, options, tmp_path):
    base, ckpt = _trained("ae", tmp_path)
    out = tmp_path / "prior.ckpt"
    fitted = fit_prior(ckpt, out, kind=kind, steps=3, batch_size=64, seed=0, gmm_components=3, **options)
    model = aegen.load(out)
    assert type(model) is type(base) and not model.training
    assert isinstance(model.sampler, LatentGANSampler if kind == "gan" else GMMSampler)
    if kind == "gan":
        assert (model.sampler.gan_loss, model.sampler.gaussian_start) == (("standard", False) if options else ("mmd", True))
    record = torch.load(out, weights_only=True)["aegen"]
    assert record["prior"]["kind"] == kind and record["model"] == "ae" and record["data"]["name"] == "digits"
    x = aegen.get_data("digits")().tensors("test", 4)[0]
    torch.testing.assert_close(model.reconstruct(x), base.reconstruct(x), rtol=0, atol=0)  # the model is untouched
    torch.testing.assert_close(model.sample(5, _gen()), fitted.sample(5, _gen()), rtol=0, atol=0)
    assert not torch.allclose(model.generated_codes(5, _gen()), base.generated_codes(5, _gen()))  # a new sampler
    again = type(base).load_from_checkpoint(out, map_location="cpu").eval()
    torch.testing.assert_close(again.sample(5, _gen()), model.sample(5, _gen()), rtol=0, atol=0)
    if kind == "gmm":  # the mixture is scikit-learn's fit of the training codes
        assert model.sampler.weights.sum().item() == pytest.approx(1.0, abs=1e-5)
        codes = model.encode(aegen.get_data("digits")().tensors("train")[0])
        assert (model.sampler.means - codes.mean(0)).norm(dim=1).min() < codes.std(0).norm()


def test_aegen_prior_cli_writes_the_checkpoint_it_names(tmp_path, capsys):
    from aegen.cli import main

    _, ckpt = _trained("ae", tmp_path)
    out = tmp_path / "gan.ckpt"
    assert main(["prior", str(ckpt), "--out", str(out), "--steps", "2", "--gan-loss", "standard"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"checkpoint: {out}"
    sampler = aegen.load(out).sampler
    assert isinstance(sampler, LatentGANSampler) and (sampler.gan_loss, sampler.gaussian_start) == ("standard", False)


def test_aegen_prior_replaces_the_own_prior_of_a_vae_and_the_sampler_of_a_learned_prior(tmp_path):
    vae, ckpt = _trained("vae", tmp_path)
    assert vae.sampler is None
    fit_prior(ckpt, tmp_path / "vae-gmm.ckpt", kind="gmm", gmm_components=2)
    model = aegen.load(tmp_path / "vae-gmm.ckpt")
    torch.testing.assert_close(model.sample(3, _gen()), model.decode(model.sampler.sample(3, _gen())), rtol=0, atol=0)

    _, ckpt = _trained("learned_prior", tmp_path, **TINY_GAN)
    fit_prior(ckpt, tmp_path / "lp-gmm.ckpt", kind="gmm", gmm_components=2)
    model = aegen.load(tmp_path / "lp-gmm.ckpt")
    assert isinstance(model, LearnedPrior) and isinstance(model.sampler, GMMSampler)


def _rewrite(path, edit):
    checkpoint = torch.load(path, weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, path)


def test_old_checkpoints_fail_with_the_version_that_wrote_them(tmp_path, monkeypatch):
    monkeypatch.setattr(aegen, "__version__", "0.3.0")
    model = aegen.get_model("ae")(latent_dim=3, width=8)
    path = save_checkpoint(model, tmp_path / "old-ae.ckpt", data=None, prior={})

    def old_ae(checkpoint):  # aegen 0.2.0: the Gaussian was `code_gaussian`, and no sampler record
        state = checkpoint["state_dict"]
        for key in ("mean", "scale_tril"):
            state[f"code_gaussian.{key}"] = state.pop(f"sampler.{key}")
        checkpoint["aegen"] = {"version": "0.2.0", "model": "ae", "data": None}

    _rewrite(path, old_ae)
    with pytest.raises(AegenError, match=r"unexpected: code_gaussian.mean.*written by aegen 0.2.0") as err:
        aegen.load(path)
    assert "\n" not in str(err.value)

    def old_learned_prior(checkpoint):
        checkpoint["hyper_parameters"] = {"base": "ae", "kind": "gan", "train_base": False, "latent_dim": 3}
        checkpoint["aegen"] = {"version": "0.2.0", "model": "learned_prior", "data": None}

    _rewrite(path, old_learned_prior)
    with pytest.raises(AegenError, match=r"do not build model 'learned_prior'.*written by aegen 0.2.0"):
        aegen.load(path)


def test_bad_options_raise(tmp_path):
    with pytest.raises(ValueError, match="unknown prior kind 'flow'"):
        fit_prior(tmp_path / "missing.ckpt", tmp_path / "x.ckpt", kind="flow")
    with pytest.raises(AegenError, match="no checkpoint at"):
        fit_prior(tmp_path / "missing.ckpt", tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="cannot wrap itself"):
        LearnedPrior(base="learned_prior")
    with pytest.raises(ValueError, match="unknown gan_loss"):
        LearnedPrior(latent_dim=3, width=8, gan_loss="wasserstein")
