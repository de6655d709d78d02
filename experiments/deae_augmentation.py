"""Attribute-controlled data augmentation with DEAE: does a letter classifier trained on few fonts images improve?

Training data: a small unbiased fonts set (a few hundred images of 10 letters in 6 faces, 3 sizes,
5 font colours and 5 backgrounds). A letter classifier (aegen's judge CNN) is trained

- on the real training images only (``baseline_acc``), and
- on the real images plus DEAE syntheses showing new combinations: each training image keeps its
  letter block and takes its font, size, font colour and background colour blocks from random
  other training images, labelled with its own letter (``augmented_acc``; the authors' generator
  instead interpolates inside each block, giving new attribute values rather than new
  combinations of seen ones),

and scored on the full unbiased test split. DEAE is trained on the same small training split,
once per seed (``--quick``: once, shared by the classifier seeds); nothing is tuned on the test split (all settings are fixed below). Means and
standard deviations over seeds.

    python experiments/deae_augmentation.py --quick --out a.json
"""

from __future__ import annotations

import argparse

import torch
from deae_common import SUBSET, THREADS, Clock, report, with_and_without_syntheses

from aegen.models.deae import FONTS_BLOCKS

STYLE = ["font", "size", "font_colour", "background_colour"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and seeds (a few minutes on 2 CPU cores)")
    parser.add_argument("--out", help="write the results here as JSON")
    parser.add_argument("--root", default=None, help="data root (default: $AEGEN_DATA or ~/.cache/aegen/data)")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    settings = {
        "subset": SUBSET, "image_size": 32, "num_items": 3000, "train_items": 300,
        "deae_steps": 250 if args.quick else 1500, "deae_batch_size": 16, "deae_width": 8, "deae_lr": 1e-3,
        "blocks": FONTS_BLOCKS, "swapped_blocks": STYLE, "copies": 3, "classifier_steps": 400 if args.quick else 1000,
        "seeds": [0, 1, 2],
        # --quick trains one DEAE (seed 0) shared by every classifier seed; otherwise one DEAE per seed
        "deae_per_seed": not args.quick,
    }
    clock = Clock()
    # the small training set: the first train_items of the (seeded, shuffled) training split
    data = {"root": args.root, "subset": SUBSET, "image_size": settings["image_size"], "num_items": settings["num_items"],
            "train_items": settings["train_items"], "batch_size": settings["deae_batch_size"]}
    result = with_and_without_syntheses(data, settings, STYLE, ("baseline_acc", "augmented_acc"))
    result.update(settings={**settings, "quick": args.quick}, **clock.elapsed())
    return report(result, "test accuracy", {f"{result['train_items']} real fonts images": "baseline_acc",
                  f"real + {result['synthesised_items']} DEAE syntheses": "augmented_acc"}, args.out)


if __name__ == "__main__":
    main()
