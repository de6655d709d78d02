"""What ``aegen evaluate`` writes besides ``metrics.json``: image sheets of a checkpoint and ``report.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from aegen.latent import encode_all
from aegen.viz import interpolation_sheet, recon_sheet, save_sheet

@torch.no_grad()
def write_sheets(model, datamodule, out: Path, seed: int = 0) -> dict[str, str]:
    """Samples, reconstructions, interpolations, per-dimension traversals and a 2-D map of test codes."""
    x, y = datamodule.tensors("test", 512)
    x = x.to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    sheets = {
        "samples": save_sheet(model.sample(64, generator=generator), out / "samples.png"),
        "reconstructions": save_sheet(recon_sheet(model, x[:32]), out / "reconstructions.png"),
        "interpolations": save_sheet(interpolation_sheet(model, x[:16]), out / "interpolations.png"),
        "traversals (one code dimension per row)": save_sheet(model.traversal(x[:1], steps=10), out / "traversals.png"),
        "test codes, first two principal components": code_scatter(model, x, datamodule.class_labels(y), out / "codes_pca.png"),
    }
    return {title: path.name for title, path in sheets.items()}


@torch.no_grad()
def code_scatter(model, images: torch.Tensor, labels: torch.Tensor | None, path: Path) -> Path:
    """A PNG scatter plot of the codes' first two principal components, coloured by class label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    codes = encode_all(model, images, device="cpu").double().numpy()
    points = PCA(n_components=2).fit_transform(codes) if codes.shape[1] >= 2 else np.c_[codes, np.zeros(len(codes))]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    scatter = ax.scatter(points[:, 0], points[:, 1], s=6, c=None if labels is None else labels.numpy(), cmap="tab10")
    if labels is not None and len(labels.unique()) <= 20:
        ax.legend(*scatter.legend_elements(), title="class", fontsize=6, loc="best", markerscale=0.8)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"{len(codes)} test codes")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def report(result: dict[str, Any], sheets: dict[str, str]) -> str:
    """``report.md``: the metrics table, what they were measured on, skipped groups and image sheets."""
    numbers = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and k not in ("num_samples", "seed", "seeds", "interp_num_samples")}
    lines = [f"# Evaluation of `{result['model']}` on `{result['data']}`", "",
             f"Checkpoint: `{result['checkpoint']}` (aegen {result['aegen_version']}).", "",
             f"Sample-quality metrics use {result['num_samples']} generated images against the "
             f"`{result['reference_split']}` split; reconstruction and clustering use the `{result['split']}` split; "
             f"`interp_fid_judge` uses {result.get('interp_num_samples', '-')} midpoints against the test split. "
             f"Feature extractors: {result.get('feature_extractor', 'none')}. Seeds: {result['seeds']} from {result['seed']}.",
             "", "| metric | value |", "|---|---|"]
    lines += [f"| `{k}` | {_fmt(v)} |" for k, v in numbers.items()]
    if result.get("skipped"):
        lines += ["", "## Not measured", ""] + [f"- `{k}`: {v}" for k, v in result["skipped"].items()]
    lines += ["", "## Image sheets", ""] + [f"### {title}\n\n![{title}]({name})\n" for title, name in sheets.items()]
    return "\n".join(lines) + "\n"
