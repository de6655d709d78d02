"""Sample quality through torch-fidelity: IS, FID, KID and precision/recall, with Inception or judge features.

Images reach torch-fidelity as ``torch.utils.data.Dataset`` objects yielding uint8 (C, H, W)
tensors, as it expects. Generated images come from ``ChunkedImages``, which draws them chunk by
chunk from a seeded generator (the same images for the same seed, whatever the order of access);
this replaces torch-fidelity's generator wrapper, whose class-conditional path breaks on current
NumPy.

Inception weights are downloaded only on request (``download_inception``, ``aegen evaluate
--download-inception``: torch-fidelity's file into torch hub's checkpoint cache). ``inception_weights``
looks for torch-fidelity's file ``weights-inception-2015-12-05-6726825d.pth`` at
``--inception_weights PATH``, else ``$AEGEN_INCEPTION_WEIGHTS``, else torch hub's checkpoint cache
(where torch-fidelity and torchmetrics would have downloaded it), and raises a one-line
``AegenError`` naming them when absent. The file is read with ``weights_only=True`` before
torch-fidelity sees it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch_fidelity
from torch import Tensor
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from aegen.checkpoint import read_state_dict
from aegen.data.base import signed_to_uint8
from aegen.errors import AegenError

INCEPTION = "inception-v3-compat"
INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]
INCEPTION_ENV = "AEGEN_INCEPTION_WEIGHTS"

#: torch-fidelity's result keys -> aegen's names; {} takes the feature extractor's suffix (e.g. "_judge")
KEYS = {
    "inception_score_mean": "is{}_mean",
    "inception_score_std": "is{}_std",
    "frechet_inception_distance": "fid{}",
    "kernel_inception_distance_mean": "kid{}_mean",
    "kernel_inception_distance_std": "kid{}_std",
    "precision": "precision{}",
    "recall": "recall{}",
    "f_score": "f_score{}",
}


def hub_inception_path() -> Path:
    """Where torch hub caches torch-fidelity's Inception weights: ``<torch hub dir>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


#: keys every torch-fidelity InceptionV3 state dict holds (a cheap layout check)
INCEPTION_KEYS = ("Mixed_7c.branch_pool.conv.weight", "fc.weight")


def inception_weights(path: str | Path | None = None, download: bool = False) -> Path:
    """The Inception weights file: ``path``, else $AEGEN_INCEPTION_WEIGHTS, else torch hub's cache.

    With ``download``, a file missing from torch hub's cache (when no path or variable is given) is
    fetched there first (``download_inception``). Raises a one-line AegenError saying where to put
    the file when none exists. The file is checked with a weights-only read (no pickled code) and
    for the Inception layout.
    """
    if path is not None or os.environ.get(INCEPTION_ENV):
        source = "--inception_weights" if path is not None else f"${INCEPTION_ENV}"
        found = Path(path if path is not None else os.environ[INCEPTION_ENV]).expanduser()
        if not found.is_file():
            raise AegenError(f"Inception weights not found at {found} (from {source}); it must be torch-fidelity's "
                             f"{INCEPTION_FILE} ({URL_INCEPTION_V3})")
    else:
        found = download_inception() if download else hub_inception_path()
        if not found.is_file():
            raise AegenError(
                f"Inception weights not found: pass --download-inception (aegen evaluate) to fetch {URL_INCEPTION_V3} "
                f"there when online, or download it elsewhere and pass --inception_weights PATH, set "
                f"${INCEPTION_ENV}=PATH, or put it at {found}")
    state = read_state_dict(found, "Inception weights")
    if not all(key in state for key in INCEPTION_KEYS):
        raise AegenError(f"{found} is not torch-fidelity's InceptionV3 state dict ({INCEPTION_FILE})")
    return found


def _not_inception(path: Path) -> str | None:
    """Why a downloaded file is not torch-fidelity's Inception weights (None when it is)."""
    try:
        state = read_state_dict(path, "Inception weights")
    except AegenError:
        return "not a weights file that loads without running code"
    return None if all(key in state for key in INCEPTION_KEYS) else "not torch-fidelity's InceptionV3 state dict"


def download_inception() -> Path:
    """torch-fidelity's Inception weights in torch hub's cache, downloaded when absent ($AEGEN_DOWNLOAD_MIRROR:
    from ``<mirror>/inception/<file>``); checked as ``inception_weights`` checks them before it is renamed into place.

    torch-fidelity publishes no checksum for the file: a complete transfer (the announced length) and
    the weights-only read with the Inception layout are the checks. Raises one AegenError on failure.
    """
    from aegen.data.download import download_file, sources

    found = hub_inception_path()
    if not found.is_file():
        download_file(sources([URL_INCEPTION_V3], "inception", INCEPTION_FILE), found, "Inception weights",
                      check=_not_inception)
    return found


