"""Controllable synthesis on factor datasets: factor blocks, block edits and explorations, and their judges.

- ``factor_blocks``: the code dimensions of each factor. Models with named blocks (``deae``,
  ``gsl``: a ``blocks`` attribute, name -> slice) give their own; for any other model (ae, vae,
  beta-VAE, ...) each code dimension is assigned to the factor it is most informative of
  (mutual information between the dimension, discretised into 20 equal-width bins as for MIG,
  and the factor, divided by the factor's entropy, on training codes), and a factor that wins no
  dimension gets its single most informative one. Editing then swaps those dimensions: the
  "latent-dimension swap" that makes the comparison with block models honest.
- ``edit_codes`` / ``explore_codes``: set a factor's block from another code, or walk it
  linearly from one code's block to another's, keeping every other dimension.
- ``factor_judges``: one small CNN classifier per factor (``aegen.metrics.judge``'s ``JudgeNet``,
  trained and cached by its ``get_judge`` under ``<root>/judges/<dataset>.<factor>-...``; the
  factor that is the dataset's class, fonts' letter, is read by the class judge ``<dataset>-...``),
  trained on the dataset's judge data: for Fonts a fixed draw without ``bias`` (so that it reads
  each factor on its own) of ``judge_items`` items, whatever the run's ``num_items``.
- ``edit_scores``: for every factor k with a block, each test image gets block k from another
  test image with a different value of k. ``edit_acc_target``: share of edits whose judge-k
  reading is the source's value; ``edit_acc_keep``: share of edits where the judges of every
  other factor read the original image's values; ``edit_acc``: share of edits where both hold
  (a model that barely changes its images scores a high ``edit_acc_keep`` and a low
  ``edit_acc_target``; ``edit_acc`` rewards only edits that do what was asked). All averaged over
  factors, with per-factor entries ``edit_acc_target/<factor>``, ``edit_acc_keep/<factor>`` and
  ``edit_acc/<factor>``, and ``recon_acc_keep`` (the same "every factor read right" on plain
  reconstructions: the ceiling of ``edit_acc_keep``), with ``recon_acc/<factor>`` (each judge alone on
  the reconstructions) and ``real_acc_keep`` (every factor read right on the real test images: the
  judges' own ceiling).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from aegen import latent
from aegen.errors import AegenError
from aegen.metrics.disentanglement import histogram_discretize
from aegen.metrics.judge import JudgeNet, get_judge, judge_data


@torch.no_grad()
def decode_all(model, codes: Tensor, batch_size: int = 256) -> Tensor:
    """Images of codes (N, D), in batches, on the CPU."""
    return torch.cat([model.decode(z.to(model.device)).cpu() for z in codes.split(batch_size)])


def infer_blocks(codes: Tensor, factors: Tensor, factor_names: list[str], num_bins: int = 20) -> dict[str, list[int]]:
    """Code dimensions per factor for models without blocks: each dimension goes to the factor of
    highest normalised mutual information; a factor left without one gets its best dimension."""
    from sklearn.metrics import mutual_info_score

    binned = histogram_discretize(codes.double().numpy(), num_bins)
    labels = factors.numpy()
    entropy = np.array([mutual_info_score(labels[:, k], labels[:, k]) for k in range(labels.shape[1])])
    info = np.array([[mutual_info_score(labels[:, k], binned[:, d]) for k in range(labels.shape[1])]
                     for d in range(binned.shape[1])])  # (D, K)
    info = info / np.maximum(entropy, 1e-12)
    owner = info.argmax(1)
    return {name: [int(d) for d in np.flatnonzero(owner == k)] or [int(info[:, k].argmax())]
            for k, name in enumerate(factor_names)}


def factor_blocks(model, datamodule, num_points: int = 5000) -> dict[str, list[int]]:
    """Factor name -> code dimensions: the model's own blocks, else inferred from training codes."""
    names = list(getattr(datamodule, "factor_names", None) or [])
    if not names:
        raise AegenError(f"dataset {datamodule.registry_name!r} has no factors to edit or explore")
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, dict):
        return {name: list(range(sl.start, sl.stop)) for name, sl in blocks.items() if name in names}
    images, factors = datamodule.tensors("train", num_points)
    return infer_blocks(latent.encode_all(model, images, device="cpu"), factors, names)


def edit_codes(codes: Tensor, sources: Tensor, dims: list[int]) -> Tensor:
    """``codes`` (N, D) with dimensions ``dims`` taken from ``sources`` (N, D)."""
    out = codes.clone()
    out[:, dims] = sources[:, dims]
    return out


def explore_codes(codes: Tensor, others: Tensor, dims: list[int], steps: int) -> Tensor:
    """(N, steps, D): ``dims`` walk linearly from ``codes``' values to ``others``', the rest stay ``codes``'."""
    t = torch.linspace(0, 1, steps).view(1, -1, 1)
    out = codes.unsqueeze(1).repeat(1, steps, 1)
    out[:, :, dims] = codes[:, None, dims] + t * (others[:, None, dims] - codes[:, None, dims])
    return out


def different_partners(values: Tensor, generator: torch.Generator, tries: int = 10) -> Tensor:
    """For each item, the index of a random other item with a different value (-1 if none found)."""
    n = len(values)
    partner = torch.randint(n, (n,), generator=generator)
    for _ in range(tries):
        same = values[partner] == values
        if not same.any():
            break
        partner[same] = torch.randint(n, (int(same.sum()),), generator=generator)
    partner[values[partner] == values] = -1
    return partner


