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
