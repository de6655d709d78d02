"""Reconstruction quality (``recon_mse``, ``psnr``, ``ssim``, torchmetrics) and interpolation midpoints.

Images are in [-1, 1], so PSNR and SSIM use a data range of 2. ``recon_mse`` is the mean squared
error per pixel (channels included) in that range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from aegen.metrics.fidelity import ChunkedImages


def reconstruction_collection(keys: tuple[str, ...] = ("recon_mse", "psnr", "ssim")) -> MetricCollection:
    """torchmetrics ``recon_mse``, ``psnr`` and ``ssim`` (data range 2), states synced across DDP ranks."""
    make = {
        "recon_mse": MeanSquaredError,
        "psnr": lambda: PeakSignalNoiseRatio(data_range=2.0),
        "ssim": lambda: StructuralSimilarityIndexMeasure(data_range=2.0),
    }
    return MetricCollection({key: make[key]() for key in keys})


@torch.no_grad()
def reconstruction_metrics(model, batches: Iterable[tuple[Tensor, Tensor]],
                           reads: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None) -> dict[str, float]:
    """``recon_mse``, ``psnr`` and ``ssim`` of ``model.reconstruct`` over (images, labels) batches.

    With ``reads(recon, labels) -> (right, known)`` (boolean per image: a judge read the image's
    labels right; the image has labels) also ``recon_judge_acc``, the share right among the known."""
    metrics = reconstruction_collection().to(model.device)
    right = known = 0
    for x, labels in batches:
        x = x.to(model.device)
        recon = model.reconstruct(x)
        metrics.update(recon, x)
        if reads is not None:
            hit, has = reads(recon.cpu(), labels)
            right, known = right + int((hit & has).sum()), known + int(has.sum())
    out = {k: float(v) for k, v in metrics.compute().items()}
    return out if reads is None else {**out, "recon_judge_acc": right / max(known, 1)}


@torch.no_grad()
def interpolation_midpoints(
    model, images: Tensor, num: int, seed: int = 0, chunk_size: int = 500, batch_size: int = 256, rgb: bool = False
) -> ChunkedImages:
    """``num`` decoded midpoints ``decode((z_a + z_b) / 2)`` of random pairs a != b of ``images``.

    GAIA's claim is that such midpoints stay realistic; compare them with real images through
    FID. Pairs of chunk i are drawn from seed ``(seed, i)``.
    """
    if len(images) < 2:
        raise ValueError("interpolation needs at least 2 images")
    codes = torch.cat([model.encode(x.to(model.device)) for x in images.split(batch_size)])

    def make_chunk(index: int, size: int) -> Tensor:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        a = torch.randint(len(codes), (size,), generator=generator)
        b = (a + torch.randint(1, len(codes), (size,), generator=generator)) % len(codes)  # b != a
        a, b = a.to(codes.device), b.to(codes.device)
        return model.decode((codes[a] + codes[b]) / 2)

    return ChunkedImages(make_chunk, num, chunk_size, rgb)
