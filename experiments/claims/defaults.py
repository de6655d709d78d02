"""Every registered model as ``aegen fit --model NAME`` trains it: one table, a floor, the seed methods' points.

``AEGEN_DEFAULTS_MODELS=ae,gaia`` (comma-separated registry names) restricts the table to those models,
for a smoke test (``--seeds 1 --epochs 1``); unset, every model of ``aegen list`` runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from claims import Comparison, Context, Report, claim, ours
from claims.baselines import SHEET_IMAGES, reconstruction_sheet
from harness import aegen

KEYS = ("recon_mse", "recon_judge_acc", "fid_judge", "interp_fid_judge", "cluster_error_hungarian",
        "kmeans_pixels_cluster_error_hungarian", "edit_acc")
COLUMNS = {"recon_mse": ".4f", "recon_judge_acc": ".3f", "fid_judge": ".4g", "interp_fid_judge": ".4g",
           "cluster_error_hungarian": ".3f", "edit_acc": ".3f"}
HEADS = {"cluster_error_hungarian": "Hungarian error", "edit_acc": "edit_acc"}
RECON_FLOOR = {"digits": 0.9, "fonts": 0.8}  # recon_judge_acc (fonts: every factor read right)
MAX_FIT_S = 600
BLOB = "Gaussian blob (ae decoder, N(0, I) codes)"


def model_names() -> list[str]:
    """The registry's models (as ``aegen list`` lists them), or those ``AEGEN_DEFAULTS_MODELS`` names."""
    from aegen.registry import models

    names = sorted(models())
    wanted = [n.strip() for n in os.environ.get("AEGEN_DEFAULTS_MODELS", "").split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise RuntimeError(f"AEGEN_DEFAULTS_MODELS names unknown models: {', '.join(unknown)}")
    return [n for n in names if n in wanted] if wanted else names


def needs_factors(name: str) -> bool:
    """Models that train on factor groups (``requires_factors``: deae, gsl) need ``--data fonts``."""
    from aegen.registry import get_model

    return bool(getattr(get_model(name), "requires_factors", False))


def may_have_cluster_head(name: str) -> bool:
    """Models whose class overrides ``cluster_probs`` (metrics.json's ``cluster_source`` says if it is used)."""
    from aegen.models.base import GenerativeAE
    from aegen.registry import get_model

    return get_model(name).cluster_probs is not GenerativeAE.cluster_probs


def metric_groups(name: str) -> str:
    return ",".join(["recon", "judge", "interp", *(["cluster"] if may_have_cluster_head(name) else []),
                     *(["edit"] if needs_factors(name) else [])])


def epoch_flags(ctx: Context) -> list[Any]:
    """``--trainer.max_epochs``: ``--epochs``, else the epochs ``aegen fit`` runs when none are given. Stated even
    at the default, so that the other claims' fits of the same setting (which state it) are reused."""
    from aegen.cli import DEFAULT_EPOCHS

    return ["--trainer.max_epochs", ctx.epochs or DEFAULT_EPOCHS]


def sheets(ckpt: Path, factors: bool, out: Path) -> list[str]:
    """The run's last training sheets (images/KIND_epochNNN.png), the evaluation's sheets and, for factor
    models, an ``aegen edit`` sheet (font colour set to value 3)."""
    last: dict[str, Path] = {}
    for path in sorted((ckpt.parent.parent / "images").glob("*_epoch*.png")):
        last[path.stem.rsplit("_epoch", 1)[0]] = path  # sorted: the last epoch wins
    paths = [*last.values(), *sorted(ckpt.parent.glob("eval-*/*.png"))]
    if factors:
        edit = ckpt.parent / "edit-font_colour-3.png"
        if not edit.exists():
            aegen("edit", ckpt, "--factor", "font_colour", "--value", 3, "--out", edit, cwd=ckpt.parent)
        paths.append(edit)
    return [str(p.relative_to(out)) for p in paths]  # under --out


def default_run(ctx: Context, model: str, seed: int, data: str, metrics: str) -> dict[str, Any]:
    """``aegen fit --model MODEL --data DATA`` at its defaults, evaluated; its keys, fit seconds and sheets."""
    ckpt, seconds = ctx.fit(model, seed=seed, data=data, flags=epoch_flags(ctx))
    result = ctx.evaluate(ckpt, metrics, seed=seed)
    if result.get("cluster_source", "kmeans") == "kmeans":  # no cluster head: k-means on codes is no model's own
        result.pop("cluster_error_hungarian", None)
    return {k: result[k] for k in KEYS if k in result} | {"fit_s": seconds, "ckpt": str(ckpt.relative_to(ctx.out)),
                                                         "sheets": sheets(ckpt, needs_factors(model), ctx.out)}


def blob_run(ctx: Context, ae_ckpt: Path, seed: int) -> dict[str, Any]:
    """``fid_judge`` of the ae's decoder on N(0, I) codes: its checkpoint with the sampler set to N(0, I)."""
    import torch

    path = ae_ckpt.parent.parent / "blob" / "blob.ckpt"
    if not path.exists():
        state = torch.load(ae_ckpt, map_location="cpu", weights_only=False)
        weights = state["state_dict"]
        for key in [k for k in weights if k.endswith("sampler.mean")]:
            weights[key] = torch.zeros_like(weights[key])
        for key in [k for k in weights if k.endswith("sampler.scale_tril")]:
            weights[key] = torch.eye(weights[key].shape[0], dtype=weights[key].dtype)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
    return {"fid_judge": ctx.evaluate(path, "judge", seed=seed)["fid_judge"]}


def overview_sheets(ckpts: dict[str, Path], out: Path, prefix: str, data: str = "digits") -> list[Path]:
    """One picture per kind across the models of the first seed (on ``data``): the same test images reconstructed
    by each model with an encoder, 8 samples of each model (noise seed 0), and each model's path between the same
    two test images of different classes (between two of its generator inputs without an encoder)."""
    import torch

    import aegen
    from aegen.latent import generator_interpolation
    from aegen.viz import Sheet, save_sheet

    models = {name: aegen.load(ckpt).eval() for name, ckpt in ckpts.items()}
    encoders = {name: m for name, m in models.items() if m.has_encoder and learns_reconstruction(name)}
    paths = [reconstruction_sheet(encoders, out / f"{prefix}-reconstructions.png", data)]
    dm = aegen.get_data(data)()
    dm.setup("test")
    x, y = dm.tensors("test", 32)
    y = dm.class_labels(y)
    a, b = x[:1], x[int((y != y[0]).nonzero()[0])].unsqueeze(0)  # the first test image and the first of another class
    with torch.no_grad():
        samples = [m.sample(SHEET_IMAGES, torch.Generator().manual_seed(0)).clamp(-1, 1) for m in models.values()]
        paths.append(save_sheet(Sheet(torch.stack(samples), rows=list(models)), out / f"{prefix}-samples.png"))
        interps = [(m.interpolate(a, b, SHEET_IMAGES) if m.has_encoder else generator_interpolation(
            m, 1, SHEET_IMAGES, generator=torch.Generator().manual_seed(0)))[0].clamp(-1, 1) for m in models.values()]
    paths.append(save_sheet(Sheet(torch.stack(interps), rows=list(models)), out / f"{prefix}-interpolations.png"))
    return paths


def learns_reconstruction(name: str) -> bool:
    """Models with an encoder trained to reconstruct (not InfoGAN, whose Q only infers its own codes)."""
    from aegen.registry import get_model, models

    return name not in models() or bool(getattr(get_model(name), "learns_reconstruction", True))


def floor(name: str, runs: list[dict], data: str, blob: list[dict] | None) -> str:
    """"ok", or "not met: " and what of the floor the row fails (means over seeds)."""
    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in runs]))

    fails = []
    if learns_reconstruction(name) and "recon_judge_acc" in runs[0] and mean("recon_judge_acc") < RECON_FLOOR[data]:
        fails.append(f"recon_judge_acc {mean('recon_judge_acc'):.3f} < {RECON_FLOOR[data]}")
    if mean("fit_s") > MAX_FIT_S:
        fails.append(f"fit {mean('fit_s'):.0f} s > {MAX_FIT_S} s")
    if blob and "fid_judge" in runs[0]:
        line = float(np.mean([r["fid_judge"] for r in blob]))
        if mean("fid_judge") >= line:
            fails.append(f"fid_judge {mean('fid_judge'):.4g} >= blob {line:.4g}")
    return f"not met: {'; '.join(fails)}" if fails else "ok"


