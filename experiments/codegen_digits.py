"""The learned-prior experiments on the embedded digits, in one run (judge metrics, issue 4).

1. codegen_aae (unsupervised) against aae at the same budget: judge-FID of samples (the paper's
   central claim: the learned prior gives better samples).
2. codegen_aae --model.setting supervised: cond_acc_judge (the label controls the class) and a
   sample sheet, rows = noise, columns = label (the paper's Fig. 10).
3. `aegen prior` for ae, vae and aae: judge-FID of samples from the model's own Gaussian, from a
   Gaussian mixture (--kind gmm) and from a latent-GAN code generator (--kind gan).

Everything goes through the CLI (`aegen fit`, `aegen prior`, `aegen evaluate --metrics judge`).

    python experiments/codegen_digits.py --epochs 20 --out experiments/results/codegen_digits

prints a markdown table and writes ``<out>/results.json`` (the table also to ``<out>/results.md``).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from harness import aegen, evaluate, fit, last_checkpoint, markdown_table, write_results

FITS = {  # name -> (registered model, `aegen fit` flags)
    "aae": ("aae", ["--model.latent_dim", "64"]),
    "codegen_aae": ("codegen_aae", []),
    "codegen_aae_supervised": ("codegen_aae", ["--model.setting", "supervised"]),
    "ae": ("ae", ["--model.latent_dim", "64"]),
    "vae": ("vae", ["--model.latent_dim", "64"]),
}
PRIOR_BASES = ("ae", "vae", "aae")


def train(name: str, epochs: int, seed: int, out: Path) -> Path:
    model, flags = FITS[name]
    return fit(model, *flags, "--trainer.max_epochs", epochs, "--trainer.accelerator", "cpu", data=None, seed=seed,
               root=out / name, threads=1)


def judge(name: str, ckpt: Path, out: Path, num_samples: int) -> dict:
    return evaluate(ckpt, metrics="judge", out=out / "eval" / name, num_samples=num_samples, cwd=out, threads=1)


def label_sheet(ckpt: Path, path: Path, rows: int = 8) -> None:
    """Rows = noise, columns = label: the same noise for every label of a row."""
    import aegen as lib
    from aegen.viz import save_sheet

    model = lib.load(ckpt)
    k = model.condition.size
    noise = torch.randn(rows, model.noise_dim, generator=torch.Generator().manual_seed(0)).repeat_interleave(k, 0)
    s = torch.nn.functional.one_hot(torch.arange(k).repeat(rows), k).float()
    with torch.no_grad():
        images = model.decode(model.codes_from(s, noise))
    save_sheet(images.unflatten(0, (rows, k)), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=2000, help="generated images per judge evaluation")
    parser.add_argument("--prior-steps", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2, help="trainings in parallel")
    parser.add_argument("--out", default="experiments/results/codegen_digits")
    parser.add_argument("--fits", default=",".join(FITS),
                        help=f"comma-separated models to train (default: all of {', '.join(FITS)}); the `aegen prior` "
                        f"part runs for those of {', '.join(PRIOR_BASES)} among them, e.g. --fits ae,vae,aae")
    args = parser.parse_args()
    fits = args.fits.split(",")
    if unknown := set(fits) - set(FITS):
        parser.error(f"unknown --fits {', '.join(sorted(unknown))}; choose from {', '.join(FITS)}")
    bases = [b for b in PRIOR_BASES if b in fits]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    with ThreadPoolExecutor(args.jobs) as pool:
        ckpts = dict(zip(fits, pool.map(lambda n: train(n, args.epochs, args.seed, out), fits)))
    print(f"trained in {time.time() - start:.0f} s", flush=True)

    priors = {}
    for base in bases:
        for kind in ("gmm", "gan"):
            path = out / f"{base}-prior-{kind}.ckpt"
            priors[(base, kind)] = last_checkpoint(aegen("prior", ckpts[base], "--out", path, "--kind", kind, "--steps",
                                                         args.prior_steps, "--seed", args.seed, cwd=out, threads=1), out)
    print(f"priors fitted at {time.time() - start:.0f} s", flush=True)

    evals = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        items = {**{(n, "own"): c for n, c in ckpts.items()}, **priors}
        runs = pool.map(lambda kc: judge("-".join(kc[0]), kc[1], out, args.num_samples), items.items())
        for key, metrics in zip(items, runs):
            evals[key] = metrics
    if "codegen_aae_supervised" in ckpts:
        label_sheet(ckpts["codegen_aae_supervised"], out / "supervised_rows_noise_cols_label.png")
    wall = time.time() - start

    def fid(key):
        return evals[key]["fid_judge"]

    models = [{"model": name, "fid_judge": f"{m['fid_judge']:.2f}", "is_judge_mean": f"{m['is_judge_mean']:.2f}",
               "cond_acc_judge": f"{m.get('cond_acc_judge', float('nan')):.3f}"}
              for name in ("aae", "codegen_aae", "codegen_aae_supervised") if name in ckpts for m in [evals[(name, "own")]]]
    prior_columns = ["base", "Gaussian (own sampler)", "GMM (`--kind gmm`)", "code generator (`--kind gan`)"]
    priors_rows = [dict(zip(prior_columns, [base, *(f"{fid((base, k)):.2f}" for k in ("own", "gmm", "gan"))]))
                   for base in bases]
    table = "\n\n".join([markdown_table(models, ["model", "fid_judge", "is_judge_mean", "cond_acc_judge"]),
                          markdown_table(priors_rows, prior_columns)])
    print(table)
    print(f"\nwall time {wall:.0f} s; {args.epochs} epochs, seed {args.seed}, {args.num_samples} samples per judge-FID")
    results = {"epochs": args.epochs, "seed": args.seed, "num_samples": args.num_samples, "prior_steps": args.prior_steps,
               "wall_s": wall, "checkpoints": {k: str(v) for k, v in ckpts.items()},
               "metrics": {"/".join(k): v for k, v in evals.items()}, "table": table}
    write_results(table, out / "results.json", out / "results.md", data=results)


if __name__ == "__main__":
    main()
