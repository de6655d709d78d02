"""GAIA: generative adversarial interpolative autoencoding (Sainburg, Thielk & Gentner, 2018).

Both the generator G and the discriminator D are autoencoders. D (BEGAN-style, half the
channels, no linear bottleneck) learns to reconstruct real images well and generated ones
badly; G learns to produce images that D reconstructs well: its reconstructions of real images
and, above all, decodes of interpolations between the codes of real images. A structure loss keeps
pairwise distances in code space like those in image space. Losses and balancing follow the
authors' code:

    r      = |x - D(x)|                   f_real = |x - D(G(x))|
    f_samp = |G(z_i) - D(G(z_i))|         f      = (f_real + f_samp) / 2
    p_fake = clip(s(sigma * f_samp - r), 0, 0.9)      L_D = clip(r - p_fake * f, -1, 1)
    g      = s(f_samp - f_real)           L_G = clip(g * f_samp + (1 - g) * f_real + alpha * L_dist, -1, 1)
    lr_D   = s(r - f) * lr                lr_G = (1 - s(r - f)) * lr
    with s(v) = 1 / (1 + exp(-slope * v)).

Presets: the defaults train on the embedded 32 px digits on a CPU in minutes (plain conv
encoder/decoder, base learning rate 1e-3); ``--preset paper`` is the authors' CelebA training
from their public notebook (their residual/AdaIN nets, 512-d style and 512-d content codes,
lr 1e-4, Adam epsilon 1e-8, batch 8, 128 px, structure loss weight lr / 2 on the content code;
``--data celeba`` for the data). The defaults' structure loss covers the whole code with weight 5e-5.

Deviations from the authors' code, in every preset: images are in [-1, 1] with a tanh decoder
(the reference used [0, 1] and a sigmoid), so the L1 errors are halved to keep the reference's
[0, 1] scale that the slope and clip bounds were tuned for; the ``munit`` decoder gives each
residual block its own AdaIN scale and shift (the reference shares one pair across blocks); layers
keep PyTorch's initialisation (the reference: variance scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder, MunitDecoder, MunitEncoder
from aegen.registry import register_model

Arch = Literal["conv", "munit"]
StructureCode = Literal["all", "content"]


def pairwise_sq_distances(v: Tensor) -> Tensor:
    """Mean squared difference between all pairs of rows of (B, ...) -> (B, B)."""
    flat = v.flatten(1)
    return torch.cdist(flat, flat).pow(2) / flat.shape[1]


def structure_loss(x: Tensor, z: Tensor) -> Tensor:
    """L_dist: mean over pairs of (log(1 + S_x) - log(1 + S_z))^2, S = distances / their mean."""
    sx, sz = pairwise_sq_distances(x), pairwise_sq_distances(z)
    sx, sz = sx / sx.mean().clamp_min(1e-12), sz / sz.mean().clamp_min(1e-12)
    return (torch.log1p(sx) - torch.log1p(sz)).pow(2).mean()


def interpolate_halves(z: Tensor, a1: Tensor, a2: Tensor) -> Tensor:
    """GAIA's interpolations of a batch of codes: with halves z1, z2 (pairs i),
    [a1 * z1 + (1 - a1) * z2, a2 * reversed(z1) + (1 - a2) * z2] (unclipped coefficients)."""
    half = len(z) // 2
    z1, z2 = z[:half], z[half : 2 * half]
    a1, a2 = a1.view(-1, *[1] * (z.dim() - 1)), a2.view(-1, *[1] * (z.dim() - 1))
    return torch.cat([a1 * z1 + (1 - a1) * z2, a2 * z1.flip(0) + (1 - a2) * z2])


def balanced_losses(
    r: Tensor,
    f_real: Tensor,
    f_samp: Tensor,
    dist: Tensor,
    alpha: float = 5e-5,
    slope: float = 20.0,
    sigma: float = 0.5,
    max_fake: float = 0.9,
    clip: float = 1.0,
    detach: bool = False,
) -> dict[str, Tensor]:
    """The sigmoid-balanced discriminator and generator losses of the reference code."""
    s = lambda v: torch.sigmoid(slope * v)  # noqa: E731
    hold = (lambda t: t.detach()) if detach else (lambda t: t)
    f = (f_real + f_samp) / 2
    p_fake = hold(s(sigma * f_samp - r).clamp(0, max_fake))
    g = hold(s(f_samp - f_real))
    loss_d = (r - p_fake * f).clamp(-clip, clip)
    loss_g = (g * f_samp + (1 - g) * f_real + alpha * dist).clamp(-clip, clip)
    return {"loss_d": loss_d, "loss_g": loss_g, "p_fake": p_fake, "g": g, "d_share": s(r - f)}


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute error on the reference's [0, 1] scale (our images are in [-1, 1])."""
    return (a - b).abs().mean() / 2


