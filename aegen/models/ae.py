"""Plain autoencoder trained with pixel MSE; samples decode a Gaussian fitted to training codes."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from aegen.models.base import GenerativeAE
from aegen.nets import ConvDecoder, ConvEncoder
from aegen.registry import register_model


@register_model("ae")
class AE(GenerativeAE):
    """Autoencoder (MSE); samples from a Gaussian fitted to the training codes."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = ConvEncoder(self.img_shape, self.latent_dim, width=self.hparams.width)
        self.decoder = ConvDecoder(self.img_shape, self.latent_dim, width=self.hparams.width)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def optimizer_groups(self):
        return {"autoencoder": self.parameters()}

    def reconstruction_phase(self, x: Tensor) -> dict[str, Tensor]:
        with self.phase("autoencoder") as update:
            return {"recon": update(F.mse_loss(self.reconstruct(x), x))}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.reconstruction_phase(x)
