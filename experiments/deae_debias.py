"""De-biasing with DEAE (the paper's fairness use): synthesise the letter x background combinations a biased set lacks.

Training data: fonts with ``bias=[letter, background_colour]``: letter i appears only on
background i mod 5 (10 letters, 5 backgrounds, so each background holds two letters). Validation
and test are unbiased. A letter classifier (aegen's judge CNN) is trained

- (a) on the biased training images (``biased_acc``), and
- (b) on the biased images plus DEAE syntheses: each training image's background block replaced by
  that of another training image, labelled with the original letter (``debiased_acc``),

and scored on the unbiased test split. DEAE (exploring the background block only, the factor to
de-bias) is trained on the biased training split only, once per seed (``--quick``: once, shared
by the classifier seeds); nothing is tuned on the test split (all settings are fixed below). Means and standard
deviations over seeds.

    python experiments/deae_debias.py --quick --out d.json
"""

from __future__ import annotations

import argparse

import torch
from deae_common import SUBSET, THREADS, Clock, report, with_and_without_syntheses

from aegen.models.deae import FONTS_BLOCKS


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and seeds (a few minutes on 2 CPU cores)")
    parser.add_argument("--out", help="write the results here as JSON")
    parser.add_argument("--root", default=None, help="data root (default: $AEGEN_DATA or ~/.cache/aegen/data)")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    settings = {
        "subset": SUBSET, "bias": ["letter", "background_colour"], "image_size": 32, "num_items": 4500,
        "deae_steps": 250 if args.quick else 1500, "deae_batch_size": 16, "deae_width": 8, "deae_lr": 1e-3, "explore": ["background_colour"],
        "blocks": FONTS_BLOCKS, "copies": 2, "classifier_steps": 400 if args.quick else 1000,
        "seeds": [0, 1, 2],
        # --quick trains one DEAE (seed 0) shared by every classifier seed; otherwise one DEAE per seed
        "deae_per_seed": not args.quick,
    }
    clock = Clock()
    data = {"root": args.root, "subset": SUBSET, "bias": settings["bias"], "image_size": settings["image_size"],
            "num_items": settings["num_items"], "batch_size": settings["deae_batch_size"]}
    result = with_and_without_syntheses(data, settings, ["background_colour"], ("biased_acc", "debiased_acc"),
                                        explore=settings["explore"])
    result.update(settings={**settings, "quick": args.quick}, **clock.elapsed())
    return report(result, "unbiased test accuracy", {f"biased fonts ({result['train_items']} images)": "biased_acc",
                  "biased + DEAE de-biasing syntheses": "debiased_acc"}, args.out)


if __name__ == "__main__":
    main()