def parse_value(datamodule, factor: str, value: str | int) -> int:
    """A factor value given as an index or (for datasets that name them, e.g. fonts) a name -> index."""
    names = list(datamodule.factor_names or [])
    if factor not in names:
        raise AegenError(f"unknown factor {factor!r}; {datamodule.registry_name} has: {', '.join(names)}")
    k = names.index(factor)
    size = datamodule.factor_sizes[k]
    labels = (getattr(datamodule, "factor_values", None) or [None] * len(names))[k]
    if labels is not None and str(value) in labels:
        return labels.index(str(value))
    try:
        index = int(value)
    except ValueError:
        shown = f"; or a name: {', '.join(labels)}" if labels else ""
        raise AegenError(f"--value for {factor}: an index 0..{size - 1}{shown}; got {value!r}") from None
    if not 0 <= index < size:
        raise AegenError(f"--value for {factor}: an index 0..{size - 1}, got {index}")
    return index


# ---------------------------------------------------------------------------- judges
class FactorView:
    """A datamodule seen as a classification dataset of one factor, for ``aegen.metrics.judge``."""

    def __init__(self, datamodule, factor: str) -> None:
        self.datamodule, self.factor = datamodule, factor
        self.index = list(datamodule.factor_names).index(factor)
        self.registry_name = f"{datamodule.registry_name}.{factor}"
        self.num_classes = datamodule.factor_sizes[self.index]
        self.hparams = {**datamodule.hparams, "factor": factor}
        self.root, self.image_size, self.channels = datamodule.root, datamodule.image_size, datamodule.channels
        self.judge_training = datamodule.judge_training

    def split(self, name: str):
        return self.datamodule.split(name)

    def class_labels(self, labels: Tensor) -> Tensor:
        return labels[:, self.index]


def factor_judges(datamodule, factors: list[str] | None = None, **train_options: Any) -> dict[str, JudgeNet]:
    """One cached judge per factor, trained on first use on the dataset's judge data (``judge_data``:
    for Fonts a fixed unbiased draw, so each judge reads its factor on its own whatever the run's
    ``num_items`` and ``bias``).

    Callable under ``torch.no_grad()`` (as ``edit_scores`` is): ``train_judge`` enables gradients
    itself, and ``get_judge``'s lock keeps concurrent callers from training the same judge twice.
    """
    data = judge_data(datamodule)
    shared = getattr(data, "class_factor", None)  # read by the class judge already: not trained twice
    return {name: get_judge(data if name == shared else FactorView(data, name), **train_options)
            for name in (factors or data.factor_names)}


# ---------------------------------------------------------------------------- scores
@torch.no_grad()
def edit_scores(
    model,
    datamodule,
    num_images: int = 2000,
    seed: int = 0,
    judges: dict[str, JudgeNet] | None = None,
    blocks: dict[str, list[int]] | None = None,
) -> dict[str, float]:
    """``edit_acc_target``, ``edit_acc_keep``, their per-factor entries, ``recon_acc_keep``, ``recon_acc/<factor>``
    and ``real_acc_keep`` on the test split."""
    names = list(datamodule.factor_names or [])
    blocks = factor_blocks(model, datamodule) if blocks is None else blocks
    judges = factor_judges(datamodule) if judges is None else judges
    images, factors = datamodule.tensors("test", num_images)
    codes = latent.encode_all(model, images, device="cpu")
    generator = torch.Generator().manual_seed(seed)

    def reads(decoded: Tensor) -> Tensor:  # (N, K) judge readings
        return torch.stack([judges[name].predict(decoded) for name in names], dim=1)

    recon_right = reads(decode_all(model, codes)) == factors
    out: dict[str, float] = {"recon_acc_keep": recon_right.all(1).float().mean().item(),
                             "real_acc_keep": (reads(images) == factors).all(1).float().mean().item(),
                             **{f"recon_acc/{name}": recon_right[:, k].float().mean().item()
                                for k, name in enumerate(names)}}
    targets, keeps, boths = [], [], []
    for k, name in enumerate(names):
        if name not in blocks:
            continue
        partner = different_partners(factors[:, k], generator)
        ok = partner >= 0
        if not ok.any():
            continue  # a constant factor cannot be edited
        source = partner[ok]
        decoded = decode_all(model, edit_codes(codes[ok], codes[source], blocks[name]))
        read = reads(decoded)
        others = [j for j in range(len(names)) if j != k]
        hit = read[:, k] == factors[source, k]
        kept = (read[:, others] == factors[ok][:, others]).all(1)
        target, keep, both = (v.float().mean().item() for v in (hit, kept, hit & kept))
        out[f"edit_acc_target/{name}"], out[f"edit_acc_keep/{name}"], out[f"edit_acc/{name}"] = target, keep, both
        targets.append(target)
        keeps.append(keep)
        boths.append(both)
    if not targets:
        raise AegenError("no factor of the data varies in the test split, so nothing can be edited")
    out["edit_acc_target"] = float(np.mean(targets))
    out["edit_acc_keep"] = float(np.mean(keeps))
    out["edit_acc"] = float(np.mean(boths))
    return out
