"""codegen_aae (learned-prior AAE), vamp and learned priors for any model (`aegen prior`)."""

import math

import pytest
import pytorch_lightning as pl
import torch

import aegen
from aegen.cli import main
from aegen.data.base import AEDataModule
from aegen.errors import AegenError
from aegen.models.learned_prior import LearnedPrior
from aegen.models.vamp import gaussian_log_density

TINY = {"latent_dim": 8, "width": 8, "generator_hidden": (32,), "code_disc_hidden": (32,), "disc_fc": 32}


class Tiny(AEDataModule):
    """32 digits; labels (B,), or (B, 2) factor-like columns [class, class % 3] with ``factors``."""

    channels = 1
    num_classes = 10
    registry_name = "digits"

    def __init__(self, factors: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factors = factors

    def class_labels(self, labels):
        return labels[:, 0] if labels.dim() == 2 else labels

    def load_splits(self):
        images, labels = aegen.get_data("digits")().split("train")
        images, labels = images[:32], labels[:32]
        if self.factors:
            labels = torch.stack([labels, labels % 3], 1)
        return {name: (images, labels) for name in ("train", "val", "test")}


def _fit(model, dm, steps, tmp_path):
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         default_root_dir=tmp_path)
    trainer.fit(model, dm)
    return trainer


def _snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(before, module):
    return {n for n, p in module.named_parameters() if not torch.equal(before[n], p)}


