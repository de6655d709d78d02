"""ACAI: adversarially constrained autoencoder interpolation (Berthelot, Raffel, Roy & Goodfellow, 2019).

A critic regresses the mixing coefficient alpha in [0, 0.5] of decoded interpolants
x_alpha = Dec(alpha * z1 + (1 - alpha) * z2); the autoencoder learns to reconstruct and to make
its interpolants look like data to the critic (critic output 0):

    L_AE     = ||x - Dec(Enc(x))||^2 + lambda * ||C(x_alpha)||^2                 (lambda = 0.5)
    L_critic = ||C(x_alpha) - alpha||^2 + ||C(gamma * x + (1 - gamma) * Dec(Enc(x)))||^2   (gamma = 0.2)

The second critic term shows it blends of real images and reconstructions, which must read
as 0, so the critic cannot win by spotting reconstructions alone. Partners z2 are the batch in
reverse order, as in the reference code; the critic has the encoder's architecture and its
output is averaged over its last layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model


@register_model("acai")
class ACAI(GenerativeAE):
    """ACAI: an autoencoder whose interpolants a critic cannot tell from data."""

    def __init__(self, lam: float = 0.5, gamma: float = 0.2, lr: float = 1e-3, **kwargs) -> None:
        """
        Args:
            lam: weight of the critic term in the autoencoder loss (paper 0.5).
            gamma: blend of real images and reconstructions shown to the critic (paper 0.2).
            lr: Adam learning rate of autoencoder and critic (paper 1e-4; 1e-3 here, like the other
                models, so small data trains in minutes on a CPU).
        """
        super().__init__(lr=lr, **kwargs)
        self.encoder = ConvEncoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.critic_net = ConvEncoder(self.img_shape, self.latent_dim, width=self.hparams.width)

    def critic(self, x: Tensor) -> Tensor:
        """The critic's estimate of the mixing coefficient of each image, (B,)."""
        return self.critic_net(x).mean(1)

    def optimizer_groups(self):
        return {"autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()],
                "critic": self.critic_net.parameters()}

    def interpolants(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Decoded mixes of each code with the batch's reversed codes, and their alpha ~ U(0, 0.5)."""
        alpha = 0.5 * torch.rand(len(z), generator=self.noise, device=self.device)
        mixed = alpha[:, None] * z + (1 - alpha[:, None]) * z.flip(0)
        return self.decode(mixed), alpha

    def autoencoder_phase(self, x: Tensor) -> dict[str, Tensor]:
        with self.phase("autoencoder") as update:
            z = self.encode(x)
            recon = self.decode(z)
            x_alpha, alpha = self.interpolants(z)
            mse = F.mse_loss(recon, x)
            fool = self.critic(x_alpha).pow(2).mean()
            update(mse + self.hparams.lam * fool)
        return {"recon": mse.detach(), "ae_critic": fool.detach()}, recon.detach(), x_alpha.detach(), alpha

    def critic_phase(self, x: Tensor, recon: Tensor, x_alpha: Tensor, alpha: Tensor) -> dict[str, Tensor]:
        with self.phase("critic") as update:
            gamma = self.hparams.gamma
            loss = F.mse_loss(self.critic(x_alpha), alpha) + self.critic(gamma * x + (1 - gamma) * recon).pow(2).mean()
            return {"critic": update(loss)}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        losses, recon, x_alpha, alpha = self.autoencoder_phase(x)
        return {**losses, **self.critic_phase(x, recon, x_alpha, alpha)}
