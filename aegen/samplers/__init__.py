"""Samplers: distributions fitted to a model's codes, which ``model.sample`` decodes.

``SAMPLERS`` maps a name to its class: ``gaussian`` (the default of plain autoencoders), ``gmm``
(a scikit-learn Gaussian mixture) and ``latent_gan`` (a code generator trained adversarially on
the codes). ``aegen prior`` fits one to a trained model's codes; ``build(spec)`` rebuilds one from
the ``Sampler.spec()`` a checkpoint records.
"""

from __future__ import annotations

from typing import Any

from aegen.samplers.base import Sampler
from aegen.samplers.gaussian import GaussianSampler
from aegen.samplers.gmm import GMMSampler
from aegen.samplers.latent_gan import LatentGANSampler

SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in (GaussianSampler, GMMSampler, LatentGANSampler)}


def get_sampler(name: str) -> type[Sampler]:
    """The sampler class registered as ``name``; a ValueError naming the choices otherwise."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def build(spec: dict[str, Any]) -> Sampler:
    """An unfitted sampler from ``Sampler.spec()``: ``{"name", "dim", "options"}``."""
    return get_sampler(spec["name"])(spec["dim"], **spec.get("options", {}))


__all__ = ["SAMPLERS", "GMMSampler", "GaussianSampler", "LatentGANSampler", "Sampler", "build", "get_sampler"]
