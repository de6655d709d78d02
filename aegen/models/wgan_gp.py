"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein GAN whose critic's Lipschitz constraint is a gradient
penalty, no encoder.

The critic D (no batch norm: the penalty is per sample; layer norm optional) minimises, the paper's
Algorithm 1,

    L = E[D(G(z))] - E[D(x)] + lambda E[(||grad_x^ D(x^)||_2 - 1)^2],  x^ = eps x + (1 - eps) G(z),

eps ~ U[0, 1] per sample; G minimises -E[D(G(z))]. The paper runs n_critic = 5 critic iterations per
generator iteration, each on a new real minibatch. Here each training minibatch is one
``critic_phase``, and every ``n_critic``-th also a ``generator_phase`` (the count survives resuming).
The paper's setting: lambda 10, n_critic 5, Adam lr 1e-4, betas (0, 0.9), batch 64; its reference code
draws a 128-d z ~ N(0, I). The default learning rate is 1e-3 (short CPU runs; ``--preset paper``: 1e-4). The networks are DCGAN's (``DCGAN``, aegen.nets) with the critic's
normalisation removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from aegen.models.dcgan import DCGAN, Prior
from aegen.nets import ConvEncoder
from aegen.registry import register_model


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """E[(||grad D(x^)||_2 - 1)^2] at x^ = eps real + (1 - eps) fake (eps: (B,) in [0, 1]); differentiable
    in the critic's parameters."""
    eps = eps.view(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def layer_norm_critic(critic: ConvEncoder) -> ConvEncoder:
    """``critic`` (built with norm "none") with layer norm over (C, H, W) after each conv but the first."""
    convs = [i for i, m in enumerate(critic.features) if isinstance(m, nn.Conv2d)]
    for i in convs[1:]:
        critic.features[i + 1] = nn.GroupNorm(1, critic.features[i].out_channels)
    return critic


@register_model("wgan_gp")
class WGANGP(DCGAN):
    """WGAN-GP: critic with a gradient penalty, n_critic critic steps per generator step; no encoder."""

    def __init__(
        self,
        latent_dim: int = 128,
        prior: Prior = "normal",
        gp_weight: float = 10.0,
        n_critic: int = 5,
        critic_norm: Literal["none", "layer"] = "none",
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.9),
        **kwargs,
    ) -> None:
        """
        Args:
            latent_dim: size of G's input z (the reference code: 128).
            prior: z ~ N(0, I) ("normal", the reference code) or U(-1, 1) ("uniform").
            gp_weight: lambda, the gradient penalty's weight (paper: 10).
            n_critic: critic steps (minibatches) per generator step (paper: 5).
            critic_norm: the critic's normalisation: none (the reference code's MNIST and CIFAR critics) or
                layer norm (the paper's recommendation in place of batch norm; its 64 px code).
            lr: Adam learning rate of critic and G (paper: 1e-4; 1e-3 by default, so that the 44 generator steps of
                ten epochs on the embedded digits learn digit shapes: at 1e-4 they leave noise).
            betas: Adam betas (paper: (0, 0.9)).
        """
        if gp_weight < 0 or n_critic < 1:
            raise ValueError(f"gp_weight must be non-negative and n_critic at least 1, got {gp_weight}, {n_critic}")
        super().__init__(latent_dim=latent_dim, prior=prior, lr=lr, betas=betas, **kwargs)
        self.gp_weight, self.n_critic = gp_weight, n_critic
        self.critic_steps = 0  # critic steps taken: every n_critic-th is followed by a generator step

    def build_discriminator(self) -> nn.Module:
        """The critic: DCGAN's D without batch norm (or with layer norm), one linear output."""
        critic = ConvEncoder(self.img_shape, 1, width=self.hparams.width, max_width=self.hparams.max_width, norm="none")
        return layer_norm_critic(critic) if self.hparams.critic_norm == "layer" else critic

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """The critic's loss without the penalty: E[D(G(z))] - E[D(x)] (minus the Wasserstein estimate)."""
        return fake.mean() - real.mean()

    def g_loss(self, fake: Tensor) -> Tensor:
        """-E[D(G(z))]."""
        return -fake.mean()

    def optimizer_groups(self):
        return {"critic": self.discriminator.parameters(), "generator": self.generator.parameters()}

    def critic_phase(self, x: Tensor) -> dict[str, Tensor]:
        with self.phase("critic") as update:
            fake = self.decode(self.training_codes(len(x))).detach()
            eps = torch.rand(len(x), generator=self.noise, device=self.device)
            real_out, fake_out = self.discriminate(torch.cat([x, fake])).split(len(x))  # no batch norm: one pass
            wasserstein = -self.d_loss(real_out, fake_out)
            penalty = gradient_penalty(self.discriminate, x, fake, eps)
            update(self.gp_weight * penalty - wasserstein)
        self.critic_steps += 1
        return {"wasserstein": wasserstein.detach(), "gp": penalty.detach()}

    def generator_phase(self, n: int) -> dict[str, Tensor]:
        with self.phase("generator") as update:
            loss = update(self.g_loss(self.discriminate(self.decode(self.training_codes(n)))))
        return {"gen": loss}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses = self.critic_phase(x)
        if self.critic_steps % self.n_critic == 0:
            losses.update(self.generator_phase(len(x)))
        return losses

    def validation_losses(self, x: Tensor) -> dict[str, Tensor]:
        """``loss``: the critic's Wasserstein estimate E[D(x)] - E[D(G(z))] between held-out images and as many
        samples (the paper reports its curve falls as samples improve; the critic keeps training)."""
        wasserstein = -self.d_loss(self.discriminate(x), self.discriminate(self.decode(self.training_codes(len(x)))))
        return {"loss": wasserstein, "wasserstein": wasserstein}

    def training_state(self) -> dict[str, Any]:
        return {"critic_steps": self.critic_steps}

    def load_training_state(self, state: dict[str, Any], mid_epoch: bool) -> None:
        self.critic_steps = int(state.get("critic_steps", self.critic_steps))
