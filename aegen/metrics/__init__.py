"""Metrics: pure functions and torchmetrics-style classes, testable without a model.

Modules: ``clustering`` (unsupervised classification error, NMI/ARI, linear probe),
``disentanglement`` (MIG, DCI, FactorVAE score, SAP), ``reconstruction`` (MSE, PSNR, SSIM),
``fidelity`` (IS, FID, KID, precision/recall: ``aegen.metrics.fidelity.fidelity``, as the name
``fidelity`` here is the module), ``controllability`` (factor edits), ``judge`` (the classifiers
that judge generated images) and ``callbacks`` (Lightning callbacks that log them during
training). The functions and classes below are importable from here; each module is imported on
first use, so ``import aegen.metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aegen.metrics.callbacks import ClusteringMetrics, DisentanglementMetrics, ReconstructionMetrics, SampleQuality
    from aegen.metrics.clustering import (
        ClusteringScores, cluster_assignments, cluster_errors, clustering_metrics, probe_accuracy,
    )
    from aegen.metrics.controllability import edit_scores
    from aegen.metrics.disentanglement import (
        DisentanglementScores, dci, disentanglement_metrics, factorvae_score, mig, sap,
    )
    from aegen.metrics.judge import get_judge, judge_accuracy, load_judge, save_judge, train_judge
    from aegen.metrics.reconstruction import interpolation_midpoints, reconstruction_collection, reconstruction_metrics

_MODULES = {
    "callbacks": ["ClusteringMetrics", "DisentanglementMetrics", "ReconstructionMetrics", "SampleQuality"],
    "clustering": ["ClusteringScores", "cluster_assignments", "cluster_errors", "clustering_metrics", "probe_accuracy"],
    "controllability": ["edit_scores"],
    "disentanglement": ["DisentanglementScores", "dci", "disentanglement_metrics", "factorvae_score", "mig", "sap"],
    "judge": ["get_judge", "judge_accuracy", "load_judge", "save_judge", "train_judge"],
    "reconstruction": ["interpolation_midpoints", "reconstruction_collection", "reconstruction_metrics"],
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """The exported functions and classes, imported from their module on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"aegen.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'aegen.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = sorted(_LAZY)
