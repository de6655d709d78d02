"""A full-covariance Gaussian fitted to the codes: the default sampler of plain autoencoders."""

from __future__ import annotations

import torch
from torch import Tensor

from aegen.samplers.base import Combine, Sampler


class GaussianSampler(Sampler):
    """N(mean, L L^T) with the mean and covariance of the training codes; N(0, I) until fitted.

    Fitted from streamed sufficient statistics (count, sum, sum of outer products, in float64):
    ``update(z)`` per batch, ``fit_updates(reduce)`` at the end, where ``reduce`` sums them over
    DDP processes so every process ends with the same parameters. A covariance that is not
    positive definite (after a 1e-6 relative ridge) keeps its variances only.
    """

    name = "gaussian"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale_tril", torch.eye(dim))
        self._stats: Tensor | None = None  # [count, sum (D), sum of outer products (D*D)], float64

    @torch.no_grad()
    def update(self, codes: Tensor) -> None:
        z = self.check_codes(codes).double()
        stats = torch.cat([z.new_tensor([len(z)]), z.sum(0), (z.T @ z).flatten()])
        self._stats = stats if self._stats is None else self._stats + stats

    @torch.no_grad()
    def fit_updates(self, reduce: Combine | None = None, gather: Combine | None = None) -> None:
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

    def fit(self, codes: Tensor) -> None:
        self._stats = None
        self.update(codes)
        self.fit_updates()

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.dim, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + eps @ self.scale_tril.T
