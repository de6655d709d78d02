"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther, 2016): a VAE whose reconstruction error is measured in a
GAN discriminator's feature space ("autoencoding beyond pixels using a learned similarity metric").

Enc maps x to q(z|x); Dec decodes z ~ q(z|x) to x~ and z_p ~ N(0, I) to x_p; Dis tells x from x~ and x_p.
Dis_l(x) is the l-th layer of Dis, and the pixel likelihood is replaced by p(Dis_l(x) | z) = N(Dis_l(x~), I):

    L_prior        = KL(q(z|x) || N(0, I))
    L_llike^Dis_l  = -log N(Dis_l(x) | Dis_l(x~), I) = 1/2 ||Dis_l(x) - Dis_l(x~)||^2 (+ const)
    L_GAN          = -[log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))]   (Dis's classification loss)

each summed over dimensions and averaged over the batch. Algorithm 1 of the paper updates, from one forward
pass, each network by its own loss only:

    Enc <- -grad_Enc (L_prior + L_llike^Dis_l)
    Dec <- -grad_Dec (gamma * L_llike^Dis_l - L_GAN)
    Dis <- -grad_Dis L_GAN

so the GAN error never reaches the encoder and the feature-space error never trains Dis. ``gen_loss
minimax`` is the decoder loss as written (Dec ascends Dis's classification loss on x~ and x_p);
``non_saturating`` (the default) replaces -L_GAN by -[log Dis(x~) + log Dis(x_p)], which has the same fixed
point and does not saturate while Dis wins early on. Dis is a ``ConvEncoder`` with one logit; Dis_l is the
output of its ``feature_stage``-th stride-2 convolution (before its normalisation, as in the authors' code).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.errors import AegenError
from aegen.losses import adversarial_loss, gaussian_kl
from aegen.models.base import GenerativeAE
from aegen.models.vae import gaussian_posterior, reparameterize
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model

GenLoss = Literal["minimax", "non_saturating"]


def feature_nll(f_recon: Tensor, f_real: Tensor) -> Tensor:
    """L_llike^Dis_l: -log N(f_real | f_recon, I) without its constant, 1/2 the squared error summed over
    features, averaged over the batch."""
    return 0.5 * (f_recon - f_real).pow(2).flatten(1).sum(1).mean()


def gan_loss(d_real: Tensor, d_recon: Tensor, d_prior: Tensor) -> Tensor:
    """L_GAN as Dis minimises it: -[log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))] from logits, each
    term averaged over the batch."""
    return (adversarial_loss(d_real, True) + adversarial_loss(d_recon, False)
            + adversarial_loss(d_prior, False))


def generator_loss(d_recon: Tensor, d_prior: Tensor, kind: GenLoss) -> Tensor:
    """The decoder's adversarial term: ``minimax`` -L_GAN (without its real term, constant for Dec);
    ``non_saturating`` -[log Dis(x~) + log Dis(x_p)]."""
    if kind == "minimax":
        return -(adversarial_loss(d_recon, False) + adversarial_loss(d_prior, False))
    return adversarial_loss(d_recon, True) + adversarial_loss(d_prior, True)


@register_model("vaegan")
class VAEGAN(GenerativeAE):
    """VAE-GAN: a VAE with a discriminator-feature reconstruction error, trained with a GAN on x~ and x_p."""

    samples_from_code_gaussian = False
    #: the optimisers in Algorithm 1's order, each stepped by the loss of the same name in ``losses``
    NETS = ("encoder", "decoder", "discriminator")

    def __init__(
        self,
        gamma: float = 1.0,
        gen_loss: GenLoss = "non_saturating",
        feature_stage: int | None = 2,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        **kwargs,
    ) -> None:
        """
        Args:
            gamma: weight of L_llike^Dis_l against the GAN term in the decoder's loss (the paper's gamma; the
                paper states no value; the authors' CelebA code: 1e-5 with its own sums, see docs/methods/vaegan.md).
            gen_loss: the decoder's adversarial term: ``minimax`` (-L_GAN, the paper's Algorithm 1) or
                ``non_saturating`` (-[log Dis(x~) + log Dis(x_p)]).
            feature_stage: the stride-2 conv stage of Dis whose output is Dis_l (1-based; None: the last, as the
                paper's fourth of four convolutions at 64 px). Default 2: an 8x8 map at 32 px, the paper's Dis_l
                resolution; the last stage (4x4) trained the digits more slowly.
            lr: learning rate of the three optimisers (paper: RMSProp 3e-4; here Adam, 1e-3 like the other
                models so small data trains in minutes on a CPU).
            betas: Adam betas (DCGAN practice beta1 0.5; the paper used RMSProp).
        """
        super().__init__(lr=lr, betas=betas, **kwargs)
        if gen_loss not in get_args(GenLoss):
            raise AegenError(f"unknown gen_loss {gen_loss!r}; choose one of: {', '.join(get_args(GenLoss))}")
        if gamma < 0:
            raise AegenError(f"gamma must be >= 0, got {gamma}")
        width = self.hparams.width
        self.encoder = ConvEncoder(self.img_shape, 2 * self.latent_dim, width=width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=width)
        self.discriminator = ConvEncoder(self.img_shape, 1, width=width)
        stages = len(self.discriminator.features) // 3  # each stage: conv, norm, activation
        stage = stages if feature_stage is None else feature_stage
        if not 1 <= stage <= stages:
            raise AegenError(f"feature_stage must be between 1 and {stages} for {self.img_shape[1]} px images, "
                             f"got {feature_stage}")
        self.feature_index = 3 * (stage - 1)  # the stage's convolution, before its normalisation

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x)."""
        return gaussian_posterior(self.encoder(x))

    def encode(self, x: Tensor) -> Tensor:
        """The mean of q(z|x)."""
        return self.posterior(x)[0]

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def discriminate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images -> (Dis_l(x) (B, C, H, W), Dis's real/fake logits (B,))."""
        h, features = x, x
        for i, layer in enumerate(self.discriminator.features):
            h = layer(h)
            if i == self.feature_index:
                features = h
        return features, self.discriminator.head(h.flatten(1)).squeeze(-1)

    def optimizer_groups(self):
        return {name: getattr(self, name).parameters() for name in self.NETS}

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        """Algorithm 1's forward pass: each network's loss (``encoder``, ``decoder``, ``discriminator``) and the
        terms ``prior`` (L_prior), ``llike`` (L_llike^Dis_l), ``gan`` (L_GAN) and ``gen`` (Dec's GAN term)."""
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar, self.randn(*mu.shape))
        z_p = self.randn(len(x), self.latent_dim)
        features, logits = self.discriminate(torch.cat([x, self.decoder(torch.cat([z, z_p]))]))
        f_real, f_recon, _ = features.chunk(3)
        d_real, d_recon, d_prior = logits.chunk(3)
        prior, llike = gaussian_kl(mu, logvar).mean(), feature_nll(f_recon, f_real)
        gan, gen = gan_loss(d_real, d_recon, d_prior), generator_loss(d_recon, d_prior, self.hparams.gen_loss)
        return {"encoder": prior + llike, "decoder": self.hparams.gamma * llike + gen, "discriminator": gan,
                "prior": prior, "llike": llike, "gan": gan, "gen": gen}

    def own_gradients(self, losses: dict[str, Tensor], scale: float = 1.0) -> list[tuple[Tensor, Tensor]]:
        """(parameter, gradient) of every network's parameters, each from its own network's loss only
        (the losses multiplied by ``scale`` first: the gradient scaler's scale under float16)."""
        pairs = []
        for name in self.NETS:
            params = [p for p in getattr(self, name).parameters() if p.requires_grad]
            grads = torch.autograd.grad(losses[name] * scale, params, retain_graph=True, materialize_grads=True)
            pairs += zip(params, grads)
        return pairs

    def vaegan_phase(self, x: Tensor) -> dict[str, Tensor]:
        """One step of the three optimisers from one forward pass, each by its own loss (Algorithm 1)."""
        with self.phase(*self.NETS) as update:
            losses = self.losses(x)
            scale = self.loss_scale()
            # a loss whose gradient on each parameter is its own network's gradient
            update(self.gradient_loss(self.own_gradients(losses, scale), scale))
        return {name: losses[name].detach() for name in ("prior", "llike", "gan", "gen")}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.vaegan_phase(x)

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        """Pixel MSE of the reconstructions (``loss``; Dis's features change as it trains) and the KL."""
        mu, logvar = self.posterior(x)
        mse = F.mse_loss(self.decode(mu), x)
        return {"loss": mse, "recon_mse": mse, "kl": gaussian_kl(mu, logvar).mean()}