def row(label: str, data: str, runs: list[dict], blob: list[dict] | None) -> dict[str, str]:
    out = {"model": label, "data": data}
    out["fit s"] = ours([r["fit_s"] for r in runs], ".0f") if "fit_s" in runs[0] else "-"
    for key, spec in COLUMNS.items():
        present = [r[key] for r in runs if key in r]
        out[HEADS.get(key, key)] = ours(present, spec) if len(present) == len(runs) else "-"
    if blob and "fid_judge" in runs[0] and runs is not blob:
        ratio = np.mean([r["fid_judge"] for r in runs]) / np.mean([r["fid_judge"] for r in blob])
        out["fid / blob"] = f"{ratio:.2f}"
    else:
        out["fid / blob"] = "-"
    out["floor"] = "-" if runs is blob else floor(label, runs, data, blob)
    return out


def comparisons(runs: dict[str, list[dict]], fonts_ae: list[dict]) -> list[Comparison]:
    """The seed methods' points at their defaults, for the models in the table."""
    def values(model: str, key: str) -> list[float]:
        return [r[key] for r in runs[model]]

    out = []
    if {"gaia", "ae"} <= runs.keys():
        out.append(Comparison("gaia's midpoints beat ae's (interp_fid_judge, lower is better)",
                              values("gaia", "interp_fid_judge"), values("ae", "interp_fid_judge"), True))
    if "latentgan" in runs and "cluster_error_hungarian" in runs["latentgan"][0]:
        out.append(Comparison("latentgan's clusters beat k-means on pixels (Hungarian error, lower is better)",
                              values("latentgan", "cluster_error_hungarian"),
                              values("latentgan", "kmeans_pixels_cluster_error_hungarian"), True))
    if {"codegen_aae", "aae"} <= runs.keys():
        out.append(Comparison("codegen_aae's samples beat aae's (fid_judge, lower is better)",
                              values("codegen_aae", "fid_judge"), values("aae", "fid_judge"), True))
    if "deae" in runs and fonts_ae:
        out.append(Comparison("deae's edits beat ae's on fonts (edit_acc, higher is better)",
                              values("deae", "edit_acc"), [r["edit_acc"] for r in fonts_ae], False))
    return out


