"""Hand-written PyTorch training steps for ``throughput.py``: each does the forward/backward/optimiser work of
one aegen training step on the model's own nets, without Lightning. ``loop(model)`` returns ``step(x)``; the
caller puts the model and the batches in the model's memory format, as aegen's Trainer does."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from aegen.losses import adversarial_loss, discriminator_loss, gaussian_kl
from aegen.models.gaia import balanced_losses, interpolate_halves, l1
from aegen.models.optim import adam


def _adam(model, params, **overrides):
    """Adam as aegen builds it (``aegen.models.optim.adam``: torch's fused kernel where it has one)."""
    return adam(params, lr=model.hparams.lr, betas=tuple(model.hparams.betas), **overrides)


def _update(opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@contextmanager
def frozen(*modules: nn.Module):
    """No parameter gradients for ``modules`` inside (what a phase does to the other optimisers' parameters)."""
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def ae_loop(model):
    opt = _adam(model, model.parameters())
    return lambda x: _update(opt, F.mse_loss(model.decoder(model.encoder(x)), x))


def vae_loop(model):
    opt = _adam(model, model.parameters())

    def step(x):
        mu, logvar = model.encoder(x).chunk(2, dim=-1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = F.mse_loss(model.decoder(z), x, reduction="none").flatten(1).sum(1).mean()
        _update(opt, recon + model.beta * gaussian_kl(mu, logvar).mean())

    return step


def aae_loop(model):
    enc, dec, disc = model.encoder, model.decoder, model.discriminator
    opt_ae = _adam(model, [*enc.parameters(), *dec.parameters()])
    opt_d, opt_g = _adam(model, disc.parameters()), _adam(model, enc.parameters())

    def step(x):
        _update(opt_ae, F.mse_loss(dec(enc(x)), x))
        with torch.no_grad():
            fake = enc(x)
        _update(opt_d, discriminator_loss(disc(torch.randn_like(fake)), disc(fake)))
        with frozen(disc):
            _update(opt_g, adversarial_loss(disc(enc(x)), real=True))

    return step


def acai_loop(model):
    enc, dec, critic = model.encoder, model.decoder, model.critic_net
    opt_ae, opt_c = _adam(model, [*enc.parameters(), *dec.parameters()]), _adam(model, critic.parameters())
    lam, gamma = model.hparams.lam, model.hparams.gamma

    def step(x):
        with frozen(critic):
            z = enc(x)
            recon = dec(z)
            alpha = 0.5 * torch.rand(len(z))
            x_alpha = dec(alpha[:, None] * z + (1 - alpha[:, None]) * z.flip(0))
            _update(opt_ae, F.mse_loss(recon, x) + lam * critic(x_alpha).mean(1).pow(2).mean())
        with frozen(enc, dec):
            blend = gamma * x + (1 - gamma) * recon.detach()
            _update(opt_c, F.mse_loss(critic(x_alpha.detach()).mean(1), alpha) + critic(blend).mean(1).pow(2).mean())

    return step


def _gaia_setup(model, **adam_options):
    """GAIA's optimisers and its step's shared parts: (G's images and L_dist, balancing options, lr balancing)."""
    hp = model.hparams
    opt_g = _adam(model, [*model.encoder.parameters(), *model.decoder.parameters()], eps=hp.adam_eps, **adam_options)
    opt_d = _adam(model, model.discriminator.parameters(), eps=hp.adam_eps, **adam_options)
    options = dict(alpha=model.alpha, slope=hp.slope, sigma=hp.sigma, max_fake=hp.max_fake, clip=hp.clip,
                   detach=hp.detach_balance)

    def generate(x):
        z = model.encoder(x)
        a = hp.interp_mean + hp.interp_std * torch.randn(2, len(z) // 2)
        return model.decoder(z), model.decoder(interpolate_halves(z, a[0], a[1])), model.structure_term(x, z)

    def balance_and_step(d_share: float, loss):
        if hp.lr_balancing:
            for opt, lr in ((opt_d, d_share * hp.lr), (opt_g, (1 - d_share) * hp.lr)):
                for group in opt.param_groups:
                    group["lr"] = lr
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        opt_d.step()

    return generate, options, balance_and_step


def gaia_loop(model):
    """GAIA's step: D once on [x, G(x), G(z_i)], one backward pass of the losses' terms weighted by D's loss's
    partial derivatives a, with the gradient at G's images rescaled by b / a (G's loss's over D's)."""
    generate, options, balance_and_step = _gaia_setup(model)
    disc = model.discriminator

    def step(x):
        x_recon, x_interp, dist = generate(x)
        d_x, d_recon, d_interp = disc(torch.cat([x, x_recon, x_interp])).split(len(x))
        terms = (l1(x, d_x), l1(x, d_recon), l1(x_interp, d_interp), dist)
        values = [t.detach().requires_grad_() for t in terms]
        losses = balanced_losses(*values, **options)
        a = torch.autograd.grad(losses["loss_d"], values, materialize_grads=True)
        b = torch.autograd.grad(losses["loss_g"], values, materialize_grads=True)
        x_recon.register_hook(lambda grad: grad * (b[1] / a[1]))
        x_interp.register_hook(lambda grad: grad * (b[2] / a[2]))
        loss = a[0] * terms[0] + a[1] * terms[1] + a[2] * terms[2] + b[3] * dist
        balance_and_step(torch.stack([a[1], a[2], losses["d_share"]]).tolist()[2], loss)

    return step


def gaia_two_backward_loop(model):
    """GAIA's step with D once on x and once on [G(x), G(z_i)] (detached), G's loss back-propagated to the
    images and D's loss to D's parameters in two backward passes (the step before ``gaia_loop``)."""
    generate, options, balance_and_step = _gaia_setup(model)
    disc = model.discriminator

    def step(x):
        outputs = generate(x)
        leaves = [t.detach().requires_grad_() for t in outputs]
        x_recon, x_interp, dist = leaves
        d_recon, d_interp = disc(torch.cat([x_recon, x_interp])).split([len(x_recon), len(x_interp)])
        losses = balanced_losses(l1(x, disc(x)), l1(x, d_recon), l1(x_interp, d_interp), dist, **options)
        d_params = list(disc.parameters())
        g_grads = torch.autograd.grad(losses["loss_g"], leaves, retain_graph=True)
        d_grads = torch.autograd.grad(losses["loss_d"], d_params, materialize_grads=True)
        surrogate = sum((t * grad).sum() for t, grad in zip([*outputs, *d_params], [*g_grads, *d_grads]))
        balance_and_step(losses["d_share"].item(), surrogate)

    return step


def gaia_five_pass_loop(model, **adam_options):
    """GAIA's step with D run five times: on x, G(x), G(z_i) for D's losses, again on G(x), G(z_i) with
    detached weights for G's (the reference for ``gaia_loop``)."""
    generate, options, balance_and_step = _gaia_setup(model, **adam_options)
    disc = model.discriminator

    def step(x):
        x_recon, x_interp, dist = generate(x)
        r = l1(x, disc(x))
        f_real_d, f_samp_d = l1(x, disc(x_recon.detach())), l1(x_interp.detach(), disc(x_interp.detach()))
        weights = {name: p.detach() for name, p in disc.named_parameters()}
        f_real_g = l1(x, functional_call(disc, weights, (x_recon,)))
        f_samp_g = l1(x_interp, functional_call(disc, weights, (x_interp,)))
        d = balanced_losses(r, f_real_d, f_samp_d, dist.detach(), **options)
        g = balanced_losses(r.detach(), f_real_g, f_samp_g, dist, **options)
        balance_and_step(d["d_share"].item(), d["loss_d"] + g["loss_g"])

    return step


def latentgan_loop(model):
    """LatentGAN's step: the autoencoder's MSE, then ``gan_steps`` updates of D/Q and G on the codes."""
    enc, dec, gen, disc = model.encoder, model.decoder, model.gans.generators, model.gans.discriminators
    opt_ae = _adam(model, [*enc.parameters(), *dec.parameters()])
    opt_d, opt_g = (_adam(model, net.parameters(), lr=model.gan_lr) for net in (disc, gen))
    count, flip = model.restarts, model.label_flip

    def labels(logits, value):
        target = torch.full_like(logits, value)
        return torch.where(torch.rand(logits.shape) < flip, 1.0 - target, target) if flip else target

    def fake_codes(n):
        p, c, u = model.draw_codes((count, n), None, "cpu")
        onehot = F.one_hot(c, model.num_categories).flatten(-2).to(p.dtype)
        return gen(torch.cat([p, onehot, u], -1)), c, u

    def step(x):
        with frozen(gen, disc):
            _update(opt_ae, F.mse_loss(dec(enc(x)), x))
        with torch.no_grad():
            codes = enc(x)
        model.update_code_stats(codes)
        real = model.to_gan_space(codes).expand(count, *codes.shape)
        for _ in range(model.gan_steps):
            with frozen(enc, dec, gen):
                fake, c, u = fake_codes(len(x))
                logits, cats, u_out = disc(torch.cat([real, fake.detach()], dim=-2))
                (real_logit, fake_logit), (_, u_pred) = logits.chunk(2, -1), u_out.chunk(2, -2)
                v = 0.5 * (F.binary_cross_entropy_with_logits(real_logit, labels(real_logit, 1 - model.label_smoothing))
                           + F.binary_cross_entropy_with_logits(fake_logit, labels(fake_logit, 0.0)))
                info, _ = model.information([cat.chunk(2, -2)[1] for cat in cats], c, u_pred, u)
                _update(opt_d, count * (v + info))
                model.gans.record(cats[0].chunk(2, -2)[0].detach())
            with frozen(enc, dec, disc):
                fake, c, u = fake_codes(len(x))
                fake_logit, cat_logits, u_pred = disc(fake)
                info, _ = model.information(cat_logits, c, u_pred, u)
                _update(opt_g, count * (adversarial_loss(fake_logit, real=True) + info))

    return step


def gaia_five_pass_multi_tensor_loop(model):
    """``gaia_five_pass_loop`` with the multi-tensor Adam: with a model in torch's default layout, the step
    and the defaults of aegen before GAIA's single pass, channels-last and the fused CPU Adam."""
    return gaia_five_pass_loop(model, foreach=True)


HAND_WRITTEN = {"ae": ae_loop, "vae": vae_loop, "aae": aae_loop, "acai": acai_loop, "gaia": gaia_loop,
                "latentgan": latentgan_loop}
#: models whose step is also timed in earlier forms, in the same run:
#: name -> [(label, earlier step's loop, the model options it ran with)]
REFERENCE = {"gaia": [("five-pass D", gaia_five_pass_loop, {}), ("two backward", gaia_two_backward_loop, {}),
                      ("five-pass D, torch's layout, multi-tensor Adam", gaia_five_pass_multi_tensor_loop,
                       {"channels_last": False})]}
