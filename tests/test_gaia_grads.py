"""GAIA's training step (one pass of D on [x, G(x), G(z_i)], one backward pass) gives both nets the gradients
of the five-pass computation: D's losses on G's images as fixed inputs, G's losses through a frozen copy of D;
so does its two-backward form (a D loss with no gradient on a term, float16)."""

import pytest
import torch
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

import aegen
from aegen.models.gaia import balanced_losses, l1
from tests.conftest import fast_trainer

TINY = dict(img_shape=(1, 16, 16), latent_dim=6, width=4)


def balance_options(model) -> dict:
    hp = model.hparams
    return dict(alpha=model.alpha, slope=hp.slope, sigma=hp.sigma, max_fake=hp.max_fake, clip=hp.clip,
                detach=hp.detach_balance)


def five_pass_loss(model, x):
    """L_D + L_G with D run five times: D(x), D(G(x)), D(G(z_i)) on detached images for D's losses,
    then D(G(x)) and D(G(z_i)) with detached weights for G's."""
    disc = model.discriminator
    z = model.encode(x)
    x_recon, x_interp = model.decode(z), model.decode(model.interpolation_codes(z))
    r = l1(x, disc(x))
    f_real_d, f_samp_d = l1(x, disc(x_recon.detach())), l1(x_interp.detach(), disc(x_interp.detach()))
    frozen = {name: p.detach() for name, p in disc.named_parameters()}
    f_real_g = l1(x, functional_call(disc, frozen, (x_recon,)))
    f_samp_g = l1(x_interp, functional_call(disc, frozen, (x_interp,)))
    dist = model.structure_term(x, z)
    d = balanced_losses(r, f_real_d, f_samp_d, dist.detach(), **balance_options(model))
    g = balanced_losses(r.detach(), f_real_g, f_samp_g, dist, **balance_options(model))
    return d["loss_d"] + g["loss_g"]


def one_pass_one_loss(model, x):
    """A wrong step: one pass of D on live images and one loss for both nets (each learns from the other's loss)."""
    z = model.encode(x)
    x_recon, x_interp = model.decode(z), model.decode(model.interpolation_codes(z))
    d_x, d_recon, d_interp = model.discriminator(torch.cat([x, x_recon, x_interp])).split([len(x)] * 3)
    out = balanced_losses(l1(x, d_x), l1(x, d_recon), l1(x_interp, d_interp), model.structure_term(x, z),
                          **balance_options(model))
    return out["loss_d"] + out["loss_g"]


def gradients(loss, params: dict) -> dict:
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {name: torch.zeros_like(p) if g is None else g for (name, p), g in zip(params.items(), grads)}


def clipped(grads: dict, prefixes: tuple[str, ...], max_norm: float) -> dict:
    """The gradients of the parameters under ``prefixes`` scaled to norm at most ``max_norm``, as Lightning clips."""
    names = [n for n in grads if n.startswith(prefixes)]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grads[n]) for n in names]))
    return {n: grads[n] * (max_norm / (norm + 1e-6)).clamp(max=1) for n in names}


def step_gradients(model, tmp_path) -> dict[str, dict]:
    """The gradients of the first training step ("step"), of the five-pass reference and of the wrong
    variant, on one fixed batch with the same interpolation noise."""
    torch.manual_seed(0)
    x = torch.rand(6, *model.img_shape) * 2 - 1
    seen = {}

    def probe(x, y):
        params = dict(model.named_parameters())
        noise = model.noise.get_state()
        for name, loss in (("reference", five_pass_loss), ("wrong", one_pass_one_loss)):
            seen[name] = gradients(loss(model, x), params)
            model.noise.set_state(noise)
        losses = model.adversarial_phase(x)
        seen["step"] = {name: p.grad.clone() for name, p in params.items()}
        return losses

    model.training_phases = probe
    fast_trainer(tmp_path, 1).fit(model, DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=len(x)))
    return seen


@pytest.mark.parametrize("options", [
    {},
    {"detach_balance": True, "lr_balancing": False, "alpha": 0.0},
    {"grad_clip": 1e-3},
    {"arch": "munit", "style_dim": 2, "n_res": 1, "alpha": 0.1, "structure_code": "content"},
    {"two_pass": True},
    {"two_pass": True, "arch": "munit", "style_dim": 2, "n_res": 1, "alpha": 0.1},
], ids=["default", "detached-no-structure", "grad-clip", "munit", "two-pass", "two-pass-munit"])
def test_one_discriminator_pass_gives_the_five_pass_gradients(options, tmp_path, monkeypatch):
    torch.manual_seed(0)
    two_pass = options.pop("two_pass", False)
    model = aegen.get_model("gaia")(**{**TINY, **options})
    calls = []
    original = type(model).two_pass_gradients
    monkeypatch.setattr(type(model), "two_pass_gradients", lambda self, *args: calls.append(1) or original(self, *args))
    if two_pass:  # the form float16 takes: a loss scale of 2, which both passes must undo
        monkeypatch.setattr(type(model), "loss_scale", lambda self: 2.0)
    seen = step_gradients(model, tmp_path)
    assert len(calls) == two_pass
    reference, wrong, step = seen["reference"], seen["wrong"], seen["step"]
    nets = {"G": ("encoder.", "decoder."), "D": ("discriminator.",)}
    if options.get("grad_clip"):
        reference = {n: g for prefixes in nets.values() for n, g in clipped(reference, prefixes, 1e-3).items()}
    assert set(step) == set(reference)
    for name in step:
        torch.testing.assert_close(step[name], reference[name], rtol=1e-6, atol=1e-6, msg=name)
    for net, prefixes in nets.items():
        names = [n for n in step if n.startswith(prefixes)]
        assert any(step[n].abs().max() > 0 for n in names), f"no gradient reached {net}"
        # the test tells gradients apart: sharing one loss between the nets changes both nets' gradients
        assert max((wrong[n] - seen["reference"][n]).abs().max().item() for n in names) > 1e-4, net
