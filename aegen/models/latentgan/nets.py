"""The LatentGAN paper's networks (Tables 2-4): the strided-conv encoder, the upsampling decoder,
D/Q on codes, and Table 2's channels scaled to any image size."""

from __future__ import annotations

import math
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from aegen.nets import ConvDecoder, ConvEncoder, EnsembleLinear, EnsembleMLP


def table2_widths(size: int, width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Table 2's encoder and decoder channels for any power-of-two image size: k4 s2 convs down to
    1x1 (width / 2, width, ..., at most 4 x width), then decoder blocks from 4x4 up (..., 2 x width,
    width). At 32 px and width 32: exactly Table 2, (16, 32, 64, 128, 128) and (128, 64, 32)."""
    levels = int(math.log2(size))
    encoder = tuple(min(max(width // 2, 1) * 2**i, 4 * width) for i in range(levels))
    decoder = tuple(min(width * 2**i, 4 * width) for i in reversed(range(levels - 2)))
    return encoder, decoder


class StridedConvEncoder(nn.Sequential):
    """The paper's encoder: 4x4 stride-2 convs with ReLU ("c4-oN-s2-r"), then a linear layer to the code."""

    def __init__(self, img_shape: tuple[int, int, int], channels: tuple[int, ...], out_dim: int) -> None:
        c, size, _ = img_shape
        if size % 2 ** len(channels):
            raise ValueError(f"an encoder with {len(channels)} stride-2 convs needs an image size divisible by "
                             f"{2 ** len(channels)}, got {size}: pass --data.image_size {2 ** len(channels)}")
        layers: list[nn.Module] = []
        for w in channels:
            layers += [nn.Conv2d(c, w, 4, 2, 1), nn.ReLU()]
            c = w
        side = size // 2 ** len(channels)
        super().__init__(*layers, nn.Flatten(), nn.Linear(c * side * side, out_dim))


class UpsampleConvDecoder(nn.Sequential):
    """The paper's decoder: ReLU, the code as a 1x1 map upsampled x4, then conv3 + BN + ReLU blocks
    each after a x2 bilinear upsample ("u2-c3-oN-p1-bnN-r"), a final conv3 to the image and tanh."""

    def __init__(self, img_shape: tuple[int, int, int], channels: tuple[int, ...], in_dim: int) -> None:
        out_channels, size, _ = img_shape
        made = 4 * 2 ** len(channels)
        if size != made:
            raise ValueError(f"a decoder with {len(channels)} blocks makes {made}x{made} images, got {size}x{size}: "
                             f"pass --data.image_size {made}")
        layers: list[nn.Module] = [nn.ReLU(), nn.Unflatten(1, (in_dim, 1, 1)), nn.Upsample(scale_factor=4, mode="bilinear")]
        c = in_dim
        for i, w in enumerate(channels):
            if i:
                layers.append(nn.Upsample(scale_factor=2, mode="bilinear"))
            layers += [nn.Conv2d(c, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        layers += [nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(c, out_channels, 3, 1, 1), nn.Tanh()]
        super().__init__(*layers)


def autoencoder(arch: Literal["table2", "conv"], img_shape: tuple[int, int, int], latent_dim: int, width: int,
                encoder_channels: tuple[int, ...] | None, decoder_channels: tuple[int, ...] | None,
                ) -> tuple[nn.Module, nn.Module]:
    """(Enc, Dec): the paper's nets with the given channels (None: ``table2_widths`` of the image
    size and ``width``), or aegen.nets' conv autoencoder (``arch="conv"``)."""
    if arch == "conv":
        return ConvEncoder(img_shape, latent_dim, width=width), ConvDecoder(img_shape, latent_dim, width=width)
    scaled_encoder, scaled_decoder = table2_widths(img_shape[1], width)
    encoder = StridedConvEncoder(img_shape, encoder_channels or scaled_encoder, latent_dim)
    return encoder, UpsampleConvDecoder(img_shape, decoder_channels or scaled_decoder, latent_dim)


class DiscriminatorQ(nn.Module):
    """D and Q on codes, for every restart side by side: a shared ReLU MLP trunk, then one linear
    layer to a real/fake logit, K logits per categorical code and one output per continuous code
    (Table 2, column 3: "fc-o1-sig, fc-o2, fc-o10")."""

    def __init__(self, latent_dim: int, hidden: tuple[int, ...], num_categorical: int, num_categories: int,
                 num_continuous: int, restarts: int = 1) -> None:
        super().__init__()
        self.trunk = EnsembleMLP(restarts, latent_dim, hidden[:-1], hidden[-1])
        self.sizes = [1, num_categorical * num_categories, num_continuous]  # the heads' output sections
        self.heads = EnsembleLinear(restarts, hidden[-1], sum(self.sizes))
        self.num_categories = num_categories

    def forward(self, z: Tensor, member: int | None = None) -> tuple[Tensor, list[Tensor], Tensor]:
        """Codes (restarts, B, D), or (B, D) for restart ``member`` -> (real/fake logits (..., B),
        categorical logits [(..., B, K)...], continuous (..., B, L))."""
        out = self.heads(F.relu(self.trunk(z, member)), member)
        logit, cats, u = out.split(self.sizes, -1)
        return logit.squeeze(-1), list(cats.split(self.num_categories, -1)), u