@claim("defaults", "Every model's plain `aegen fit` default: recon, judge accuracy, sample and midpoint FID, floor",
       "aegen's own bar (no paper): each default gives a working model within 10 minutes on a 2-core CPU",
       needs=lambda ctx: ["defaults has no paper scale"])
def defaults(ctx: Context) -> Report:
    """Each registered model as ``aegen fit --model NAME`` trains it (digits; fonts for factor models),
    ``aegen evaluate --metrics recon,judge,interp`` (+ cluster, edit where they apply); the ae's
    decoder on N(0, I) codes as the blob each model's samples must beat."""
    names = model_names()
    runs: dict[str, list[dict]] = {n: [] for n in names}
    datas = sorted({"fonts" if needs_factors(n) else "digits" for n in names})
    blobs: dict[str, list[dict]] = {d: [] for d in datas}
    fonts_ae: list[dict] = []
    for seed in ctx.seeds:
        for name in names:
            data = "fonts" if needs_factors(name) else "digits"
            runs[name].append(default_run(ctx, name, seed, data, metric_groups(name)))
        for data in datas:
            ae = runs["ae"][-1] if data == "digits" and "ae" in runs else default_run(
                ctx, "ae", seed, data, "recon,judge,interp" + (",edit" if data == "fonts" else ""))
            if data == "fonts":
                fonts_ae.append(ae)
            blobs[data].append(blob_run(ctx, ctx.out / ae["ckpt"], seed))
    digits = [n for n in names if not needs_factors(n)]
    overview = overview_sheets({n: ctx.out / runs[n][0]["ckpt"] for n in digits}, ctx.out,
                               f"{ctx.name}-seed{ctx.seeds[0]}") if digits else []
    fonts = {n: ctx.out / runs[n][0]["ckpt"] for n in names if needs_factors(n)}
    fonts_overview = overview_sheets({**fonts, "ae": ctx.out / fonts_ae[0]["ckpt"]}, ctx.out,
                                     f"{ctx.name}-fonts-seed{ctx.seeds[0]}", "fonts") if fonts_ae else []
    rows = [row(n, d, runs[n], blobs[d]) for n, d in ((n, "fonts" if needs_factors(n) else "digits") for n in names)]
    if fonts_ae:
        rows.append(row("ae (fonts; deae's reference)", "fonts", fonts_ae, blobs["fonts"]))
    rows += [row(BLOB, d, blobs[d], blobs[d]) for d in datas]
    epochs = (f"{ctx.epochs} epochs (--epochs)" if ctx.epochs else
              "the CLI's default epochs, passed as --trainer.max_epochs so that equal fits of other claims are shared")
    setting = (f"`aegen fit --model NAME` with no other options ({epochs}; default threads): digits, fonts for the "
               "factor models; `aegen evaluate --metrics recon,judge,interp` (+ cluster for models with a cluster "
               "head, edit on fonts) at its defaults")
    notes = [f"floor: recon_judge_acc >= {RECON_FLOOR['digits']} on digits, every factor read right >= "
             f"{RECON_FLOOR['fonts']} on fonts; fit <= {MAX_FIT_S} s; fid_judge below the blob's (fid / blob < 1); a row "
             "that misses it reads \"not met\", and its method's page says why (for the fonts rows, deae's)",
             "Hungarian error: models with a cluster head only; the latentgan comparison's other side is k-means "
             "on the same test images' pixels (kmeans_pixels_cluster_error_hungarian)",
             "sheets: data.sheets lists each run's last training sheets, evaluation sheets and (factor models) "
             "an `aegen edit --factor font_colour --value 3` sheet, as paths under --out (as is data.runs' ckpt)",
             *(f"{p.name} (beside this table): seed {ctx.seeds[0]}, one row per digits model" for p in overview),
             *(f"{p.name} (beside this table): seed {ctx.seeds[0]}, one row per fonts model and the fonts ae"
               for p in fonts_overview)]
    data = {"runs": runs, "blob": blobs, "fonts_ae": fonts_ae,
            "sheets": {n: [r["sheets"] for r in runs[n]] for n in names}}
    return Report("Every model at its defaults", setting, rows, comparisons(runs, fonts_ae), notes, data)
