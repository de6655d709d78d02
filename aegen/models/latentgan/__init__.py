"""LatentGAN autoencoder (Kalwar, Aich & Dixit): ``model`` (the method, its options and presets),
``nets`` (the paper's networks) and ``restarts`` (latent GANs trained side by side)."""

from aegen.models.latentgan.model import LatentGAN
from aegen.models.latentgan.nets import DiscriminatorQ, StridedConvEncoder, UpsampleConvDecoder, autoencoder, table2_widths
from aegen.models.latentgan.restarts import Restarts

__all__ = ["DiscriminatorQ", "LatentGAN", "Restarts", "StridedConvEncoder", "UpsampleConvDecoder", "autoencoder",
           "table2_widths"]
