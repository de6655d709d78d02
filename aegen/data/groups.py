"""Group sampling for factor datasets: an anchor plus one partner per factor (GSL / DEAE batches).

Group-supervised learning (GZS-Net, DEAE) trains on groups: an anchor C and, for each factor k,
a partner X_k that shares exactly factor k with C. ``GroupLoader`` serves such groups from a
dataset's in-memory training split, so any dataset with factor labels (N, K) can use it
(``--data.groups true``; models that need groups, such as ``deae`` and ``gsl``, switch it on
themselves). Partners are drawn from the training split itself, never rendered anew, so
``--data.subset`` and ``--data.bias`` hold for partners as for anchors.

Batch format: ``(images, labels)`` with

- images (B, 1 + K, C, H, W) in [-1, 1]: ``images[:, 0]`` the anchors, ``images[:, 1 + k]`` the
  partner for factor k (``factor_names[k]``);
- labels (B, 1 + K, K): the factor values of each image.

A partner is drawn uniformly among the training items with the anchor's value of factor k that
share the fewest other factors with it: none when such items exist (the usual case), otherwise
as few as the split allows (e.g. with ``--data.bias letter background_colour`` a letter partner
must also share the background colour). When no other item has the anchor's value, the partner
is the anchor itself.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aegen.data.base import InMemoryLoader


def partner_indices(labels: Tensor, anchors: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Indices (B, K) into ``labels`` (N, K) of one partner per factor for each anchor index (B,).

    Column k holds an item with the anchor's value of factor k that shares the fewest other
    factors with the anchor (chosen uniformly among those), excluding the anchor itself unless it
    is the only item with that value.
    """
    if labels.dim() != 2:
        raise ValueError(f"group sampling needs factor labels (N, K), got labels of shape {tuple(labels.shape)}")
    anchor_labels = labels[anchors]  # (B, K)
    same = anchor_labels[:, None, :] == labels[None, :, :]  # (B, N, K)
    shared = same.sum(-1).float()  # (B, N): factors each item shares with each anchor
    noise = torch.rand(shared.shape, generator=generator, device=generator.device if generator is not None else "cpu")
    score = shared.to(noise.device) + 0.5 * noise  # fewest shared first, ties broken uniformly at random
    score[torch.arange(len(anchors)), anchors.to(noise.device)] += labels.shape[1] + 1  # the anchor itself: last resort
    out = []
    for k in range(labels.shape[1]):
        masked = score.masked_fill(~same[:, :, k].to(noise.device), float("inf"))
        out.append(masked.argmin(1))
    return torch.stack(out, dim=1).to(anchors.device)


class GroupLoader(InMemoryLoader):
    """Batches of groups (anchor + one partner per factor) from in-memory (uint8 images, factor labels).

    Anchors are sharded across DDP ranks as by ``InMemoryLoader``; partners come from the whole
    split, drawn from a generator seeded per epoch and rank (a resumed epoch draws the skipped
    batches' partners too, so the rest of the epoch is the same).
    """

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, shuffle: bool = True, drop_last: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, pin_memory: bool = False) -> None:
        if labels.dim() != 2 or len(labels) != len(images):
            raise ValueError("group batches need factor labels (N, K) for every image; this dataset has none "
                             "(use a factor dataset such as --data fonts)")
        super().__init__(images, labels, batch_size, shuffle, drop_last, seed, rank, world_size, pin_memory)
        self._generator: torch.Generator | None = None

    def batch_indices(self) -> list[Tensor]:
        self._generator = torch.Generator(device=self.images.device)
        self._generator.manual_seed(self.seed + 1_000_003 * self.sampler.epoch + 7919 * self.rank)
        return super().batch_indices()

    def make_batch(self, index: Tensor, skipped: bool = False) -> tuple[Tensor, Tensor] | None:
        group = torch.cat([index[:, None], partner_indices(self.labels, index, self._generator)], dim=1)  # (B, 1+K)
        return None if skipped else (self.images[group].float().div_(127.5).sub_(1.0), self.labels[group])