def random_inception_state_dict(seed: int = 0) -> dict[str, Tensor]:
    """A randomly initialised InceptionV3 state dict in the official file's layout.

    For tests and timing only (the same network and cost as the real one, meaningless numbers):
    torch-fidelity's module is built without loading weights.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None

    import torch_fidelity.feature_extractor_inceptionv3 as module

    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: {}
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = Unloaded(INCEPTION, ["2048"])
    finally:
        module.load_state_dict_from_url = original
    return {k: v.contiguous() for k, v in net.state_dict().items()}


class ChunkedImages(Dataset):
    """``num`` generated images as uint8 (C, H, W) tensors, made ``chunk_size`` at a time.

    ``make_chunk(index, size)`` returns images in [-1, 1] for chunk ``index``; it must be
    deterministic in ``index`` (seed its noise from it). Only the current chunk is kept, so 50k
    samples need no more memory than one chunk. ``rgb`` repeats a single channel three times
    (for Inception).
    """

    def __init__(self, make_chunk: Callable[[int, int], Tensor], num: int, chunk_size: int = 500, rgb: bool = False) -> None:
        if num < 1:
            raise ValueError(f"the number of samples must be positive, got {num}")
        self.make_chunk, self.num, self.chunk_size, self.rgb = make_chunk, num, chunk_size, rgb
        self._index, self._chunk = -1, None

    def __len__(self) -> int:
        return self.num

    def chunk(self, index: int) -> Tensor:
        """Chunk ``index`` as uint8 images on the CPU."""
        if index != self._index:
            size = min(self.chunk_size, self.num - index * self.chunk_size)
            with torch.no_grad():
                images = signed_to_uint8(self.make_chunk(index, size)).cpu()
            if self.rgb and images.shape[1] == 1:
                images = images.expand(-1, 3, -1, -1)
            self._index, self._chunk = index, images.contiguous()
        return self._chunk

    def __getitem__(self, i: int) -> Tensor:
        if not 0 <= i < self.num:
            raise IndexError(i)
        return self.chunk(i // self.chunk_size)[i % self.chunk_size]


class SplitImages(Dataset):
    """A datamodule split's images as uint8 (C, H, W) tensors (labels dropped)."""

    def __init__(self, datamodule, split: str, limit: int | None = None, rgb: bool = False) -> None:
        self.data = datamodule.split(split)
        size = len(self.data[0]) if isinstance(self.data, tuple) else len(self.data)
        self.num = size if limit is None else min(limit, size)
        self.rgb = rgb

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, i: int) -> Tensor:
        if not 0 <= i < self.num:
            raise IndexError(i)
        if isinstance(self.data, tuple):
            image = self.data[0][i]
            image = image if image.dtype == torch.uint8 else signed_to_uint8(image)
        else:
            image = signed_to_uint8(torch.as_tensor(self.data[i][0]))
        return image.expand(3, -1, -1) if self.rgb and image.shape[0] == 1 else image


def model_samples(model, num: int, seed: int = 0, chunk_size: int = 500, rgb: bool = False) -> ChunkedImages:
    """``num`` samples of ``model.sample`` as a torch-fidelity input; chunk i uses seed ``(seed, i)``."""

    def make_chunk(index: int, size: int) -> Tensor:
        generator = torch.Generator(device=model.device).manual_seed(seed * 1_000_003 + index)
        return model.sample(size, generator=generator)

    return ChunkedImages(make_chunk, num, chunk_size, rgb)


def fidelity(
    generated: Dataset,
    reference: Dataset | None,
    metrics: tuple[str, ...] = ("fid", "is"),
    feature_extractor: str = INCEPTION,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    kid_subset_size: int = 1000,
    seed: int = 0,
    suffix: str = "",
) -> dict[str, float]:
    """One torch-fidelity call: ``metrics`` among fid, is, kid, pr of ``generated`` against ``reference``.

    Returns aegen's keys (``fid``, ``is_mean``, ``is_std``, ``kid_mean``, ``kid_std``,
    ``precision``, ``recall``, ``f_score``) with ``suffix`` after the metric's name (``_judge``:
    ``fid_judge``, ``is_judge_mean``, ...). KID's
    subset size shrinks to the smaller input when that has fewer than ``kid_subset_size`` images.
    Inception weights are resolved with ``inception_weights(weights)``: never downloaded here.
    """
    unknown = set(metrics) - {"fid", "is", "kid", "pr"}
    if unknown:
        raise ValueError(f"unknown torch-fidelity metrics {sorted(unknown)}; choose from fid, is, kid, pr")
    needs_reference = bool({"fid", "kid", "pr"} & set(metrics))
    if needs_reference and reference is None:
        raise ValueError("FID, KID and precision/recall need reference images")
    if feature_extractor == INCEPTION:
        weights = inception_weights(weights)  # never let torch-fidelity download them
    sizes = [len(generated)] + ([len(reference)] if needs_reference else [])
    options: dict[str, Any] = dict(
        input1=generated,
        isc="is" in metrics, fid="fid" in metrics, kid="kid" in metrics, prc="pr" in metrics,
        feature_extractor=feature_extractor,
        feature_extractor_weights_path=None if weights is None else str(weights),
        cuda=torch.device(device).type == "cuda",
        batch_size=batch_size,
        kid_subset_size=min(kid_subset_size, *sizes),
        isc_splits=min(10, len(generated)),
        rng_seed=seed,
        save_cpu_ram=True,  # no DataLoader workers: samples are generated in this process, chunk by chunk
        cache=False,
        verbose=False,
    )
    if needs_reference:
        options["input2"] = reference
    raw = torch_fidelity.calculate_metrics(**options)
    return {KEYS[k].format(suffix): float(v) for k, v in raw.items() if k in KEYS}
