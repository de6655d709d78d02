"""What ``aegen evaluate`` writes besides ``metrics.json``: image sheets of a checkpoint and ``report.md``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aegen.latent import encode_all
from aegen.viz import interpolation_sheet, recon_sheet, save_sheet, traversal_sheet


@torch.no_grad()
def has_generated_codes(model) -> bool:
    """Whether the model draws the codes ``sample`` decodes: False when it has neither a prior nor a sampler."""
    cuda = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # a prior that also draws from the global generator leaves it as it was
        try:
            model.generated_codes(2, torch.Generator(device=model.device).manual_seed(0))
        except NotImplementedError:
            return False
    return True


@torch.no_grad()
def write_sheets(model, datamodule, out: Path, seed: int = 0) -> dict[str, str]:
    """Samples, reconstructions, interpolations, per-dimension traversals and a 2-D map of test codes
    (no samples or traversals, which draw generated codes, for a model without them; for a model without an
    encoder no reconstructions or code map, and interpolations and traversals over generator inputs)."""
    x, y = datamodule.tensors("test", 512)
    x = x.to(model.device)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    generates, encodes = has_generated_codes(model), getattr(model, "has_encoder", True)
    sheets = {
        "samples": save_sheet(model.sample(64, generator=generator), out / "samples.png") if generates else None,
        "reconstructions": save_sheet(recon_sheet(model, x[:32]), out / "reconstructions.png") if encodes else None,
        "interpolations" if encodes else "interpolations between generator inputs (no encoder)":
            save_sheet(interpolation_sheet(model, x[:16], seed=seed), out / "interpolations.png"),
        "traversals (one code dimension per row)": save_sheet(traversal_sheet(
            model, x[:1] if encodes else None, steps=10), out / "traversals.png") if generates else None,
        "test codes, first two principal components":
            code_scatter(model, x, datamodule.class_labels(y), out / "codes_pca.png") if encodes else None,
    }
    return {title: path.name for title, path in sheets.items() if path is not None}


@contextmanager
def _figure(path: Path, title: str, xlabel: str, ylabel: str) -> Iterator[Any]:
    """Axes of a 5x5-inch figure that is saved as ``path`` (matplotlib's Agg backend) when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


@torch.no_grad()
def code_scatter(model, images: torch.Tensor, labels: torch.Tensor | None, path: Path) -> Path:
    """A PNG scatter plot of the codes' first two principal components, coloured by class label."""
    from sklearn.decomposition import PCA

    codes = encode_all(model, images, device="cpu").double().numpy()
    points = PCA(n_components=2).fit_transform(codes) if codes.shape[1] >= 2 else np.c_[codes, np.zeros(len(codes))]
    with _figure(path, f"{len(codes)} test codes", "PC 1", "PC 2") as ax:
        colours = None if labels is None else labels.numpy()
        scatter = ax.scatter(points[:, 0], points[:, 1], s=6, c=colours, cmap="tab10")
        if labels is not None and len(labels.unique()) <= 20:
            ax.legend(*scatter.legend_elements(), title="class", fontsize=6, loc="best", markerscale=0.8)
    return path


def codes_tsne(generated: torch.Tensor, encoded: torch.Tensor, path: Path, seed: int = 0) -> Path:
    """A PNG of a 2-D t-SNE (scikit-learn, PCA start, ``random_state=seed``) of generated codes and encoder
    codes, in two colours: whether the codes a model samples from cover the encoder's (Wang, Peng & Ko
    2020, Figs. 11 and 13)."""
    from sklearn.manifold import TSNE

    codes = torch.cat([generated, encoded]).double().numpy()
    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(codes) - 1) / 3),
                init="pca" if codes.shape[1] >= 2 else "random", random_state=seed)
    points = tsne.fit_transform(codes)
    title = f"{len(generated)} generated and {len(encoded)} encoder codes"
    with _figure(path, title, "t-SNE 1", "t-SNE 2") as ax:
        for part, label, colour in ((points[:len(generated)], "generated codes", "tab:orange"),
                                    (points[len(generated):], "encoder codes of test images", "tab:blue")):
            ax.scatter(part[:, 0], part[:, 1], s=6, c=colour, label=label, alpha=0.7)
        ax.legend(loc="best", fontsize=8, markerscale=1.5)
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


def headline(result: dict[str, Any]) -> dict[str, float]:
    """The result's headline numbers: its float metrics, without spreads over seeds or per-factor entries."""
    return {k: v for k, v in result.items()
            if isinstance(v, float) and not k.endswith("_seed_std") and "/" not in k}


def summary(result: dict[str, Any], out: Path) -> str:
    """What ``aegen evaluate`` prints: the headline numbers, one per line, and where the files went."""
    numbers = headline(result)
    width = max(map(len, numbers), default=0)
    lines = [f"{k:<{width}}  {_fmt(v)}" for k, v in numbers.items()]
    return "\n".join([*lines, f"wrote {out / 'metrics.json'} and {out / 'report.md'}"])
