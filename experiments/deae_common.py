"""Shared pieces of the DEAE experiments: train a model on fonts, synthesise by block swaps, train a letter classifier.

Used by ``deae_augmentation.py``, ``deae_debias.py`` and ``deae_compare.py``; runs on the CPU.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from harness import md_beside, mean_std, pm, write_results

import aegen
from aegen.data.base import from_uint8
from aegen.latent import encode_all
from aegen.metrics.controllability import decode_all, edit_codes
from aegen.metrics.judge import JudgeNet
from aegen.models.deae import FONTS_BLOCKS as BLOCKS  # the paper's Fonts layout


def fonts(root: str | None, **options: Any):
    return aegen.get_data("fonts")(root=root, **options)


def train_model(name: str, datamodule, steps: int, seed: int, width: int = 16, **options: Any):
    """A model trained for ``steps`` Adam steps on the datamodule (CPU, no logging, no checkpoints)."""
    # in-process, not harness.fit: deae_augmentation trains on a truncated in-memory split that `aegen fit` cannot express
    pl.seed_everything(seed, verbose=False)
    model = aegen.get_model(name)(img_shape=datamodule.img_shape, num_classes=datamodule.num_classes, width=width,
                                  **options)
    trainer = pl.Trainer(max_steps=steps, max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule)
    model.eval()
    if model.samples_from_code_gaussian:  # validation is off, so fit the sampling Gaussian here
        datamodule.groups = False
        model.fit_code_gaussian(datamodule.train_dataloader())
    return model


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
    names = list(aegen.get_data("fonts").factor_names)
    swapped = [names.index(name) for name in blocks]
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


def with_and_without_syntheses(dm, settings: dict[str, Any], swapped: list[str], keys: tuple[str, str],
                               **deae_options: Any) -> dict[str, Any]:
    """The scripts' common study. For each seed in ``settings["seeds"]``: train DEAE on the training
    split (once, or once per seed with ``deae_per_seed``), synthesise ``copies`` images per training
    image with the ``swapped`` blocks taken from random training images, and train a letter
    classifier on the real images alone (``keys[0]``) and with the syntheses (``keys[1]``); both are
    scored on the test split. Returns means, sample standard deviations, per-seed accuracies and sizes.
    """
    train_x, train_y = split(dm, "train")
    test_x, test_y = split(dm, "test")
    scores: dict[str, list[float]] = {key: [] for key in keys}
    model = None
    for seed in settings["seeds"]:
        if model is None or settings["deae_per_seed"]:
            model = train_model("deae", dm, settings["deae_steps"], seed, width=settings["deae_width"],
                                blocks=BLOCKS, lr=settings["deae_lr"], **deae_options)
        syn_x, syn_y = synthesise(model, train_x, train_y, torch.arange(len(train_x)), swapped, settings["copies"], seed)
        for key, (x, y) in zip(keys, [(train_x, train_y), (torch.cat([train_x, syn_x]), torch.cat([train_y, syn_y]))]):
            net = train_classifier(x, y[:, 0], dm.num_classes, settings["classifier_steps"], seed)
            scores[key].append(accuracy(net, test_x, test_y[:, 0]))
        print(f"seed {seed}: " + "  ".join(f"{key.removesuffix('_acc')} {v[-1]:.4f}" for key, v in scores.items()), flush=True)
    stats = mean_std([dict(zip(scores, run)) for run in zip(*scores.values())], keys)
    return {
        **{key: stats[key][0] for key in keys},
        **{f"{key}_std": stats[key][1] for key in keys},
        **{f"{key}_per_seed": v for key, v in scores.items()},
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


class Clock:
    def __init__(self) -> None:
        self.start, self.cpu = time.time(), time.process_time()

    def elapsed(self) -> dict[str, float]:
        return {"wall_s": round(time.time() - self.start, 1), "cpu_s": round(time.process_time() - self.cpu, 1)}
