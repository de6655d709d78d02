"""Restarts: several latent GANs trained side by side on the same codes, keeping the one whose Q is
most informative about them (a label-free choice, as k-means keeps the best of its ``n_init`` starts)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from aegen.models.latentgan.nets import DiscriminatorQ
from aegen.nets import EnsembleMLP

Reduce = Callable[[Tensor], Tensor]


class Restarts(nn.Module):
    """``count`` latent GANs (G and D/Q), each from its own initialisation and noise, trained side by
    side in batched matmuls (``aegen.nets.EnsembleMLP``) at about the cost of a few separate ones.

    Training tensors carry a leading restart dimension (count, B, ...): ``generator`` and
    ``discriminator`` run every restart on them, and the kept restart alone on (B, ...) tensors.
    ``total`` turns a loss averaged over restarts and batch into the sum of the restarts' own
    averages, so each restart gets the gradients it would get alone. After every training epoch
    ``keep_most_informative`` keeps the restart whose Q carries the most information about the
    epoch's real codes, I(X; c) = H(E[Q(c|z)]) - E[H(Q(c|z))] (confident and balanced clusters):
    InfoGAN's clusters vary a lot with the seed.
    """

    def __init__(self, count: int, generator: EnsembleMLP, discriminator: DiscriminatorQ) -> None:
        super().__init__()
        self.count = count
        self.generators, self.discriminators = generator, discriminator
        self.register_buffer("kept", torch.tensor(0))
        # this epoch's sums of Q(c|Enc(X)), of its entropy and the count, per restart (a plain tensor,
        # not a buffer: DDP would overwrite every process's sums with rank 0's)
        self.q_sums: Tensor | None = None

    def _member(self, x: Tensor) -> int | None:
        return int(self.kept) if x.dim() == 2 else None

    def generator(self, inputs: Tensor) -> Tensor:
        """G on its concatenated inputs: every restart's (count, B, in), or the kept one's (B, in)."""
        return self.generators(inputs, self._member(inputs))

    def discriminator(self, z: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """D/Q on codes: every restart's (count, B, D), or the kept one's (B, D) (see ``DiscriminatorQ``)."""
        return self.discriminators(z, self._member(z))

    def each(self, x: Tensor) -> Tensor:
        """The same tensor (B, ...) for every restart: (count, B, ...)."""
        return x.expand(self.count, *x.shape)

    def total(self, loss: Tensor) -> Tensor:
        """A loss averaged over (count, B, ...) -> the sum over restarts of each one's average."""
        return self.count * loss

    @torch.no_grad()
    def record(self, logits: Tensor) -> None:
        """Add every restart's Q categorical distribution on a batch of real codes (logits (count, B,
        K)) to this epoch's sums: per category, then the entropy, then the count."""
        if self.count == 1:
            return
        probs = logits.float().softmax(-1)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        sums = torch.cat([probs.sum(1), entropy.sum(1, keepdim=True), entropy.new_full((self.count, 1), probs.shape[1])], 1)
        self.q_sums = sums if self.q_sums is None else self.q_sums + sums

    @torch.no_grad()
    def information(self, reduce: Reduce | None = None) -> Tensor | None:
        """I(X; c) of each restart's Q on this epoch's real codes (count,), the sums first added up
        over processes by ``reduce`` (under DDP); None before any ``record``."""
        if self.q_sums is None:
            return None
        sums = self.q_sums if reduce is None else reduce(self.q_sums.clone())
        count = sums[:, -1:]
        mean = sums[:, :-2] / count
        return -(mean * mean.clamp_min(1e-12).log()).sum(-1) - sums[:, -2] / count[:, 0]

    def keep_most_informative(self, reduce: Reduce | None = None) -> Tensor | None:
        """Keep the restart with the largest ``information``; returns every restart's (None: nothing recorded)."""
        information = self.information(reduce)
        if information is not None:
            self.kept.fill_(int(information.argmax()))
        return information

    def end_epoch(self) -> None:
        """Start the next epoch's sums from zero."""
        self.q_sums = None

    def training_state(self) -> dict[str, Any]:
        return {"q_sums": self.q_sums}

    def load_training_state(self, state: dict[str, Any], mid_epoch: bool) -> None:
        # the Q sums are per epoch: a checkpoint written at an epoch's end starts the next from zero
        self.q_sums = state.get("q_sums") if mid_epoch else None
