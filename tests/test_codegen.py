"""codegen_aae (the learned-prior AAE) and vamp (the VampPrior VAE)."""

import pytest
import pytorch_lightning as pl
import torch

import aegen
from aegen import presets
from aegen.data.base import AEDataModule
from aegen.errors import AegenError
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
        s, target = model.conditions_of(y)
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
    assert torch.equal(model.conditions_of(y)[1], y[:, 0])
    model.eval()
    images = model.sample_conditional(6, torch.tensor([0, 1, 2, 3, 4, 5]))
    assert images.shape == (6, 1, 32, 32)
    assert aegen.get_model("codegen_aae")(**TINY).sample_conditional(2, 1) is None  # unsupervised: no classes
    picked = aegen.get_model("codegen_aae")(num_classes=10, setting="supervised", label_column=1, num_labels=3, **TINY)
    assert torch.equal(picked.condition.class_index(y), y[:, 1])


def test_conditional_factor_labels_are_one_hot_per_column_and_sampled_from_the_bank(tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(setting="conditional", condition_sizes=[10, 3], condition_bank=8, **TINY)
    assert model.condition.size == 13
    with pytest.raises(AegenError, match="no training conditions"):
        model.sample(2)
    _fit(model, Tiny(batch_size=16, factors=True), 8, tmp_path)
    s, target = model.conditions_of(torch.tensor([[7, 1]]))
    assert s.tolist() == [[0.0] * 7 + [1.0] + [0.0] * 2 + [0.0, 1.0, 0.0]] and target.tolist() == [[7, 1]]
    assert int(model.condition.bank_filled) == 32 and model.condition.bank.sum(1).eq(2).all()  # two one-hot blocks per row
    assert model.eval().sample(3).shape == (3, 1, 32, 32)


def test_paper_preset_is_the_papers_training_and_the_defaults_the_stable_one():
    paper_options = presets.options("codegen_aae", "paper")
    assert paper_options == {"code_follow_weight": 0.0, "decoder_in_both_phases": True, "code_adv_weight": 1.0,
                             "info_on_real": False, "lr": 2e-4}
    paper = aegen.get_model("codegen_aae")(**paper_options, setting="supervised", num_classes=10, **TINY)
    assert (paper.code_follow_weight, paper.decoder_in_both_phases, paper.code_adv_weight, paper.info_on_real) == (0, True, 1, False)
    stable = aegen.get_model("codegen_aae")(setting="supervised", num_classes=10, **TINY)
    assert (stable.code_follow_weight, stable.decoder_in_both_phases, stable.code_adv_weight, stable.info_on_real) == (20, False, 0.1, True)
    assert (paper.hparams.lr, stable.hparams.lr) == (2e-4, 1e-3)
    assert not aegen.get_model("codegen_aae")(info_on_real=True, **TINY).info_on_real  # unsupervised: no real s


def test_a_checkpoint_with_the_old_preset_option_fails_in_one_line(tmp_path):
    model = aegen.get_model("codegen_aae")(**TINY)
    trainer = _fit(model, Tiny(batch_size=16), 1, tmp_path)
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    assert aegen.load(tmp_path / "new.ckpt").code_adv_weight == 0.1
    old = torch.load(tmp_path / "new.ckpt", weights_only=True)
    old["hyper_parameters"].update(preset="paper", code_adv_weight=None, code_follow_weight=None,
                                   decoder_in_both_phases=None, info_on_real=None)
    old["aegen"]["version"] = "0.2.0"
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(AegenError, match="written by aegen 0.2.0") as err:
        aegen.load(tmp_path / "old.ckpt")
    assert "\n" not in str(err.value)


def _in_prior_phase(model, calls: list, tmp_path) -> list:
    """What ``calls`` collects during one prior-improvement phase (the last of 2 minibatches of 16 digits)."""
    seen = {}

    def probe(x, y):
        s, target = model.conditions_of(y)
        calls.clear()
        model.prior_improvement_phase(x, s, target)
        seen["calls"] = list(calls)
        return {}

    model.training_phases = probe
    _fit(model, Tiny(batch_size=16), 2, tmp_path)
    return seen["calls"]


@pytest.mark.parametrize("info_on_real", [False, True])
def test_q_learns_real_labels_only_with_info_on_real(info_on_real, tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(setting="supervised", num_classes=10, info_on_real=info_on_real, **TINY)
    calls = []
    original = model.condition.information_loss
    model.condition.information_loss = lambda q, target: calls.append(len(q)) or original(q, target)
    # D_I's step: Q on CG's images (+ on the real images); then CG's step: Q on CG's images
    assert _in_prior_phase(model, calls, tmp_path) == ([16, 16, 16] if info_on_real else [16, 16])


@pytest.mark.parametrize("recon_as_fake", [True, False])
def test_image_critic_sees_each_image_set_as_a_batch_of_its_own(recon_as_fake, tmp_path):
    # D_I has batch norm: generated images are normalised alone in D_I's step, as in CG's step
    torch.manual_seed(0)
    model = aegen.get_model("codegen_aae")(recon_as_fake=recon_as_fake, **TINY)
    sizes = []
    model.image_critic.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    # D_I's step: real, generated (and reconstructed) images; then CG's step: generated images
    assert _in_prior_phase(model, sizes, tmp_path) == ([16, 16, 16, 16] if recon_as_fake else [16, 16, 16])


def test_bad_settings_say_what_to_do():
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
        model.conditions_of(torch.tensor([-1, 2]))


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
