"""Building blocks every model reuses: conv encoders/decoders, MLPs, latent discriminators.

The conv nets handle square images of 16, 32, 64 or 128 px with 1 or 3 channels: stride-2
4x4 convolutions halve the resolution down to a 4x4 feature map (and back up in the decoder).
No method-specific logic lives here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
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


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers side by side, in one batched matmul: (M, B, in) ->
    (M, B, out); ``member=i`` applies layer i alone to (B, in). Each is initialised like nn.Linear."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default init for weights and biases
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: Tensor, member: int | None = None) -> Tensor:
        if member is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.addmm(self.bias[member], x, self.weight[member])


class EnsembleMLP(nn.Module):
    """``members`` independent MLPs (``in_dim -> hidden... -> out_dim``, activation between layers)
    trained side by side: (M, B, in) -> (M, B, out) in a few batched matmuls, or one member
    (``member=i``) on (B, in). As fast as one MLP for small widths, so many restarts are cheap."""

    def __init__(self, members: int, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu") -> None:
        super().__init__()
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in zip(dims, dims[1:]))
        self.activation = _activation(activation)
        self.members = members

    def forward(self, x: Tensor, member: int | None = None) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x if i == 0 else self.activation(x), member)
        return x


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "IMAGE_SIZES",
    "ConvDecoder",
    "ConvEncoder",
    "EnsembleLinear",
    "EnsembleMLP",
    "LatentDiscriminator",
    "MLP",
    "MunitDecoder",
    "MunitEncoder",
    "ResBlock",
    "check_image_shape",
    "conv_widths",
    "count_parameters",
]


# --------------------------------------------------------------------------- MUNIT-style nets
# The residual / AdaIN architecture of GAIA's reference code (after MUNIT, Huang et al. 2018):
# a content path (stride-2 convs + residual blocks) and a style path (convs + global pooling),
# decoded by residual blocks whose instance-norm scale and shift come from the style code.


class ResBlock(nn.Module):
    """Two 3x3 convs with instance norm (or AdaIN when ``adaptive``) and a skip connection."""

    def __init__(self, channels: int, adaptive: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect")
        self.norm1 = nn.InstanceNorm2d(channels, affine=not adaptive)
        self.norm2 = nn.InstanceNorm2d(channels, affine=not adaptive)
        self.adaptive = adaptive

    def _norm(self, norm: nn.Module, h: Tensor, style: tuple[Tensor, Tensor] | None) -> Tensor:
        h = norm(h)
        if self.adaptive:
            scale, shift = style
            h = h * scale[:, :, None, None] + shift[:, :, None, None]
        return h

    def forward(self, x: Tensor, style: tuple[Tensor, Tensor] | None = None) -> Tensor:
        h = self._norm(self.norm1, self.conv1(x), style).relu()
        return x + self._norm(self.norm2, self.conv2(h), style)


class MunitEncoder(nn.Module):
    """Image -> (style (B, style_dim), content): content is a vector of ``content_dim`` after a
    linear layer, or the residual feature map when ``content_dim`` is None."""

    def __init__(self, img_shape: Sequence[int], content_dim: int | None, style_dim: int = 8, width: int = 64,
                 n_down: int = 2, n_res: int = 4) -> None:
        super().__init__()
        channels, size, _ = check_image_shape(img_shape)
        content: list[nn.Module] = [nn.Conv2d(channels, width, 7, 1, 3, padding_mode="reflect"), nn.ReLU()]
        c = width
        for _ in range(n_down):
            content += [nn.Conv2d(c, 2 * c, 4, 2, 1, padding_mode="reflect"), nn.ReLU()]
            c *= 2
        self.content = nn.Sequential(*content)
        self.res = nn.ModuleList(ResBlock(c) for _ in range(n_res))
        self.feature_channels, self.feature_size = c, size // 2**n_down
        self.content_head = None if content_dim is None else nn.Linear(c * self.feature_size**2, content_dim)
        style: list[nn.Module] = [nn.Conv2d(channels, width, 7, 1, 3, padding_mode="reflect"), nn.ReLU()]
        s = width
        for i in range(4):  # two widening and two plain stride-2 convs, then global pooling
            out = 2 * s if i < 2 else s
            style += [nn.Conv2d(s, out, 4, 2, 1, padding_mode="reflect"), nn.ReLU()]
            s = out
        style += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(s, style_dim, 1)]
        self.style = nn.Sequential(*style)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.content(x)
        for block in self.res:
            h = block(h)
        content = h if self.content_head is None else self.content_head(h.flatten(1))
        return self.style(x).flatten(1), content


class MunitDecoder(nn.Module):
    """(style, content) -> image in [-1, 1]: AdaIN residual blocks (scale/shift from an MLP of the
    style code), then upsample + 5x5 conv + layer norm stages and a 7x7 output conv."""

    def __init__(self, img_shape: Sequence[int], content_dim: int | None, style_dim: int = 8, width: int = 64,
                 n_up: int = 2, n_res: int = 4) -> None:
        super().__init__()
        channels, size, _ = check_image_shape(img_shape)
        c = width * 2**n_up
        self.feature_channels, self.feature_size = c, size // 2**n_up
        self.content_head = None if content_dim is None else nn.Linear(content_dim, c * self.feature_size**2)
        self.style_mlp = MLP(style_dim, [c, c], 2 * c * n_res)
        self.res = nn.ModuleList(ResBlock(c, adaptive=True) for _ in range(n_res))
        layers: list[nn.Module] = []
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c // 2, 5, 1, 2, padding_mode="reflect"),
                       nn.GroupNorm(1, c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.Conv2d(c, channels, 7, 1, 3, padding_mode="reflect"), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, style: Tensor, content: Tensor) -> Tensor:
        if self.content_head is not None:
            content = self.content_head(content).view(-1, self.feature_channels, self.feature_size, self.feature_size)
        params = self.style_mlp(style).chunk(2 * len(self.res), dim=1)
        h = content
        for i, block in enumerate(self.res):
            h = block(h, (params[2 * i], params[2 * i + 1]))
        return self.up(h)


# --------------------------------------------------------------------------- joint (x, z) discriminators


class JointDiscriminator(nn.Module):
    """(image, code) -> one logit: conv features of x and an MLP of z, concatenated, then a joint MLP
    (the discriminator of ALI/BiGAN, the adversary T(x, z) of AVB); ``dropout`` after every hidden layer."""

    def __init__(self, img_shape: Sequence[int], latent_dim: int, width: int = 32, features: int = 256,
                 hidden: Sequence[int] = (256,), dropout: float = 0.0) -> None:
        super().__init__()
        self.x_net = nn.Sequential(ConvEncoder(img_shape, features, width=width), _activation("leaky_relu"),
                                   nn.Dropout(dropout))
        self.z_net = nn.Sequential(MLP(latent_dim, [features], features, activation="leaky_relu", dropout=dropout),
                                   _activation("leaky_relu"), nn.Dropout(dropout))
        self.joint = MLP(2 * features, hidden, 1, activation="leaky_relu", dropout=dropout)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.joint(torch.cat([self.x_net(x), self.z_net(z)], dim=1)).squeeze(-1)
