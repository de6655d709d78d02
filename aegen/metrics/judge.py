"""Judge features: a small CNN classifier per labelled dataset, so sample quality is measurable offline.

Inception weights are often unavailable (no internet) and Inception features of 32x32 digits say
little. A judge is a small CNN trained once, deterministically, to predict a dataset's class
(``datamodule.class_labels``: the digit, the fonts letter, ...) on the training split of its judge
data (``judge_data``: the dataset itself, or for Fonts a fixed larger unbiased draw that keeps the
run's test items out of the judge's training, whatever ``--data.num_items`` says). It is cached as
``<data root>/judges/<judge key>.pt`` (a plain state dict, read with ``weights_only=True``) plus
``<judge key>.json`` (architecture, training settings, validation and test accuracy on the judge
data). The judge key names the judge data as configured and hashes the judge's training settings
with ``JUDGE_VERSION``, so a judge trained with other settings (a short test judge, say) or by an
older aegen is never read in place of the default one. Both files are written atomically
(``aegen.io``), and ``get_judge`` holds ``<judge key>.lock`` (an ``fcntl.flock``, where the
platform has one) while it checks the cache, trains and saves, so concurrent evaluations that miss
the cache train the judge once and never read a half-written one. Training always runs with
gradients enabled, whatever the caller's grad mode (``torch.no_grad``, ``torch.inference_mode``).

It is registered with torch-fidelity as the feature extractor ``aegen-judge`` (features
``features``: the 128-d penultimate layer before its ReLU, standardised with its training-split
mean and std, used for FID/KID/PR; ``logits``: used for IS), so ``fid_judge``, ``kid_judge_*`` and ``is_judge_*`` go through torch-fidelity's own
metric code. Judge numbers compare models on the same dataset only; they are not Inception numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX (Windows): judge_lock locks nothing
    fcntl = None  # type: ignore[assignment]

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from aegen import __version__
from aegen.checkpoint import read_state_dict
from aegen.errors import AegenError
from aegen.io import save_atomic, write_text_atomic
from aegen.metrics.splits import labelled_batches, split_size

FEATURE_EXTRACTOR = "aegen-judge"
#: datamodule settings that do not change the images or labels (left out of a judge's cache key)
LOADER_SETTINGS = ("root", "batch_size", "num_workers", "pin_memory", "device_cache", "groups")
#: how a judge is trained unless the caller says otherwise (``train_judge``'s keyword arguments)
JUDGE_TRAINING = {"epochs": 20, "max_steps": 3000, "batch_size": 64, "lr": 1e-3, "width": 16, "seed": 0}
#: bumped whenever JudgeNet or its training changes, so judges cached by an older aegen are retrained
JUDGE_VERSION = 2


class JudgeNet(nn.Module):
    """A small CNN classifier: 3 strided conv layers, a 128-d feature layer and a linear head."""

    def __init__(self, channels: int, num_classes: int, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(16 * 4 * width, feature_dim),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        # per-dimension mean and std of the features on the training split, set after training, so
        # the features FID and KID see are standardised (KID's cubic kernel assumes small features)
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        self.meta: dict[str, Any] = {}

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images in [-1, 1] -> (standardised features (B, 128), class logits (B, classes))."""
        hidden = self.trunk(x)
        return (hidden - self.feature_mean) / self.feature_std, self.head(F.relu(hidden))

    def forward(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Predicted class (N,) of images in [-1, 1]."""
        device = next(self.parameters()).device
        return torch.cat([self(b.to(device)).argmax(1).cpu() for b in x.split(batch_size)])


def dataset_key(datamodule) -> str:
    """A file name for the dataset as configured: its name, image size and a hash of its data settings."""
    settings = {k: v for k, v in sorted(datamodule.hparams.items()) if not k.startswith("_") and k not in LOADER_SETTINGS}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{datamodule.registry_name}-{datamodule.image_size}px-{digest}"


def judge_data(datamodule):
    """The data a judge of ``datamodule`` trains on: its ``judge_data()`` where it has one
    (``AEDataModule``'s is the dataset itself; ``Fonts``' a fixed unbiased draw), else itself."""
    make = getattr(datamodule, "judge_data", None)
    return make() if make is not None else datamodule


def training_settings(datamodule, **train_options: Any) -> dict[str, Any]:
    """``JUDGE_TRAINING``, updated by the dataset's ``judge_training``, then by the caller's options
    (an unknown option is an error)."""
    unknown = sorted(set(train_options) - set(JUDGE_TRAINING))
    if unknown:
        raise AegenError(f"unknown judge training option(s) {', '.join(unknown)}; known: {', '.join(JUDGE_TRAINING)}")
    return {**JUDGE_TRAINING, **getattr(datamodule, "judge_training", {}), **train_options}


def judge_key(datamodule, **train_options: Any) -> str:
    """The key of the judge data plus a hash of the judge's training settings and ``JUDGE_VERSION``."""
    data = judge_data(datamodule)
    settings = {"version": JUDGE_VERSION, **training_settings(data, **train_options)}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:6]
    return f"{dataset_key(data)}-j{digest}"


