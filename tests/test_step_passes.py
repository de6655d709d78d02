"""Training steps that run a network once on several inputs give the gradients of one pass per input."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import aegen
from tests.conftest import fast_trainer

TINY = {"img_shape": (1, 16, 16), "latent_dim": 6, "width": 4, "noise_dim": 4, "disc_hidden": (16, 8),
        "gen_hidden": (16,), "num_categories": 3}


def gradients(loss, params: dict) -> dict:
    return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))


def latentgan_two_pass_loss(model, codes, with_information: bool = True):
    """LatentGAN's discriminator loss with D/Q run separately on the real and on G's codes, and Q's logits
    on the real codes; without the information term when ``with_information`` is False (a wrong variant)."""
    real = model.gans.each(model.to_gan_space(codes))
    p, c, u = model.gan_inputs(len(codes))
    fake = model.gan_codes(p, c, u).detach()
    real_logit, real_cats, _ = model.discriminator(real)
    fake_logit, cat_logits, u_pred = model.discriminator(fake)
    v = 0.5 * (F.binary_cross_entropy_with_logits(real_logit, model.noisy_labels(real_logit, True))
               + F.binary_cross_entropy_with_logits(fake_logit, model.noisy_labels(fake_logit, False)))
    info, _ = model.information(cat_logits, c, u_pred, u)
    return model.gans.total(v + info if with_information else v), real_cats[0]


@pytest.mark.parametrize("options", [
    {"restarts": 3, "num_continuous": 2, "label_flip": 0.2},
    {"restarts": 1, "num_continuous": 0, "num_categorical": 2, "standardize_codes": False},
], ids=["restarts", "one-gan-no-continuous"])
def test_latentgan_discriminator_runs_once_on_real_and_fake_codes(options, tmp_path):
    torch.manual_seed(0)
    model = aegen.get_model("latentgan")(**TINY, **options)
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    seen = {}

    def probe(x, y):
        with torch.no_grad():
            codes = model.encode(x)
        model.update_code_stats(codes)
        params = dict(model.gans.discriminators.named_parameters())
        noise = model.noise.get_state()
        loss, seen["real_cats"] = latentgan_two_pass_loss(model, codes)
        seen["reference"] = gradients(loss, params)
        model.noise.set_state(noise)
        seen["wrong"] = gradients(latentgan_two_pass_loss(model, codes, with_information=False)[0], params)
        model.noise.set_state(noise)
        losses = model.discriminator_phase(codes)
        seen["step"] = {name: p.grad.clone() for name, p in params.items()}
        seen["q_sums"] = model.gans.q_sums
        return losses

    model.training_phases = probe
    fast_trainer(tmp_path, 1).fit(model, DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=len(x)))
    reference, step = seen["reference"], seen["step"]
    assert set(step) == set(reference)
    for name in step:
        torch.testing.assert_close(step[name], reference[name], rtol=1e-6, atol=1e-6, msg=name)
        assert step[name].abs().max() > 0, name
    assert max((seen["wrong"][n] - reference[n]).abs().max().item() for n in step) > 1e-4
    if model.restarts > 1:  # Q's statistics on the real codes, for choosing the restart
        model.gans.q_sums = None
        model.gans.record(seen["real_cats"].detach())
        torch.testing.assert_close(seen["q_sums"], model.gans.q_sums, rtol=1e-6, atol=1e-6)


def aae_reference(model, x):
    """The AAE's regularisation losses with the encoder run in each phase and D run on prior and codes apart."""
    from aegen.losses import adversarial_loss, discriminator_loss

    prior = model.randn(len(x), model.latent_dim)
    d_loss = discriminator_loss(model.discriminator(prior), model.discriminator(model.training_codes(x).detach()))
    return d_loss, adversarial_loss(model.discriminator(model.training_codes(x)), real=True)


def aae_cluster_reference(model, x):
    from aegen.losses import adversarial_loss, discriminator_loss

    y, z = (t.detach() for t in model.posterior(x))
    prior_y = F.one_hot(model.randint(model.num_clusters, len(x)), model.num_clusters).float()
    d_loss = (discriminator_loss(model.cat_discriminator(prior_y), model.cat_discriminator(y))
              + discriminator_loss(model.gauss_discriminator(model.randn(len(x), model.latent_dim)),
                                   model.gauss_discriminator(z)))
    y, z = model.posterior(x)
    g_loss = adversarial_loss(model.cat_discriminator(y), real=True) + adversarial_loss(model.gauss_discriminator(z),
                                                                                        real=True)
    return d_loss, g_loss


def codegen_reference(model, x):
    from aegen.losses import adversarial_loss, discriminator_loss

    s, _ = model.conditions_of(torch.zeros(len(x), dtype=torch.long))
    prior = model.codes_from(s, model._draw_noise(len(x), model.noise)).detach()
    d_loss = discriminator_loss(model.code_logits(prior, s), model.code_logits(model.encode(x).detach(), s))
    z = model.encode(x)
    ae_loss = model.reconstruction_loss(model.decode(z), x) + model.code_adv_weight * adversarial_loss(
        model.code_logits(z, s), real=True)
    return d_loss, ae_loss


@pytest.mark.parametrize("name, reference, nets", [
    ("aae", aae_reference, ("discriminator", "encoder")),
    ("aae_cluster", aae_cluster_reference, ("cat_discriminator", "encoder")),
    ("codegen_aae", codegen_reference, ("code_critic", "encoder")),
])
def test_the_aae_family_encodes_once_and_runs_the_code_discriminator_once_per_step(name, reference, nets, tmp_path):
    """With lr 0 (no network changes within the step), the discriminator's gradients and the encoder's from
    the step equal those of the two-pass reference."""
    torch.manual_seed(0)
    options = {"code_follow_weight": 0.0} if name == "codegen_aae" else {}
    model = aegen.get_model(name)(img_shape=(1, 16, 16), latent_dim=6, width=4, **options)
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    seen = {}

    def probe(x, y):
        for group in (g for opt in model.trainer.optimizers for g in opt.param_groups):
            group["lr"] = 0.0
        disc, enc = (dict(getattr(model, net).named_parameters()) for net in nets)
        noise = model.noise.get_state()
        d_loss, g_loss = reference(model, x)
        seen["reference"] = {**gradients(d_loss, disc), **gradients(g_loss, enc)}
        model.noise.set_state(noise)
        if name == "codegen_aae":
            losses = model.aae_phase(x, model.conditions_of(y)[0])
        else:
            losses = model.regularization_phase(x)
        seen["step"] = {n: p.grad.clone() for n, p in {**disc, **enc}.items()}
        return losses

    model.training_phases = probe
    fast_trainer(tmp_path, 1).fit(model, DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)),
                                                    batch_size=len(x)))
    assert set(seen["step"]) == set(seen["reference"])
    for n, grad in seen["step"].items():
        torch.testing.assert_close(grad, seen["reference"][n], rtol=1e-6, atol=1e-6, msg=n)
    assert max(g.abs().max().item() for g in seen["step"].values()) > 0
