"""The learned-prior experiments on the embedded digits, in one run (judge metrics, issue 4).

1. codegen_aae (unsupervised) against aae at the same budget: judge-FID of samples (the paper's
   central claim: the learned prior gives better samples).
2. codegen_aae --model.setting supervised: cond_acc_judge (the label controls the class) and a
   sample sheet, rows = noise, columns = label (the paper's Fig. 10).
3. `aegen prior` for ae, vae and aae: judge-FID of samples from the model's own Gaussian, from a
   Gaussian mixture (--kind gmm) and from a latent-GAN code generator (--kind gan).

Everything goes through the CLI (`aegen fit`, `aegen prior`, `aegen evaluate --metrics judge`).

    python experiments/codegen_digits.py --epochs 20 --out experiments/results/codegen_digits

prints a markdown table and writes ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

FITS = {
    "aae": ["--model", "aae", "--model.latent_dim", "64"],
    "codegen_aae": ["--model", "codegen_aae"],
    "codegen_aae_supervised": ["--model", "codegen_aae", "--model.setting", "supervised"],
    "ae": ["--model", "ae", "--model.latent_dim", "64"],
    "vae": ["--model", "vae", "--model.latent_dim", "64"],
}
PRIOR_BASES = ("ae", "vae", "aae")


def aegen(*args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "aegen", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"aegen {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def fit(name: str, epochs: int, seed: int, out: Path) -> Path:
    root = out / name
    stdout = aegen("fit", *FITS[name], "--trainer.max_epochs", str(epochs), "--seed_everything", str(seed),
                   "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
                   "--trainer.default_root_dir", str(root), cwd=out)
    return out / stdout.strip().splitlines()[-1].removeprefix("checkpoint: ")


def judge(name: str, ckpt: Path, out: Path, num_samples: int) -> dict:
    ev = out / "eval" / name
    aegen("evaluate", str(ckpt), "--metrics", "judge", "--num-samples", str(num_samples), "--out", str(ev), cwd=out)
    return json.loads((ev / "metrics.json").read_text())


def label_sheet(ckpt: Path, path: Path, rows: int = 8) -> None:
    """Rows = noise, columns = label: the same noise for every label of a row."""
    import aegen as lib
    from aegen.viz import save_sheet

    model = lib.load(ckpt)
    k = model.cond_dim
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
        ckpts = dict(zip(fits, pool.map(lambda n: fit(n, args.epochs, args.seed, out), fits)))
    print(f"trained in {time.time() - start:.0f} s", flush=True)

    priors = {}
    for base in bases:
        for kind in ("gmm", "gan"):
            path = out / f"{base}-prior-{kind}.ckpt"
            aegen("prior", str(ckpts[base]), "--out", str(path), "--kind", kind, "--steps", str(args.prior_steps),
                  "--seed", str(args.seed), cwd=out)
            priors[(base, kind)] = path
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

    lines = ["| model | fid_judge | is_judge_mean | cond_acc_judge |", "|---|---|---|---|"]
    for name in [n for n in ("aae", "codegen_aae", "codegen_aae_supervised") if n in ckpts]:
        m = evals[(name, "own")]
        lines.append(f"| {name} | {m['fid_judge']:.2f} | {m['is_judge_mean']:.2f} | "
                     f"{m.get('cond_acc_judge', float('nan')):.3f} |")
    lines += ["", "| base | Gaussian (own sampler) | GMM (`--kind gmm`) | code generator (`--kind gan`) |", "|---|---|---|---|"]
    for base in bases:
        lines.append(f"| {base} | {fid((base, 'own')):.2f} | {fid((base, 'gmm')):.2f} | {fid((base, 'gan')):.2f} |")
    table = "\n".join(lines)
    print(table)
    print(f"\nwall time {wall:.0f} s; {args.epochs} epochs, seed {args.seed}, {args.num_samples} samples per judge-FID")
    results = {"epochs": args.epochs, "seed": args.seed, "num_samples": args.num_samples, "prior_steps": args.prior_steps,
               "wall_s": wall, "checkpoints": {k: str(v) for k, v in ckpts.items()},
               "metrics": {"/".join(k): v for k, v in evals.items()}, "table": table}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
