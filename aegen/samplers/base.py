"""The sampler interface: a distribution fitted to a model's codes, whose draws ``sample`` decodes."""

from __future__ import annotations

from itertools import chain
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

Combine = Callable[[Tensor], Tensor]


class Sampler(nn.Module):
    """A distribution over codes of size ``dim``, fitted to a model's training codes.

    ``fit(codes)`` fits it to codes (N, dim); ``sample(n, generator)`` draws codes (n, dim). Its
    state lives in buffers and parameters, so it travels with the model's state dict; ``spec()``
    (name, dim and options) is what a checkpoint records to rebuild it (``aegen.samplers.build``).

    Streaming fit (how a model refits its sampler during training): ``update(codes)`` per batch,
    then ``fit_updates(reduce, gather)``. The default keeps the codes and fits them in one go,
    after ``gather`` (if given) concatenated every process's codes; a sampler with sufficient
    statistics (the Gaussian) sums them over processes with ``reduce`` instead.
    """

    #: the sampler's name in ``aegen.samplers.SAMPLERS``
    name: ClassVar[str] = ""

    def __init__(self, dim: int, **options: Any) -> None:
        """``options``: the subclass's own arguments, recorded by ``spec()`` to rebuild it."""
        super().__init__()
        if dim < 1:
            raise ValueError(f"a sampler needs a positive code size, got {dim}")
        self.dim = dim
        self.options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        self._pending: list[Tensor] = []

    def fit(self, codes: Tensor) -> None:
        """Fit the distribution to codes (N, dim)."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` codes (n, dim) on the sampler's device; ``generator`` (on that device) makes them reproducible."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """What rebuilds this sampler, untrained: ``{"name", "dim", "options"}`` (plain values)."""
        return {"name": self.name, "dim": self.dim, "options": dict(self.options)}

    @property
    def device(self) -> torch.device:
        tensor = next(chain(self.buffers(), self.parameters()), None)
        return torch.device("cpu") if tensor is None else tensor.device

    def check_codes(self, codes: Tensor) -> Tensor:
        """Detached codes (N, dim) on the sampler's device; a ValueError for any other shape."""
        codes = codes.detach().flatten(1)
        if codes.shape[1] != self.dim:
            raise ValueError(f"the {self.name} sampler draws codes of size {self.dim}, "
                             f"got codes of size {codes.shape[1]}")
        return codes.to(self.device)

    @torch.no_grad()
    def update(self, codes: Tensor) -> None:
        """Add a batch of codes (B, dim) to the next ``fit_updates``."""
        self._pending.append(self.check_codes(codes))

    def fit_updates(self, reduce: Combine | None = None, gather: Combine | None = None) -> None:
        """Fit to the codes given to ``update`` since the last fit (nothing happens if there are none).

        ``reduce`` sums a tensor over processes, ``gather`` concatenates every process's tensors
        along the first dimension (both None in one process); the default fit uses ``gather``.
        """
        pending, self._pending = self._pending, []
        if pending:
            codes = torch.cat(pending)
            self.fit(codes if gather is None else gather(codes))

    def extra_repr(self) -> str:
        return ", ".join([f"dim={self.dim}", *(f"{k}={v!r}" for k, v in self.options.items())])