def judge_path(datamodule, **train_options: Any) -> Path:
    """Where the judge of this dataset, trained with these settings, is cached: ``<root>/judges/<judge key>.pt``."""
    return Path(datamodule.root) / "judges" / f"{judge_key(datamodule, **train_options)}.pt"


def _class_labels(datamodule, labels: Tensor) -> Tensor:
    classes = datamodule.class_labels(labels)
    if classes is None:
        raise AegenError(f"dataset {datamodule.registry_name!r} has no class labels, so it has no judge")
    return classes.long()


@torch.no_grad()
def judge_accuracy(net: JudgeNet, datamodule, split: str) -> float:
    """Accuracy of the judge on a split of the dataset."""
    right = total = 0
    for x, y in labelled_batches(datamodule, split, 512):
        right += (net(x).argmax(1) == _class_labels(datamodule, y)).sum().item()
        total += len(x)
    return right / max(total, 1)


def train_judge(datamodule, **train_options: Any) -> JudgeNet:
    """Train a judge on the training split of the judge data (``judge_data``), on the CPU,
    deterministically (fixed seed, fixed order).

    Options (``JUDGE_TRAINING`` and the dataset's ``judge_training`` give the defaults): ``epochs``
    passes over the data, at most ``max_steps`` Adam steps of ``batch_size`` images at learning rate
    ``lr``; ``width`` of the first conv layer; ``seed`` of the weights and the data order. The returned network carries
    ``meta`` with its settings and its validation and test accuracy. Gradients are enabled (and
    inference mode off) while it trains, whatever the caller's mode, so it may be called from code
    under ``torch.no_grad()`` or ``torch.inference_mode()``; the caller's mode is restored after.
    """
    if not datamodule.num_classes:
        raise AegenError(f"dataset {datamodule.registry_name!r} has no classes, so it has no judge")
    data = judge_data(datamodule)
    settings = training_settings(data, **train_options)
    # callers often hold torch.no_grad() or torch.inference_mode() (metric code, validation hooks):
    # training needs gradients whatever the caller's mode
    with torch.inference_mode(False), torch.enable_grad():
        net = _train_judge(data, **settings)
    net.meta["key"] = judge_key(data, **train_options)  # the judge data is its own judge data
    net.meta["train"].update(settings)
    return net


