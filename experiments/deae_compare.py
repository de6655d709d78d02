"""Controllable synthesis on fonts: deae vs gsl vs beta-VAE vs ae on the same budget.

Every model is trained for the same number of Adam steps with the same batch of anchors (16;
deae/gsl also see one partner per factor per anchor) on the same unbiased fonts subset, with the
same 20-d code. Then, on the test split: ``edit_acc_target`` / ``edit_acc_keep`` / ``edit_acc`` (per-factor
judges read edited images; deae/gsl edit their factor blocks, ae and beta-VAE swap the code
dimensions most informative of the factor: ``aegen.metrics.controllability``), ``recon_acc_keep``
(the same judges on plain reconstructions), ``mig`` and ``dci_*``.

    python experiments/deae_compare.py --quick --out c.json
"""

from __future__ import annotations

import argparse

import torch
from deae_common import SUBSET, THREADS, Clock, fonts, train_model
from harness import markdown_table, md_beside, write_results

from aegen.latent import encode_all
from aegen.metrics.controllability import edit_scores, factor_judges
from aegen.metrics.disentanglement import dci, mig
from aegen.models.deae import FONTS_BLOCKS

MODELS = {  # label -> (registered model, options)
    "deae": ("deae", {"blocks": FONTS_BLOCKS}),
    "gsl": ("gsl", {"blocks": FONTS_BLOCKS}),
    "beta-vae": ("vae", {"latent_dim": 20, "beta": 4.0}),
    "ae": ("ae", {"latent_dim": 20}),
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a few minutes per model on 2 CPU cores)")
    parser.add_argument("--out", help="write the results here as JSON")
    parser.add_argument("--root", default=None, help="data root (default: $AEGEN_DATA or ~/.cache/aegen/data)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), help="which models to compare")
    parser.add_argument("--steps", type=int, default=None, help="Adam steps per model (default: 250 with --quick, else 1500)")
    parser.add_argument("--width", type=int, default=8, help="conv width of every model (default 8)")
    parser.add_argument("--judge-steps", type=int, default=3000, help="at most this many steps per factor judge "
                        "(aegen.metrics.judge's default 3000; judges are cached per dataset on first use)")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    settings = {"subset": SUBSET, "image_size": 32, "num_items": 3000, "steps": args.steps or (250 if args.quick else 1500), "judge_max_steps": args.judge_steps,
                "batch_size": 16, "width": args.width, "lr": 1e-3, "seed": 0, "dci_points": [2000, 1000]}
    clock = Clock()
    data = {"root": args.root, "subset": SUBSET, "image_size": settings["image_size"], "num_items": settings["num_items"],
            "batch_size": settings["batch_size"]}
    dm = fonts(**data)
    judges = factor_judges(dm, max_steps=args.judge_steps)
    results = {}
    for label in args.models:
        name, options = MODELS[label]
        model = train_model(name, data, settings["steps"], settings["seed"], width=settings["width"], lr=settings["lr"],
                            **options)
        row = edit_scores(model, dm, judges=judges, seed=settings["seed"])
        train_x, train_y = dm.tensors("train", settings["dci_points"][0])
        test_x, test_y = dm.tensors("test", settings["dci_points"][1])
        codes_train, codes_test = encode_all(model, train_x, device="cpu"), encode_all(model, test_x, device="cpu")
        row["mig"] = mig(codes_train, train_y, seed=settings["seed"])
        row.update(dci(codes_train, train_y, codes_test, test_y, seed=settings["seed"]))
        results[label] = row
        print(label, {k: round(v, 4) for k, v in row.items() if "/" not in k}, flush=True)
    keys = ["edit_acc_target", "edit_acc_keep", "edit_acc", "recon_acc_keep", "mig", "dci_disentanglement", "dci_completeness",
            "dci_informativeness"]
    table = markdown_table([{"model": label, **{k: f"{row[k]:.3f}" for k in keys}} for label, row in results.items()],
                           ["model", *keys])
    print(table)
    result = {"results": results, "judge_test_accuracy": {k: j.meta["test_accuracy"] for k, j in judges.items()},
              "settings": {**settings, "models": {m: MODELS[m] for m in args.models}, "quick": args.quick}, **clock.elapsed()}
    print(f"wall {result['wall_s']} s, CPU {result['cpu_s']} s")
    write_results(table, args.out, md_beside(args.out) if args.out else None, data=result)
    return result


if __name__ == "__main__":
    main()
