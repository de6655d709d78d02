"""Latent-space tools that work on any model through the public API (encode/decode)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn


def lerp(z1: Tensor, z2: Tensor, steps: int) -> Tensor:
    """Linear interpolation: (B, D), (B, D) -> (B, steps, D); step 0 is z1, the last is z2."""
    t = torch.linspace(0, 1, steps, device=z1.device, dtype=z1.dtype).view(1, steps, 1)
    return z1.unsqueeze(1) * (1 - t) + z2.unsqueeze(1) * t


def slerp(z1: Tensor, z2: Tensor, steps: int, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation (Shoemake); falls back to lerp where the codes are parallel."""
    t = torch.linspace(0, 1, steps, device=z1.device, dtype=z1.dtype).view(1, steps, 1)
    cos = (nn.functional.normalize(z1, dim=-1) * nn.functional.normalize(z2, dim=-1)).sum(-1)
    omega = torch.acos(cos.clamp(-1 + eps, 1 - eps)).view(-1, 1, 1)
    so = torch.sin(omega)
    out = (torch.sin((1 - t) * omega) * z1.unsqueeze(1) + torch.sin(t * omega) * z2.unsqueeze(1)) / so
    return torch.where(so.abs() < 1e-4, lerp(z1, z2, steps), out)


def traverse_dims(
    center: Tensor, scale: Tensor, steps: int, span: float, dims: Sequence[int] | None = None
) -> Tensor:
    """Codes that sweep one dimension at a time: centre (D,), scale (D,) -> (rows, steps, D).

    Row ``r`` moves dimension ``dims[r]`` (default: every dimension, in order) evenly over
    ``center ± span * scale`` in ``steps`` steps; the other dimensions stay at the centre.
    """
    if steps < 2:
        raise ValueError(f"a traversal needs at least 2 steps, got {steps}")
    dims = list(range(len(center))) if dims is None else list(dims)
    bad = [d for d in dims if not 0 <= d < len(center)]
    if bad:
        raise ValueError(f"code dimension {bad[0]} does not exist: codes have {len(center)} dimensions")
    offsets = torch.linspace(-span, span, steps, device=center.device, dtype=center.dtype)
    codes = center.expand(len(dims), steps, len(center)).clone()
    for row, dim in enumerate(dims):
        codes[row, :, dim] = center[dim] + offsets * scale[dim]
    return codes


def neighbour_path(codes: Tensor, start: int, end: int, k: int = 10) -> list[int]:
    """Indices of the shortest path from ``start`` to ``end`` through the k-nearest-neighbour graph
    of ``codes`` (N, D): interpolation that stays on the data, as in GAIA's Figure 0."""
    from scipy.sparse.csgraph import dijkstra
    from sklearn.neighbors import kneighbors_graph

    graph = kneighbors_graph(codes.detach().cpu().double().numpy(), min(k, len(codes) - 1), mode="distance")
    graph = graph.maximum(graph.T)  # undirected
    _, predecessors = dijkstra(graph, indices=start, return_predecessors=True)
    path = [end]
    while path[-1] != start:
        previous = predecessors[path[-1]]
        if previous < 0:
            raise ValueError(f"no path between items {start} and {end} in the {k}-neighbour graph; use a larger k")
        path.append(int(previous))
    return path[::-1]


def path_codes(codes: Tensor, path: Sequence[int], steps: int) -> Tensor:
    """``steps`` codes spaced evenly (by arc length) along the polyline through ``codes[path]``."""
    nodes = codes[list(path)]
    if len(nodes) == 1:
        return nodes.expand(steps, -1).clone()
    lengths = (nodes[1:] - nodes[:-1]).norm(dim=1)
    cumulative = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    t = torch.linspace(0, float(cumulative[-1]), steps, device=codes.device, dtype=codes.dtype)
    segment = torch.searchsorted(cumulative, t, right=True).clamp(1, len(nodes) - 1) - 1
    frac = ((t - cumulative[segment]) / lengths[segment].clamp_min(1e-12)).clamp(0, 1).unsqueeze(1)
    return nodes[segment] * (1 - frac) + nodes[segment + 1] * frac


def attribute_table(datamodule, labels: Tensor) -> tuple[list[str], Tensor]:
    """Per-image attributes as (names, float matrix (N, A)) for attribute vectors: a dataset's named
    binary attributes (CelebA: ``Smiling``, …), else one indicator per factor value (``letter=3``),
    else one per class (``class=3``)."""
    names = getattr(datamodule, "attribute_names", None)
    if names:
        return list(names), labels.float()
    factor_names = getattr(datamodule, "factor_names", None)
    if factor_names and labels.dim() == 2:
        columns = [(f"{name}={v}", labels[:, k] == v) for k, name in enumerate(factor_names)
                   for v in range(datamodule.factor_sizes[k])]
    else:
        classes = datamodule.class_labels(labels)
        if classes is None:
            raise ValueError("this dataset has no attributes, factors or classes to build attribute vectors from")
        columns = [(f"class={c}", classes == c) for c in range(datamodule.num_classes)]
    return [name for name, _ in columns], torch.stack([col for _, col in columns], dim=1).float()


def attribute_vectors(codes: Tensor, attributes: Tensor) -> Tensor:
    """Least-squares regression of codes (N, D) on attributes (N, A) with an intercept: one
    direction per attribute (A, D), the change of the code per unit of that attribute."""
    from sklearn.linear_model import LinearRegression

    fit = LinearRegression().fit(attributes.detach().cpu().double().numpy(), codes.detach().cpu().double().numpy())
    return torch.as_tensor(fit.coef_.T, dtype=codes.dtype, device=codes.device)


@torch.no_grad()
def encode_all(model, images: Tensor, batch_size: int = 256, device: torch.device | str | None = None) -> Tensor:
    """Codes (N, D) of images (N, C, H, W), encoded ``batch_size`` at a time on the model's device
    and returned on ``device`` (default: the model's device)."""
    device = model.device if device is None else device
    return torch.cat([model.encode(x.to(model.device)).flatten(1).to(device) for x in images.split(batch_size)])


@torch.no_grad()
def encode_batches(model, batches: Iterable[tuple[Tensor, Tensor]], max_items: int = 50_000) -> Tensor:
    """Eval-mode codes (N, D) of (up to ``max_items``) images from an iterable of (x, y) batches,
    e.g. a training dataloader; the model's training mode is restored afterwards."""
    was_training, codes, seen = model.training, [], 0
    model.eval()
    for x, _ in batches:
        codes.append(model.encode(x.to(model.device)).flatten(1))
        seen += len(x)
        if seen >= max_items:
            break
    model.train(was_training)
    if not codes:
        raise ValueError("no images to encode")
    return torch.cat(codes)


@torch.no_grad()
def generator_interpolation(model, pairs: int, steps: int, spherical: bool = False,
                            generator: torch.Generator | None = None) -> Tensor:
    """Decoded linear (or spherical) paths between pairs of the model's generated codes, for models without
    an encoder: (pairs, steps, C, H, W); each path's first and last images are samples of the model."""
    codes = model.generated_codes(2 * pairs, generator)
    path = (slerp if spherical else lerp)(codes[:pairs], codes[pairs:], steps)
    return model.decode(path.flatten(0, 1)).unflatten(0, (pairs, steps))
