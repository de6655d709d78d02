"""``aegen prior``: fit a sampler to a trained model's codes and save the model with it.

The model is loaded from its checkpoint and frozen; a sampler (``aegen.samplers``) is fitted to
the eval-mode codes of (up to 50,000 images of) the training split it was trained on and replaces
the model's own (its Gaussian, or its prior: ``sample`` decodes the sampler's codes, ``encode`` and
``decode`` are unchanged). The new checkpoint is the same model with that sampler: weights only,
in Lightning's format, read back by ``aegen.load`` (and so ``aegen sample``/``aegen evaluate``)
and by the model class's ``load_from_checkpoint``; its ``aegen.sampler`` record rebuilds the
sampler and ``aegen.prior`` says what it was fitted on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aegen.errors import DivergenceError
from aegen.models.base import GenerativeAE, plain

#: ``kind`` names of `aegen prior` that are not sampler names
ALIASES = {"gan": "latent_gan"}


def fit_prior(
    checkpoint: str | Path,
    out: str | Path,
    kind: str = "gan",
    steps: int = 2000,
    batch_size: int = 128,
    seed: int = 0,
    accelerator: str = "auto",
    gmm_components: int = 10,
    **options: Any,
) -> GenerativeAE:
    """Fit a sampler to a trained checkpoint's codes and write the model with it at ``out``.

    Args:
        checkpoint: the trained model's checkpoint.
        out: the new checkpoint.
        kind: the sampler: gan (``latent_gan``: a code generator trained adversarially on the codes),
            gmm (a scikit-learn Gaussian mixture) or any other name in ``aegen.samplers.SAMPLERS``.
        steps: gan: latent-GAN updates (one discriminator and one generator step each).
        batch_size: images per batch when encoding, and gan: codes per update.
        seed: seeds everything random in the fit (and gmm: scikit-learn's initialisation).
        accelerator: where to encode and fit: auto (a GPU if there is one), cpu or gpu.
        gmm_components: gmm: mixture components.
        options: further options of the sampler (e.g. gan_loss, gaussian_start, lr for gan;
            covariance for gmm); see its class.

    Returns the model with its new sampler, in eval mode.
    """
    import pytorch_lightning as pl

    from aegen.checkpoint import load, load_datamodule, read_checkpoint
    from aegen.latent import encode_batches
    from aegen.samplers import get_sampler

    name = ALIASES.get(kind, kind)
    try:
        get_sampler(name)
    except ValueError:
        raise ValueError(f"unknown prior kind {kind!r}; choose one of: gan, gmm, or a sampler name") from None
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    record = read_checkpoint(checkpoint)["aegen"]
    device = torch.device("cuda" if accelerator != "cpu" and torch.cuda.is_available() else "cpu")
    model = load(checkpoint, map_location=device).requires_grad_(False)
    datamodule = load_datamodule(checkpoint, batch_size=batch_size, device_cache=False)
    datamodule.setup("fit")
    pl.seed_everything(seed, verbose=False)
    codes = encode_batches(model, datamodule.train_dataloader())
    own = {"latent_gan": {"steps": steps, "batch_size": batch_size},
           "gmm": {"components": gmm_components, "seed": seed}}
    sampler = get_sampler(name)(codes.shape[1], **{**own.get(name, {}), **options}).to(device)
    sampler.fit(codes)
    model.sampler = sampler.eval()
    prior = {"kind": kind, "fitted_on": str(checkpoint), "steps": steps if name == "latent_gan" else 0, "seed": seed}
    save_checkpoint(model, out, data=record.get("data"), prior=prior)
    return model.eval()


def save_checkpoint(model: GenerativeAE, out: str | Path, data: dict[str, Any] | None, prior: dict[str, Any]) -> Path:
    """Write ``model`` (with its sampler) at ``out`` in Lightning's checkpoint format, with aegen's
    record: the model, its sampler's spec, the data it was trained on and ``prior`` (how the sampler was fitted)."""
    import pytorch_lightning as pl

    from aegen import __version__
    from aegen.checkpoint import first_nonfinite
    from aegen.io import save_atomic

    checkpoint = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "hyper_parameters": plain(dict(model.hparams)),
        "aegen": {"version": __version__, "model": model.registry_name, "data": data,
                  "sampler": None if model.sampler is None else plain(model.sampler.spec()), "prior": plain(prior)},
    }
    bad = first_nonfinite(checkpoint)
    if bad is not None:
        raise DivergenceError(f"the prior diverged: {bad} is NaN/inf, so {out} was not written; try fewer --steps "
                              "or --kind gmm")
    return save_atomic(checkpoint, out)