def _train_judge(datamodule, epochs: int, max_steps: int, batch_size: int, lr: float, width: int,
                 seed: int) -> JudgeNet:
    n = split_size(datamodule, "train")
    steps = min(max_steps, epochs * math.ceil(n / batch_size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = JudgeNet(datamodule.channels, datamodule.num_classes, width)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        step = 0
        net.train()
        while step < steps:
            for x, y in labelled_batches(datamodule, "train", batch_size, generator=generator):
                target = _class_labels(datamodule, y)
                # tensors made under inference mode (e.g. a split set up there) cannot be saved for backward
                x, target = (t.clone() if t.is_inference() else t for t in (x, target))
                loss = F.cross_entropy(net(x), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if step >= steps:
                    break
    net.eval()
    with torch.no_grad():
        hidden = torch.cat([net.trunk(x) for x, _ in labelled_batches(datamodule, "train", 512)])
        net.feature_mean.copy_(hidden.mean(0))
        net.feature_std.copy_(hidden.std(0).clamp_min(1e-6))
    net.meta = {
        "dataset": datamodule.registry_name,
        "channels": datamodule.channels,
        "image_size": datamodule.image_size,
        "num_classes": datamodule.num_classes,
        "width": width,
        "train": {"steps": steps, "device": "cpu"},
        "val_accuracy": judge_accuracy(net, datamodule, "val"),
        "test_accuracy": judge_accuracy(net, datamodule, "test"),
        "judge_version": JUDGE_VERSION,
        "aegen_version": __version__,
    }
    return net


def save_judge(net: JudgeNet, path: str | Path) -> Path:
    """Write ``path`` (state dict) and the ``.json`` beside it, each atomically."""
    path = Path(path)
    save_atomic(net.state_dict(), path)
    write_text_atomic(path.with_suffix(".json"), json.dumps(net.meta, indent=2) + "\n")
    return path


def load_judge(path: str | Path) -> JudgeNet:
    """A cached judge, rebuilt from its ``.json`` and its weights (read weights-only), in eval mode."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise AegenError(f"no judge metadata at {meta_path}; delete {path} to retrain the judge")
    meta = json.loads(meta_path.read_text())
    net = JudgeNet(meta["channels"], meta["num_classes"], meta["width"])
    try:
        net.load_state_dict(read_state_dict(path, "judge weights"))
    except RuntimeError as err:
        raise AegenError(f"judge weights at {path} do not match {meta_path}: {str(err).splitlines()[0]}") from None
    net.meta = meta
    return net.eval().requires_grad_(False)


def _is_cached(path: Path) -> bool:
    return path.is_file() and path.with_suffix(".json").is_file()


@contextmanager
def judge_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``<judge>.lock`` beside the judge ``path`` (blocking).

    Where there is no ``fcntl`` (Windows) or the filesystem refuses locks, nothing is locked: two
    evaluations may then both train the same (deterministic) judge, and the atomic writes still
    leave whole files. The lock file stays (removing it would race with a process waiting on it).
    """
    if fcntl is None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            locked = True
        except OSError:  # e.g. a filesystem without locks
            locked = False
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def get_judge(datamodule, train_if_missing: bool = True, **train_options: Any) -> JudgeNet:
    """The dataset's judge: loaded from its cache, else trained (deterministically) and cached.

    Safe to call from concurrent processes: the first to miss the cache trains and saves under the
    judge's lock, the others wait for it and load what it saved. ``train_options`` (see
    ``train_judge``) choose the judge: one trained with other settings is cached under another key.
    """
    path = judge_path(datamodule, **train_options)
    if _is_cached(path):
        return load_judge(path)
    if not train_if_missing:
        raise AegenError(f"no judge cached at {path}")
    with judge_lock(path):
        if _is_cached(path):  # another process trained it while this one waited for the lock
            return load_judge(path)
        print(f"aegen: training the judge of {datamodule.registry_name} (once; cached at {path})",
              file=sys.stderr, flush=True)
        net = train_judge(datamodule, **train_options)
        save_judge(net, path)
    net.meta["path"] = str(path)
    return net


class FeatureExtractorJudge(FeatureExtractorBase):
    """torch-fidelity feature extractor ``aegen-judge``: uint8 images (B, C, H, W) -> judge features.

    Pass the judge's ``.pt`` file as torch-fidelity's ``feature_extractor_weights_path``.
    """

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise AegenError("the judge feature extractor needs feature_extractor_weights_path=<root>/judges/<key>.pt")
        self.net = load_judge(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 1, 32, 32, dtype=torch.uint8)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if x.dtype != torch.uint8:
            raise ValueError("the judge feature extractor expects uint8 images, as torch-fidelity provides")
        features, logits = self.net.features_and_logits(x.float().div(127.5).sub(1.0))
        out = {"features": features, "logits": logits}
        return tuple(out[name] for name in self.features_list)


if FEATURE_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(FEATURE_EXTRACTOR, FeatureExtractorJudge)
