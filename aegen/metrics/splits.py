"""Reading a datamodule's split in batches, whatever its storage (in-memory tensors or a Dataset)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from aegen.data.base import from_uint8


def split_size(datamodule, split: str) -> int:
    """Number of items in a split."""
    data = datamodule.split(split)
    return len(data[0]) if isinstance(data, tuple) else len(data)


def labelled_batches(
    datamodule,
    split: str,
    batch_size: int = 256,
    limit: int | None = None,
    generator: torch.Generator | None = None,
    indices: Tensor | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """(images in [-1, 1], labels) of a split, on the CPU.

    With a ``generator`` the items come in a random order drawn from it (and ``limit`` keeps a
    random subset); without one, in the split's fixed order (``limit`` keeps the first items);
    ``indices`` picks the items explicitly (e.g. one DDP rank's share).
    """
    data = datamodule.split(split)
    n = split_size(datamodule, split)
    if indices is not None:
        order = indices.long().cpu()
    else:
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    order = order[:limit]
    if isinstance(data, tuple):
        images, labels = data
        for idx in order.split(batch_size):
            batch = images[idx.to(images.device)].cpu()
            yield (from_uint8(batch) if batch.dtype == torch.uint8 else batch.float()), labels[idx.to(labels.device)].cpu()
    else:
        yield from DataLoader(Subset(data, order.tolist()), batch_size=batch_size, shuffle=False)
