"""Latent-space tools that work on any model through the public API (encode/decode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

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


class CodeGaussian(nn.Module):
    """A full-covariance Gaussian fitted to training codes: the post-hoc sampler of plain AEs.

    Call ``update(z)`` on codes during an epoch and ``fit(reduce)`` at its end; ``reduce`` sums a
    tensor over DDP ranks so every rank ends with the same parameters. Until fitted it is N(0, I).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale_tril", torch.eye(dim))
        self._stats: Tensor | None = None  # [count, sum (D), sum of outer products (D*D)], float64

    @torch.no_grad()
    def update(self, z: Tensor) -> None:
        z = z.detach().flatten(1).double()
        stats = torch.cat([z.new_tensor([len(z)]), z.sum(0), (z.T @ z).flatten()])
        self._stats = stats if self._stats is None else self._stats + stats

    @torch.no_grad()
    def fit(self, reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        if self._stats is None:
            return
        stats = reduce(self._stats) if reduce is not None else self._stats
        self._stats = None
        n, d = stats[0], self.dim
        if n < 2:
            return
        mean = stats[1 : 1 + d] / n
        cov = (stats[1 + d :].view(d, d) - n * torch.outer(mean, mean)) / (n - 1)
        cov = cov + 1e-6 * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(d, dtype=cov.dtype, device=cov.device)
        tril, info = torch.linalg.cholesky_ex(cov)
        if info.item() != 0:  # not positive definite: keep the variances only
            tril = torch.diag(cov.diagonal().clamp_min(1e-12).sqrt())
        self.mean.copy_(mean.to(self.mean))
        self.scale_tril.copy_(tril.to(self.scale_tril))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.dim, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + eps @ self.scale_tril.T


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
