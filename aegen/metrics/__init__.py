"""Metrics: pure functions and torchmetrics-style classes, testable without a model.

Modules: ``clustering`` (unsupervised classification error, NMI/ARI, linear probe).
"""

from aegen.metrics.clustering import (
    cluster_assignments,
    cluster_errors,
    clustering_metrics,
    probe_accuracy,
)

__all__ = ["cluster_assignments", "cluster_errors", "clustering_metrics", "probe_accuracy"]
