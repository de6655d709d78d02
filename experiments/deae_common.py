"""Shared pieces of the DEAE experiments: train a model on fonts, synthesise by block swaps, train a letter classifier.

Used by ``deae_augmentation.py``, ``deae_debias.py`` and ``deae_compare.py``; runs on the CPU.
Models train through ``aegen fit`` in a subprocess (``harness.fit``), as a user trains them, and
are loaded back with ``aegen.load``.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch
import torch.nn.functional as F
from harness import data_flags, fit, md_beside, model_flags, over_seeds, pm, write_results

import aegen
from aegen.data.base import from_uint8
from aegen.data.fonts import FACTOR_NAMES, Fonts
from aegen.latent import encode_all
from aegen.metrics.controllability import decode_all, edit_codes
from aegen.metrics.judge import JudgeNet

#: the fonts subset of every DEAE experiment: 10 letters x 6 faces x 3 sizes x 5 font colours x 5 backgrounds
SUBSET = {"letter": 10, "font": 6, "size": 3, "font_colour": 5, "background_colour": 5}
#: torch threads of the training subprocesses and of this process
THREADS = min(2, os.cpu_count() or 1)


class FewFonts(Fonts):
    """Fonts whose training split keeps only its first ``train_items`` items (the seeded split's
    order); validation and test are unchanged. ``aegen fit --data deae_common.FewFonts`` trains on
    it (``harness`` puts ``experiments/`` on the subprocess's import path)."""

    def __init__(self, train_items: int | None = None, **kwargs: Any) -> None:
        """
        Args:
            train_items: items kept from the training split (None: all of them).
        """
        super().__init__(**kwargs)
        self.train_items = train_items

    def load_splits(self) -> dict[str, Any]:
        splits = super().load_splits()
        if self.train_items is not None:
            images, factors = splits["train"]
            splits["train"] = (images[: self.train_items], factors[: self.train_items])
        return splits


def fonts(**options: Any) -> FewFonts:
    """The datamodule of ``options`` (FewFonts' and Fonts' settings; None values are left out), in this process."""
    return FewFonts(**{k: v for k, v in options.items() if v is not None})


def train_model(name: str, data: dict[str, Any], steps: int, seed: int, width: int = 16, **options: Any):
    """``aegen fit`` of model ``name`` for ``steps`` Adam steps on the fonts datamodule ``data``
    (FewFonts' settings), CPU, no validation; returns the trained model in eval mode."""
    data = {k: v for k, v in data.items() if v is not None}
    cls = f"{__name__}.FewFonts" if "train_items" in data else "fonts"
    with tempfile.TemporaryDirectory() as work:
        ckpt = fit(name, *data_flags(data), *model_flags({"width": width, **options}), "--trainer.accelerator", "cpu",
                   "--trainer.max_steps", steps, "--trainer.max_epochs", -1, "--trainer.limit_val_batches", 0,
                   data=cls, seed=seed, root=work, threads=THREADS)
        return aegen.load(ckpt)


@torch.no_grad()
def synthesise(model, images: torch.Tensor, factors: torch.Tensor, donors: torch.Tensor, blocks: list[str],
               copies: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``copies`` new images per training image: the blocks ``blocks`` taken from a random donor image.

    Returns images in [-1, 1] and their factor labels (the kept factors from the image, the swapped
    ones from the donor). ``donors`` are (images, factors) indices into the same tensors.
    """
    generator = torch.Generator().manual_seed(seed)
    codes = encode_all(model, images, device="cpu")
    dims = [d for name in blocks for d in range(model.blocks[name].start, model.blocks[name].stop)]
    swapped = [FACTOR_NAMES.index(name) for name in blocks]
    out_x, out_y = [], []
    for _ in range(copies):
        donor = donors[torch.randint(len(donors), (len(images),), generator=generator)]
        out_x.append(decode_all(model, edit_codes(codes, codes[donor], dims)))
        y = factors.clone()
        y[:, swapped] = factors[donor][:, swapped]
        out_y.append(y)
    return torch.cat(out_x), torch.cat(out_y)


def train_classifier(images: torch.Tensor, letters: torch.Tensor, num_classes: int, steps: int, seed: int,
                     batch_size: int = 64, lr: float = 1e-3) -> JudgeNet:
    """A letter classifier (aegen's judge CNN) trained with Adam for ``steps`` steps on (images, letters)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = JudgeNet(images.shape[1], num_classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        net.train()
        for _ in range(steps):
            idx = torch.randint(len(images), (batch_size,), generator=generator)
            loss = F.cross_entropy(net(images[idx]), letters[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


def accuracy(net: JudgeNet, images: torch.Tensor, letters: torch.Tensor) -> float:
    return (net.predict(images) == letters).float().mean().item()


def split(datamodule, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, factors = datamodule.split(name)
    return from_uint8(images), factors


def with_and_without_syntheses(data: dict[str, Any], settings: dict[str, Any], swapped: list[str],
                               keys: tuple[str, str], **deae_options: Any) -> dict[str, Any]:
    """The scripts' common study on the fonts datamodule ``data``. For each seed in
    ``settings["seeds"]`` (``harness.over_seeds``): train DEAE on the training split (once, or once
    per seed with ``deae_per_seed``), synthesise ``copies`` images per training image with the
    ``swapped`` blocks taken from random training images, and train a letter classifier on the real
    images alone (``keys[0]``) and with the syntheses (``keys[1]``); both are scored on the test
    split. Returns means, sample standard deviations, per-seed accuracies and sizes.
    """
    dm = fonts(**data)
    train_x, train_y = split(dm, "train")
    test_x, test_y = split(dm, "test")
    models: dict[int, Any] = {}

    def run(seed: int) -> dict[str, float]:
        if not models or settings["deae_per_seed"]:
            models.clear()
            models[seed] = train_model("deae", data, settings["deae_steps"], seed, width=settings["deae_width"],
                                       blocks=settings["blocks"], lr=settings["deae_lr"], **deae_options)
        model = next(iter(models.values()))
        syn_x, syn_y = synthesise(model, train_x, train_y, torch.arange(len(train_x)), swapped, settings["copies"], seed)
        scores = {}
        for key, (x, y) in zip(keys, [(train_x, train_y), (torch.cat([train_x, syn_x]), torch.cat([train_y, syn_y]))]):
            net = train_classifier(x, y[:, 0], dm.num_classes, settings["classifier_steps"], seed)
            scores[key] = accuracy(net, test_x, test_y[:, 0])
        return scores

    def show(seed: int, scores: dict[str, float]) -> None:
        print(f"seed {seed}: " + "  ".join(f"{key.removesuffix('_acc')} {v:.4f}" for key, v in scores.items()), flush=True)

    runs, stats = over_seeds(run, settings["seeds"], keys, after=show)
    return {
        **{key: stats[key][0] for key in keys},
        **{f"{key}_std": stats[key][1] for key in keys},
        **{f"{key}_per_seed": [r[key] for r in runs] for key in keys},
        "train_items": len(train_x), "synthesised_items": len(train_x) * settings["copies"], "test_items": len(test_x),
    }


def report(result: dict[str, Any], header: str, rows: dict[str, str], out: str | None) -> dict[str, Any]:
    """Print a study's table (``rows``: label -> result key, mean ± std over seeds) and timings; write
    the JSON to ``out`` and the table beside it (``.md``)."""
    column = f"{header} (mean ± std over seeds)"
    table = [{"classifier trained on": label, column: pm(result[key], result[key + "_std"], ".4f")}
             for label, key in rows.items()]
    print(write_results(table, out, md_beside(out) if out else None, data=result))
    print(f"wall {result['wall_s']} s, CPU {result['cpu_s']} s")
    return result


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished subprocesses (the ``aegen fit`` runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Clock:
    def __init__(self) -> None:
        self.start, self.cpu = time.time(), cpu_seconds()

    def elapsed(self) -> dict[str, float]:
        """Wall and CPU seconds since the start (CPU: this process's and its training subprocesses')."""
        return {"wall_s": round(time.time() - self.start, 1), "cpu_s": round(cpu_seconds() - self.cpu, 1)}
