"""Building blocks every model reuses: conv encoders/decoders, MLPs, latent discriminators.

The conv nets handle square images of 16, 32, 64 or 128 px with 1 or 3 channels: stride-2
4x4 convolutions halve the resolution down to a 4x4 feature map (and back up in the decoder).
No method-specific logic lives here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

IMAGE_SIZES = (16, 32, 64, 128)
NORMS = ("batch", "instance", "none")
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "silu": nn.SiLU}


def check_image_shape(img_shape: Sequence[int]) -> tuple[int, int, int]:
    """Validate a (channels, height, width) shape for the conv nets; raise a clear ValueError."""
    if len(img_shape) != 3:
        raise ValueError(f"img_shape must be (channels, height, width), got {tuple(img_shape)}")
    c, h, w = (int(v) for v in img_shape)
    if c not in (1, 3):
        raise ValueError(f"the conv nets take 1 or 3 image channels, got {c}")
    if h != w or h not in IMAGE_SIZES:
        raise ValueError(
            f"the conv nets take square images of {', '.join(map(str, IMAGE_SIZES))} px, got {h}x{w}; "
            "set --data.image_size to one of these"
        )
    return c, h, w


def conv_widths(size: int, width: int, max_width: int, levels: int | None = None) -> list[int]:
    """Channel widths of the stride-2 stages: down to 4x4 by default, or ``levels`` stages."""
    most = int(math.log2(size)) - 2
    levels = most if levels is None else levels
    if not 1 <= levels <= most:
        raise ValueError(f"levels must be between 1 and {most} for {size} px images, got {levels}")
    return [min(width * 2**i, max_width) for i in range(levels)]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of: {', '.join(NORMS)}")


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}") from None


class ConvEncoder(nn.Module):
    """Image (C, H, W) -> vector of ``out_dim``: stride-2 convs down to 4x4, then a linear head.

    ``features`` (the conv trunk, output ``(feature_channels, 4, 4)``) is usable on its own,
    e.g. for perceptual losses. With ``out_dim=None`` there is no linear head and the encoder
    returns the feature map (after ``levels`` stages if given): an encoder without a linear
    bottleneck, as in BEGAN-style autoencoding discriminators.
    """

    def __init__(
        self,
        img_shape: Sequence[int],
        out_dim: int | None,
        width: int = 32,
        max_width: int = 256,
        norm: str = "batch",
        activation: str = "leaky_relu",
        levels: int | None = None,
    ) -> None:
        super().__init__()
        channels, size, _ = check_image_shape(img_shape)
        widths = conv_widths(size, width, max_width, levels)
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            # no normalisation on the first layer (DCGAN practice)
            layers += [nn.Conv2d(channels, w, 4, 2, 1), _norm("none" if i == 0 else norm, w), _activation(activation)]
            channels = w
        self.features = nn.Sequential(*layers)
        self.feature_channels = channels
        self.feature_size = size // 2 ** len(widths)
        self.head = nn.Identity() if out_dim is None else nn.Linear(channels * self.feature_size**2, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x)
        return features if isinstance(self.head, nn.Identity) else self.head(features.flatten(1))


class ConvDecoder(nn.Module):
    """Vector of ``in_dim`` -> image (C, H, W) in [-1, 1]: linear to 4x4, stride-2 transposed convs, tanh.

    With ``in_dim=None`` it takes the feature map of a ``ConvEncoder(out_dim=None)`` with the same
    ``width``, ``max_width`` and ``levels`` instead of a vector.
    """

    def __init__(
        self,
        img_shape: Sequence[int],
        in_dim: int | None,
        width: int = 32,
        max_width: int = 256,
        norm: str = "batch",
        activation: str = "relu",
        levels: int | None = None,
    ) -> None:
        super().__init__()
        out_channels, size, _ = check_image_shape(img_shape)
        widths = conv_widths(size, width, max_width, levels)[::-1]
        self.feature_channels = widths[0]
        self.feature_size = size // 2 ** len(widths)
        if in_dim is None:
            self.head = nn.Identity()
        else:
            self.head = nn.Sequential(nn.Linear(in_dim, widths[0] * self.feature_size**2), _activation(activation))
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1), _norm(norm, w_out), _activation(activation)]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1), nn.Tanh()]
        self.features = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() == 2:
            z = self.head(z).view(z.shape[0], self.feature_channels, self.feature_size, self.feature_size)
        return self.features(z)


class MLP(nn.Sequential):
    """Fully connected net: ``in_dim -> hidden... -> out_dim`` with an activation between layers."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        layers: list[nn.Module] = []
        for h in hidden:
            layers.append(nn.Linear(in_dim, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_dim = h
        layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)


class LatentDiscriminator(MLP):
    """Code -> one real/fake logit: an MLP with LeakyReLU, as in adversarial autoencoders."""

    def __init__(self, latent_dim: int, hidden: Sequence[int] = (512, 512)) -> None:
        super().__init__(latent_dim, hidden, 1, activation="leaky_relu")

    def forward(self, z: Tensor) -> Tensor:
        return super().forward(z).squeeze(-1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "IMAGE_SIZES",
    "ConvDecoder",
    "ConvEncoder",
    "LatentDiscriminator",
    "MLP",
    "check_image_shape",
    "conv_widths",
    "count_parameters",
]
