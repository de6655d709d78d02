"""InfoGAN's generator inputs, drawn the same way by InfoGAN and the LatentGAN autoencoder."""

from __future__ import annotations

import torch
from torch import Tensor


class InfoCodes:
    """Draws of an InfoGAN generator's inputs: noise ~ N(0, I), categorical codes c ~ Cat(K) and
    continuous codes u ~ U(-range, range).

    A model mixes this in and sets ``noise_dim``, ``num_categories`` (K), ``num_continuous``,
    ``continuous_range`` and, for several categorical codes, ``num_categorical`` (c then has a last
    dimension of that size; None: one categorical code, c has no last dimension).
    """

    noise_dim: int
    num_categories: int
    num_continuous: int
    continuous_range: float
    num_categorical: int | None = None

    def continuous_codes(self, shape: tuple[int, ...], generator: torch.Generator | None,
                         device: torch.device | str) -> Tensor:
        """u ~ U(-continuous_range, continuous_range) of shape (*shape, num_continuous)."""
        return (torch.rand(*shape, self.num_continuous, generator=generator, device=device) * 2 - 1) * self.continuous_range

    def draw_codes(self, shape: tuple[int, ...], generator: torch.Generator | None,
                   device: torch.device | str) -> tuple[Tensor, Tensor, Tensor]:
        """(noise (*shape, noise_dim), c (*shape[, num_categorical]), u (*shape, num_continuous)),
        drawn from ``generator`` in that order."""
        categorical = shape if self.num_categorical is None else (*shape, self.num_categorical)
        noise = torch.randn(*shape, self.noise_dim, generator=generator, device=device)
        c = torch.randint(self.num_categories, categorical, generator=generator, device=device)
        return noise, c, self.continuous_codes(shape, generator, device)

    def sample_codes(
        self,
        n: int,
        category: int | Tensor | None = None,
        continuous: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` draws of G's inputs (see ``draw_codes``) on the model's device, from ``generator``
        (default: the global one).

        ``category`` fixes the first categorical code (an int, or (n,) indices) or, with
        ``num_categorical`` codes, all of them ((n, num_categorical)); ``continuous``
        (n, num_continuous) fixes u.
        """
        device = self.device if generator is None else generator.device
        noise, c, u = self.draw_codes((n,), generator, device)
        if category is not None:
            fixed = torch.as_tensor(category, device=device).long()
            if c.dim() == 1 or fixed.dim() == 2:
                c = fixed.expand(c.shape).clone()
            else:
                c[:, 0] = fixed.expand(n)
            if int(c.min()) < 0 or int(c.max()) >= self.num_categories:
                raise ValueError(f"categories must be in [0, {self.num_categories}), got {fixed.unique().tolist()}")
        if continuous is not None:
            u = torch.as_tensor(continuous, dtype=u.dtype, device=device).expand(n, self.num_continuous)
        return noise.to(self.device), c.to(self.device), u.to(self.device)