class MunitCodeEncoder(MunitEncoder):
    """The residual/AdaIN encoder with one code: the tensor [style, content] (B, style_dim +
    content_dim), or without a content head the pair (style, feature map) that
    ``MunitCodeDecoder`` takes back (the discriminator's code: no linear bottleneck)."""

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        style, content = super().forward(x)
        return (style, content) if self.content_head is None else torch.cat([style, content], dim=1)


class MunitCodeDecoder(MunitDecoder):
    """The residual/AdaIN decoder of a ``MunitCodeEncoder``'s code: it splits [style, content]."""

    def __init__(self, img_shape: Sequence[int], content_dim: int | None, style_dim: int, width: int,
                 n_res: int) -> None:
        super().__init__(img_shape, content_dim, style_dim, width, n_res=n_res)
        self.style_dim = style_dim

    def forward(self, code: Tensor | tuple[Tensor, Tensor]) -> Tensor:  # type: ignore[override]
        if self.content_head is None:
            return super().forward(*code)
        return super().forward(*code.split([self.style_dim, code.shape[1] - self.style_dim], dim=1))


def build_nets(arch: Arch, img_shape: Sequence[int], code_dim: int | None, width: int, style_dim: int = 8,
               n_res: int = 4, disc_levels: int = 2) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of ``arch``, with ``decoder(encoder(x))`` an image like x.

    With ``code_dim`` they are G's nets: the code is one (B, code_dim) tensor (``munit``: [style,
    content], content of ``code_dim - style_dim``). With None they are D's bottleneck-free nets
    (``conv``: ``disc_levels`` stages without normalisation; ``munit``: style and feature map).
    """
    if arch == "conv":
        options = {} if code_dim is not None else {"norm": "none", "levels": disc_levels}
        return (ConvEncoder(img_shape, code_dim, width=width, **options),
                ConvDecoder(img_shape, code_dim, width=width, **options))
    content = None if code_dim is None else code_dim - style_dim
    return (MunitCodeEncoder(img_shape, content, style_dim, width, n_res=n_res),
            MunitCodeDecoder(img_shape, content, style_dim, width, n_res=n_res))


class AutoencodingDiscriminator(nn.Module):
    """D: an autoencoder without a linear bottleneck, returning its reconstruction of x."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def check_options(arch: str, latent_dim: int, style_dim: int, structure_code: str = "all") -> None:
    """Raise a ValueError for an unknown ``arch``, a ``munit`` code without room for content, or
    ``structure_code content`` without a content code."""
    if arch not in get_args(Arch):
        raise ValueError(f"unknown arch {arch!r}; choose one of: {', '.join(get_args(Arch))}")
    if arch == "munit" and latent_dim <= style_dim:
        raise ValueError(f"latent_dim ({latent_dim}) must exceed style_dim ({style_dim}) for arch munit")
    if structure_code not in get_args(StructureCode):
        choices = ", ".join(get_args(StructureCode))
        raise ValueError(f"unknown structure_code {structure_code!r}; choose one of: {choices}")
    if structure_code == "content" and arch != "munit":
        raise ValueError(f"structure_code content needs a content code: arch munit, not {arch}")


