"""Plain autoencoder trained with pixel MSE; samples decode a Gaussian fitted to training codes."""

from __future__ import annotations

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

    def optimizer_groups(self):
        return {"autoencoder": self.parameters()}

    def training_phases(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return self.reconstruction_phase(x)
