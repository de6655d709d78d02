"""A Gaussian mixture fitted to the codes with scikit-learn, stored as tensors."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from aegen.samplers.base import Sampler

Covariance = Literal["full", "diag", "tied", "spherical"]


class GMMSampler(Sampler):
    """scikit-learn's ``GaussianMixture`` fitted to the codes (k-means start, ``reg_covar=1e-5``),
    kept as mixture weights, means and Cholesky factors of the component covariances."""

    name = "gmm"

    def __init__(self, dim: int, components: int = 10, covariance: Covariance = "full", seed: int = 0) -> None:
        """
        Args:
            dim: size of the codes.
            components: number of mixture components.
            covariance: covariance type of the components (full, diag, tied or spherical, as scikit-learn's).
            seed: random state of scikit-learn's initialisation.
        """
        super().__init__(dim, components=components, covariance=covariance, seed=seed)
        if components < 1:
            raise ValueError(f"components must be a positive integer, got {components}")
        if covariance not in get_args(Covariance):
            raise ValueError(f"unknown covariance {covariance!r}; choose one of: {', '.join(get_args(Covariance))}")
        self.components, self.covariance, self.seed = components, covariance, seed
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, dim))
        self.register_buffer("scale_tril", torch.eye(dim).expand(components, dim, dim).clone())

    @torch.no_grad()
    def fit(self, codes: Tensor) -> None:
        from sklearn.mixture import GaussianMixture

        codes, k, dim = self.check_codes(codes), self.components, self.dim
        if len(codes) < k:
            raise ValueError(f"a {k}-component mixture needs at least {k} codes, got {len(codes)}")
        gmm = GaussianMixture(k, covariance_type=self.covariance, random_state=self.seed, reg_covar=1e-5)
        gmm.fit(codes.double().cpu().numpy())
        cov = torch.as_tensor(gmm.covariances_, dtype=torch.float64)
        cov = {"full": lambda c: c, "tied": lambda c: c.expand(k, dim, dim),
               "diag": torch.diag_embed, "spherical": lambda c: c.view(k, 1, 1) * torch.eye(dim, dtype=c.dtype)}[
            self.covariance](cov)
        self.weights.copy_(torch.as_tensor(gmm.weights_))
        self.means.copy_(torch.as_tensor(gmm.means_))
        self.scale_tril.copy_(torch.linalg.cholesky(cov))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, 1, generator=generator, device=self.means.device)
        return self.means[component] + (self.scale_tril[component] @ eps).squeeze(-1)