@register_model("gaia")
class GAIA(GenerativeAE):
    """GAIA: an autoencoder trained adversarially on interpolations against an autoencoding discriminator."""

    def __init__(
        self,
        arch: Arch = "conv",
        lr: float = 1e-3,
        adam_eps: float = 1e-8,
        alpha: float | None = 5e-5,
        structure_code: StructureCode = "all",
        slope: float = 20.0,
        sigma: float = 0.5,
        max_fake: float = 0.9,
        clip: float = 1.0,
        lr_balancing: bool = True,
        detach_balance: bool = False,
        interp_mean: float = 0.5,
        interp_std: float = 0.25,
        disc_levels: int = 2,
        style_dim: int = 8,
        n_res: int = 4,
        **kwargs,
    ) -> None:
        """
        Args:
            arch: the nets of G and D: ``conv`` (plain conv encoder/decoder) or ``munit`` (the paper's
                residual nets with an AdaIN style code; the code is [style, content]).
            lr: the base learning rate that lr balancing splits between G and D (paper 1e-4 at
                batch 8 for days on GPUs; 1e-3 here so small data trains in minutes on a CPU).
            adam_eps: Adam's epsilon (paper 1e-8).
            alpha: weight of the structure-consistency loss; None: half the base learning rate,
                ``lr / 2``, as in the paper (5e-5 at its lr 1e-4). The default stays 5e-5 at lr 1e-3.
            structure_code: the part of the code the structure loss compares with the images: ``all``
                (the whole code) or ``content`` (``munit`` only: the content code without the style,
                as in the authors' code).
            slope: slope of the balancing sigmoid s(v) = 1 / (1 + exp(-slope * v)) (paper 20).
            sigma: weight of f_samp against r in D's fake proportion (paper 0.5).
            max_fake: upper clip of D's fake proportion (paper 0.9).
            clip: both losses are clipped to [-clip, clip] (paper 1).
            lr_balancing: scale the learning rates each batch by s(r - f) (D) and 1 - s(r - f) (G) (paper: on).
            detach_balance: stop gradients through the balancing proportions (paper: no).
            interp_mean: mean of the interpolation coefficient (paper 0.5).
            interp_std: standard deviation of the interpolation coefficient, unclipped (paper 0.25).
            disc_levels: stride-2 stages of the ``conv`` discriminator (no linear bottleneck).
            style_dim: size of the style part of the code (``munit`` only; paper 512, with a
                512-d content code: latent_dim 1024).
            n_res: residual blocks per net (``munit`` only; paper 4).
        """
        super().__init__(lr=lr, **kwargs)
        check_options(arch, self.latent_dim, style_dim, structure_code)
        width, options = self.hparams.width, {"style_dim": style_dim, "n_res": n_res, "disc_levels": disc_levels}
        self.encoder, self.decoder = build_nets(arch, self.img_shape, self.latent_dim, width, **options)
        self.discriminator = AutoencodingDiscriminator(*build_nets(arch, self.img_shape, None, max(width // 2, 1), **options))

    def optimizer_groups(self):
        eps = {"eps": self.hparams.adam_eps}
        return {
            "generator": ([*self.encoder.parameters(), *self.decoder.parameters()], eps),
            "discriminator": (self.discriminator.parameters(), eps),
        }

    @property
    def alpha(self) -> float:
        """The structure loss weight in use: ``alpha``, or ``lr / 2`` when it is None."""
        alpha = self.hparams.alpha
        return self.hparams.lr / 2 if alpha is None else alpha

    def structure_part(self, z: Tensor) -> Tensor:
        """The part of the code (B, D) that the structure loss compares with the images."""
        return z[:, self.hparams.style_dim :] if self.hparams.structure_code == "content" else z

    def structure_term(self, x: Tensor, z: Tensor) -> Tensor:
        """L_dist of the images and (the chosen part of) their codes; 0 when alpha is 0."""
        return structure_loss(x, self.structure_part(z)) if self.alpha else x.new_zeros(())

    def interpolation_codes(self, z: Tensor) -> Tensor:
        """Codes between the two halves of the batch, coefficients ~ N(interp_mean, interp_std^2)."""
        half = len(z) // 2
        a = self.hparams.interp_mean + self.hparams.interp_std * self.randn(2, half)
        return interpolate_halves(z, a[0], a[1])

    def adversarial_phase(self, x: Tensor) -> dict[str, Tensor]:
        """G and D stepped together from one forward and one backward pass of each net, as in the reference code.

        D runs once, on [x, G(x), G(z_i)]. Both losses are functions of the scalar terms r, f_real, f_samp and
        L_dist, so each loss's gradient is the terms' gradients weighted by the loss's partial derivatives: a for
        D's loss, b for G's. One backward pass of a_r r + a_real f_real + a_samp f_samp + b_dist L_dist gives D's
        parameters D's loss gradient; the gradient reaching G(x) and G(z_i) is multiplied there by b / a of
        their term, so G gets G's loss gradient (``two_pass_gradients`` when an a is 0 or under float16).
        """
        with self.phase("generator", "discriminator") as update:
            z = self.encode(x)
            x_recon, x_interp = self.decode(z), self.decode(self.interpolation_codes(z))
            dist = self.structure_term(x, z)  # L_dist
            d_x, d_recon, d_interp = self.discriminator(torch.cat([x, x_recon, x_interp])).split(
                [len(x), len(x_recon), len(x_interp)])
            terms = (l1(x, d_x), l1(x, d_recon), l1(x_interp, d_interp), dist)  # r, f_real, f_samp, L_dist
            hp = self.hparams
            values = [t.detach().requires_grad_() for t in terms]
            losses = balanced_losses(*values, alpha=self.alpha, slope=hp.slope, sigma=hp.sigma,
                                     max_fake=hp.max_fake, clip=hp.clip, detach=hp.detach_balance)
            a = torch.autograd.grad(losses["loss_d"], values, materialize_grads=True)
            b = torch.autograd.grad(losses["loss_g"], values, materialize_grads=True)
            d_loss = a[0] * terms[0] + a[1] * terms[1] + a[2] * terms[2]  # D's loss, to first order
            a_real, a_samp, d_share = torch.stack([a[1], a[2], losses["d_share"]]).tolist()  # one device read
            if a_real and a_samp and self.loss_scale() == 1.0:
                x_recon.register_hook(lambda grad: grad * (b[1] / a[1]))
                x_interp.register_hook(lambda grad: grad * (b[2] / a[2]))
                loss = d_loss + b[3] * dist
            else:
                loss = self.two_pass_gradients(d_loss, b[1] * terms[1] + b[2] * terms[2], (x_recon, x_interp)) \
                    + b[3] * dist
            if hp.lr_balancing:
                self._set_lr("discriminator", d_share * hp.lr)
                self._set_lr("generator", (1 - d_share) * hp.lr)
            update(loss)
        logged = {"loss_d": losses["loss_d"], "loss_g": losses["loss_g"], "r": terms[0], "f_real": terms[1],
                  "f_samp": terms[2], "dist": dist, "p_fake": losses["p_fake"], "g_share": losses["g"],
                  "d_share": losses["d_share"]}
        return {name: value.detach() for name, value in logged.items()}

    def two_pass_gradients(self, d_loss: Tensor, g_loss: Tensor, images: tuple[Tensor, Tensor]) -> Tensor:
        """A loss whose gradient is ``d_loss``'s on D's parameters and ``g_loss``'s through D (D fixed) on G's
        ``images``, from two backward passes through D: the form for a D loss with no gradient on a term, and for
        float16, whose small gradients the single pass's rescaling could flush to zero."""
        scale = self.loss_scale()  # both passes run on the scaled losses, like Lightning's backward
        d_params = list(self.discriminator.parameters())
        g_grads = torch.autograd.grad(g_loss * scale, images, retain_graph=True)
        d_grads = torch.autograd.grad(d_loss * scale, d_params, retain_graph=True, materialize_grads=True)
        return self.gradient_loss(zip([*images, *d_params], [*g_grads, *d_grads]), scale)

    def _set_lr(self, name: str, lr: float) -> None:
        for group in self.optimizer(name).param_groups:
            group["lr"] = lr

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.adversarial_phase(x)