@pytest.mark.parametrize("decoder_in_both_phases, code_follow_weight", [(True, 0.0), (False, 0.0), (False, 1.0)])
def test_each_phase_updates_exactly_its_networks(decoder_in_both_phases, code_follow_weight, tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(num_classes=10, decoder_in_both_phases=decoder_in_both_phases,
                                           code_follow_weight=code_follow_weight, **TINY)
    seen = {}

    def probe(x, y):
        s, target = model.condition(y)
        before = _snapshot(model)
        model.aae_phase(x, s)
        seen["aae"] = _changed(before, model)
        before = _snapshot(model)
        model.prior_improvement_phase(x, s, target)
        seen["prior"] = _changed(before, model)
        return {}

    model.training_phases = probe
    _fit(model, Tiny(batch_size=16), 4, tmp_path)  # one batch: 2 (3 when CG follows the codes) + 2 optimiser steps

    def nets(names):
        return {n.split(".")[0] for n in names}

    # the paper keeps CG fixed in the AAE phase; code_follow_weight moves it towards Enc(x) there
    assert nets(seen["aae"]) == {"encoder", "decoder", "code_critic"} | ({"code_generator"} if code_follow_weight else set())
    expected = {"image_critic", "code_generator"} | ({"decoder"} if decoder_in_both_phases else set())
    assert nets(seen["prior"]) == expected
    # Q's head learns in both steps of the prior phase; the trunk only as D_I
    assert any(n.startswith("image_critic.q.") for n in seen["prior"])


@pytest.mark.parametrize("options", [
    {"setting": "unsupervised"},
    {"setting": "supervised"},
    {"setting": "conditional", "condition_dim": 1},
    {"setting": "unsupervised", "learned_prior": False},
    {"setting": "supervised", "learned_prior": False, "noise_dim": 6, "latent_dim": 16},
    {"setting": "unsupervised", "perceptual_loss": False},
    {"setting": "unsupervised", "decoder_in_both_phases": False},
    {"setting": "unsupervised", "learned_prior": False, "perceptual_loss": False, "decoder_in_both_phases": False},
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_settings_and_ablations_train(options, tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(num_classes=10, **{**TINY, **options})
    logged = []
    original = model.training_phases
    model.training_phases = lambda x, y: logged.append(original(x, y)) or logged[-1]
    _fit(model, Tiny(batch_size=16), 16, tmp_path)
    assert logged and all(torch.isfinite(v).all() for losses in logged for v in losses.values())
    model.eval()
    assert model.sample(4, torch.Generator().manual_seed(0)).shape == (4, 1, 32, 32)
    if not options.get("learned_prior", True) and options["setting"] == "unsupervised":
        assert model.code_generator is None and set(logged[-1]) >= {"recon", "code_disc"}


def test_supervised_uses_the_class_of_factor_labels_and_samples_conditionally(tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(num_classes=10, setting="supervised", **TINY)
    dm = Tiny(batch_size=16, factors=True)
    _fit(model, dm, 8, tmp_path)  # labels (B, 2): the datamodule's class_labels gives column 0
    y = dm.tensors("train", 4)[1]
    assert torch.equal(model.class_index(y), y[:, 0])
    model.eval()
    images = model.sample_conditional(6, torch.tensor([0, 1, 2, 3, 4, 5]))
    assert images.shape == (6, 1, 32, 32)
    assert aegen.get_model("codegen_aae")(**TINY).sample_conditional(2, 1) is None  # unsupervised: no classes
    picked = aegen.get_model("codegen_aae")(num_classes=10, setting="supervised", label_column=1, num_labels=3, **TINY)
    assert torch.equal(picked.class_index(y), y[:, 1])


def test_conditional_factor_labels_are_one_hot_per_column_and_sampled_from_the_bank(tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(setting="conditional", condition_sizes=[10, 3], condition_bank=8, **TINY)
    assert model.cond_dim == 13
    with pytest.raises(AegenError, match="no training conditions"):
        model.sample(2)
    _fit(model, Tiny(batch_size=16, factors=True), 8, tmp_path)
    s, target = model.condition(torch.tensor([[7, 1]]))
    assert s.tolist() == [[0.0] * 7 + [1.0] + [0.0] * 2 + [0.0, 1.0, 0.0]] and target.tolist() == [[7, 1]]
    assert int(model.bank_filled) == 32 and model.bank.sum(1).eq(2).all()  # two one-hot blocks per row
    assert model.eval().sample(3).shape == (3, 1, 32, 32)


def test_presets_set_the_papers_training_or_the_stable_default():
    paper = aegen.get_model("codegen_aae")(preset="paper", setting="supervised", num_classes=10, **TINY)
    assert (paper.code_follow_weight, paper.decoder_in_both_phases, paper.code_adv_weight, paper.info_on_real) == (0, True, 1, False)
    stable = aegen.get_model("codegen_aae")(setting="supervised", num_classes=10, **TINY)
    assert (stable.code_follow_weight, stable.decoder_in_both_phases, stable.code_adv_weight, stable.info_on_real) == (1, False, 0.1, True)
    assert stable.hparams.code_adv_weight == 0.1  # checkpoints record the values in use
    mixed = aegen.get_model("codegen_aae")(preset="paper", code_adv_weight=0.5, **TINY)  # an explicit option wins
    assert (mixed.code_adv_weight, mixed.decoder_in_both_phases) == (0.5, True)
    assert not aegen.get_model("codegen_aae")(info_on_real=True, **TINY).info_on_real  # unsupervised: no real s


@pytest.mark.parametrize("info_on_real", [False, True])
def test_q_learns_real_labels_only_with_info_on_real(info_on_real, tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(setting="supervised", num_classes=10, info_on_real=info_on_real, **TINY)
    calls = []
    original = model.information_loss
    model.information_loss = lambda q, target: calls.append(len(q)) or original(q, target)
    seen = {}

    def probe(x, y):
        s, target = model.condition(y)
        calls.clear()
        model.prior_improvement_phase(x, s, target)
        seen["calls"] = list(calls)
        return {}

    model.training_phases = probe
    _fit(model, Tiny(batch_size=16), 2, tmp_path)
    # D_I's step: Q on CG's images (+ on the real images); then CG's step: Q on CG's images
    assert seen["calls"] == ([16, 16, 16] if info_on_real else [16, 16])


def test_bad_settings_say_what_to_do():
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        aegen.get_model("codegen_aae")(preset="fast", **TINY)
    with pytest.raises(ValueError, match="unknown setting 'semi'"):
        aegen.get_model("codegen_aae")(setting="semi", **TINY)
    with pytest.raises(ValueError, match="num_labels"):
        aegen.get_model("codegen_aae")(setting="supervised", **TINY)
    with pytest.raises(ValueError, match="condition_dim"):
        aegen.get_model("codegen_aae")(setting="conditional", **TINY)
    with pytest.raises(ValueError, match="must equal latent_dim"):
        aegen.get_model("codegen_aae")(setting="supervised", num_classes=10, learned_prior=False, noise_dim=5, **TINY)
    model = aegen.get_model("codegen_aae")(setting="supervised", num_classes=10, **TINY)
    with pytest.raises(AegenError, match="class labels in \\[0, 10\\)"):
        model.class_index(torch.tensor([-1, 2]))


def test_vamp_prior_is_the_mixture_of_pseudo_input_posteriors():
    torch.manual_seed(0)
    model = aegen.get_model("vamp")(latent_dim=4, width=8, pseudo_inputs=3).eval()
    z = torch.randn(5, 4)
    mu, logvar = model.posterior(torch.nn.functional.hardtanh(model.pseudo))
    by_hand = torch.stack([
        torch.distributions.Normal(mu[k], (0.5 * logvar[k]).exp()).log_prob(z).sum(-1) for k in range(3)
    ]).exp().mean(0).log()
    torch.testing.assert_close(model.log_prior(z), by_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gaussian_log_density(z, torch.zeros(4), torch.zeros(4)),
                               torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1))
    # one pseudo-input: samples are its posterior's draws
    one = aegen.get_model("vamp")(latent_dim=4, width=8, pseudo_inputs=1).eval()
    codes = one.prior_sample(4000, torch.Generator().manual_seed(0))
    mu, logvar = one.pseudo_posteriors()
    torch.testing.assert_close(codes.mean(0), mu[0], atol=0.1, rtol=0)
    torch.testing.assert_close(codes.std(0), (0.5 * logvar[0]).exp(), atol=0.1, rtol=0.05)


def test_vamp_elbo_goes_down(tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("vamp")(latent_dim=8, width=8, pseudo_inputs=10, lr=2e-3)
    x = Tiny().tensors("train")[0]
    before = model.eval().elbo_terms(x)["loss"].item()
    model.train()
    pseudo = model.pseudo.detach().clone()
    _fit(model, Tiny(batch_size=16), 30, tmp_path)
    assert model.eval().elbo_terms(x)["loss"].item() < 0.5 * before
    assert not torch.equal(pseudo, model.pseudo)  # the pseudo-inputs learn


@pytest.mark.parametrize("kind, extra", [("gan", []), ("gan", ["--gan-loss", "standard"]), ("gmm", [])])
def test_aegen_prior_round_trip(kind, extra, tmp_path, capsys):
    torch.manual_seed(0)
    base = aegen.get_model("ae")(latent_dim=8, width=8)
    trainer = _fit(base, aegen.get_data("digits")(batch_size=32), 3, tmp_path)
    trainer.save_checkpoint(tmp_path / "ae.ckpt")
    out = tmp_path / "prior.ckpt"
    assert main(["prior", str(tmp_path / "ae.ckpt"), "--out", str(out), "--kind", kind, "--steps", "3",
                 "--components", "3", "--batch-size", "64", *extra]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"checkpoint: {out}"

    model = aegen.load(out)
    assert isinstance(model, LearnedPrior) and model.kind == kind and not model.training
    if kind == "gan":  # --gan-loss standard: the paper's plain latent GAN
        assert (model.gan_loss, model.gaussian_start) == (("standard", False) if extra else ("mmd", True))
    record = torch.load(out, weights_only=True)["aegen"]
    assert record["prior"]["kind"] == kind and record["prior"]["base"] == "ae" and record["data"]["name"] == "digits"
    x = aegen.get_data("digits")().tensors("test", 4)[0]
    base.eval()
    torch.testing.assert_close(model.reconstruct(x), base.reconstruct(x), rtol=0, atol=0)  # the base is untouched
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    torch.testing.assert_close(model.sample(5, gen()), aegen.load(out).sample(5, gen()), rtol=0, atol=0)
    assert not torch.allclose(model.prior_sample(5, gen()), base.prior_sample(5, gen()))  # a new prior
    again = LearnedPrior.load_from_checkpoint(out, map_location="cpu").eval()
    torch.testing.assert_close(again.sample(5, gen()), model.sample(5, gen()), rtol=0, atol=0)
    if kind == "gmm":  # the mixture is scikit-learn's fit of the training codes
        assert model.gmm_weights.sum().item() == pytest.approx(1.0, abs=1e-5)
        codes = model.encode(aegen.get_data("digits")().tensors("train")[0])
        assert (model.gmm_means - codes.mean(0)).norm(dim=1).min() < codes.std(0).norm()


def test_learned_prior_gan_matches_codes_and_leaves_the_base_frozen(tmp_path):
    torch.manual_seed(0)
    codes = torch.randn(512, 2) * torch.tensor([0.3, 2.0]) + torch.tensor([3.0, -1.0])
    model = LearnedPrior(base="ae", latent_dim=2, width=8, train_base=False, generator_hidden=(64,),
                         disc_hidden=(64,), prior_lr=4e-3)
    model.base.encode = lambda x: codes[torch.randint(len(codes), (len(x),))]  # a known code distribution
    frozen = _snapshot(model.base)
    _fit(model, aegen.get_data("digits")(batch_size=32), 200, tmp_path)
    assert not _changed(frozen, model.base)
    samples = model.eval().prior_sample(2000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples.mean(0), codes.mean(0), atol=0.5, rtol=0)
    assert math.isclose(samples[:, 1].std().item(), codes[:, 1].std().item(), rel_tol=0.5)


def test_aegen_prior_errors_are_one_line(tmp_path, capsys):
    assert main(["prior", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "x.ckpt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown prior kind"):
        LearnedPrior(kind="flow", latent_dim=8, width=8)
