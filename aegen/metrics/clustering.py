"""Unsupervised classification error (the LatentGAN paper's headline metric) and a linear probe.

A model's clusters come from its own cluster head (``model.cluster_probs(x)``: LatentGAN's Q,
the clustering AAE's q(y|x)) when it has one, otherwise from k-means on its codes, which works for
any model. The cluster -> label mapping is never left implicit; each error names its rule:

- ``cluster_error_hungarian``: one-to-one (``scipy.optimize.linear_sum_assignment`` on the
  cluster x label contingency table); with more clusters than labels the unmatched clusters count
  as errors, so it is the strict rule (LatentGAN's K = 10 setting).
- ``cluster_error_majority``: many-to-one; each cluster takes its most frequent test label
  (the rule usually reported for K > classes).
- ``cluster_error_aae``: Makhzani et al. (2016), section 5: "for each cluster i, we found the
  validation example x_n that maximizes q(y_i|x_n), and assigned the label of x_n to all the
  points in the cluster i". For k-means the confidence of cluster i is minus the distance to its
  centroid.

All errors are fractions in [0, 1] of the test split. ``nmi`` (arithmetic normalisation) and
``ari`` come from ``torchmetrics.functional.clustering``; ``ari`` lies in [-0.5, 1] and is ~0
for a random clustering. ``probe_acc`` is the test accuracy of a logistic regression trained on
standardised training codes.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.clustering import adjusted_rand_score, normalized_mutual_info_score
from torchmetrics.utilities import dim_zero_cat

from aegen.errors import AegenError
from aegen.latent import encode_all

if TYPE_CHECKING:  # scikit-learn and scipy load when a function below runs: training imports this module
    from sklearn.cluster import KMeans

LabelledImages = tuple[Tensor, Tensor]


@torch.no_grad()
def head_probs(model, images: Tensor, batch_size: int = 256) -> Tensor | None:
    """The model's cluster-head probabilities (N, K) for images, or None if it has no head."""
    first = model.cluster_probs(images[:1].to(model.device))
    if first is None:
        return None
    return torch.cat([model.cluster_probs(x.to(model.device)).float().cpu() for x in images.split(batch_size)])


class Pixels:
    """A stand-in model whose codes are the raw pixels and which has no cluster head: k-means on
    its codes is k-means on the images, the floor of the LatentGAN paper's Table 1."""

    device = torch.device("cpu")

    @staticmethod
    def encode(x: Tensor) -> Tensor:
        return x.flatten(1)

    @staticmethod
    def cluster_probs(x: Tensor) -> None:
        return None


def fit_kmeans(codes: Tensor, num_clusters: int, seed: int = 0) -> KMeans:
    """k-means (scikit-learn, k-means++, 10 restarts, fixed seed) fitted to codes (N, D)."""
    from sklearn.cluster import KMeans

    if num_clusters < 1 or num_clusters > len(codes):
        raise AegenError(f"k-means needs 1 <= clusters <= points, got {num_clusters} clusters for {len(codes)} codes")
    return KMeans(n_clusters=num_clusters, n_init=10, random_state=seed).fit(codes.double().numpy())


def kmeans_confidence(kmeans: KMeans, codes: Tensor) -> Tensor:
    """Confidence (N, K) of each k-means cluster for each code: minus the distance to its centroid."""
    return -torch.from_numpy(kmeans.transform(codes.double().numpy())).float()


def _num_clusters(model, num_clusters: int | None) -> int:
    k = num_clusters or dict(getattr(model, "hparams", {})).get("num_classes")
    if not k:
        raise AegenError("k-means clustering needs the number of clusters: the model records no num_classes "
                         "(train on a labelled dataset) and none was given")
    return int(k)


@torch.no_grad()
def cluster_assignments(
    model,
    images: Tensor,
    batch_size: int = 256,
    kmeans: KMeans | None = None,
    num_clusters: int | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor | None]:
    """Cluster index (N,) of each image and the head's probabilities (N, K), or None for k-means.

    Uses ``model.cluster_probs`` when the model has a cluster head. Otherwise runs k-means on
    ``model.encode`` codes: ``kmeans`` if given (to assign several splits consistently), else one
    fitted here with ``num_clusters`` (default: the model's ``num_classes``) and ``seed``.
    """
    probs = head_probs(model, images, batch_size)
    if probs is not None:
        return probs.argmax(1), probs
    codes = encode_all(model, images, batch_size, device="cpu").float()
    kmeans = kmeans or fit_kmeans(codes, _num_clusters(model, num_clusters), seed)
    return torch.from_numpy(kmeans.predict(codes.double().numpy())).long(), None


def contingency(clusters: Tensor, labels: Tensor, num_clusters: int | None = None, num_labels: int | None = None) -> np.ndarray:
    """Counts (K, L): entry (k, l) is the number of points in cluster k with label l."""
    clusters, labels = _long(clusters), _long(labels)
    k = max(num_clusters or 0, int(clusters.max()) + 1)
    n_labels = max(num_labels or 0, int(labels.max()) + 1)
    table = np.zeros((k, n_labels), dtype=np.int64)
    np.add.at(table, (clusters.numpy(), labels.numpy()), 1)
    return table


def _long(values: Tensor | np.ndarray) -> Tensor:
    values = torch.as_tensor(values).flatten().long().cpu()
    if len(values) and int(values.min()) < 0:
        raise ValueError("cluster indices and labels must be non-negative integers (unlabelled data has no clustering error)")
    return values


def hungarian_error(clusters: Tensor, labels: Tensor) -> float:
    """One-to-one error: clusters matched to labels by linear_sum_assignment; unmatched clusters are errors."""
    from scipy.optimize import linear_sum_assignment

    table = contingency(clusters, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return 1.0 - table[rows, cols].sum() / table.sum()


def majority_error(clusters: Tensor, labels: Tensor) -> float:
    """Many-to-one error: every cluster takes its most frequent label."""
    table = contingency(clusters, labels)
    return 1.0 - table.max(1).sum() / table.sum()


def aae_error(
    test_clusters: Tensor,
    test_labels: Tensor,
    val_labels: Tensor,
    val_confidence: Tensor,
    val_clusters: Tensor | None = None,
) -> float:
    """Makhzani et al.'s rule: cluster i takes the label of the validation example most confident in i.

    ``val_confidence`` is either (N_val, K), the confidence of every cluster for every example
    (q(y_i|x_n), or minus the distance to centroid i): the paper's rule exactly; or (N_val,), each
    example's confidence in its own cluster ``val_clusters``, in which case cluster i picks among
    the validation examples assigned to it. A cluster without any candidate labels nothing, so its
    test points count as errors.
    """
    test_clusters, test_labels, val_labels = _long(test_clusters), _long(test_labels), _long(val_labels)
    confidence = torch.as_tensor(val_confidence).float().cpu()
    k = int(test_clusters.max()) + 1
    if confidence.dim() == 2:
        k = max(k, confidence.shape[1])
    elif val_clusters is None:
        raise ValueError("aae_error with one confidence per validation example needs val_clusters")
    else:
        val_clusters = _long(val_clusters)
        k = max(k, int(val_clusters.max()) + 1)
        confidence = torch.full((len(confidence), k), float("-inf")).scatter_(1, val_clusters[:, None], confidence[:, None])
    if len(confidence) != len(val_labels):
        raise ValueError(f"{len(confidence)} validation confidences but {len(val_labels)} validation labels")
    best = confidence.argmax(0)  # (K,): the most confident validation example of each cluster
    has_candidate = torch.isfinite(confidence.max(0).values)
    cluster_label = torch.where(has_candidate, val_labels[best], torch.full_like(best, -1))
    if confidence.shape[1] < k:
        cluster_label = torch.cat([cluster_label, cluster_label.new_full((k - confidence.shape[1],), -1)])
    return 1.0 - (cluster_label[test_clusters] == test_labels).float().mean().item()


def cluster_errors(
    test_clusters: Tensor,
    test_labels: Tensor,
    val_clusters: Tensor | None = None,
    val_labels: Tensor | None = None,
    val_confidence: Tensor | None = None,
) -> dict[str, float]:
    """Unsupervised classification errors and agreement scores of a clustering of the test split.

    Returns ``cluster_error_hungarian``, ``cluster_error_majority``, ``nmi``, ``ari`` and, when
    validation labels and confidences are given, ``cluster_error_aae`` (see ``aae_error``).
    """
    test_clusters, test_labels = _long(test_clusters), _long(test_labels)
    if len(test_clusters) != len(test_labels) or not len(test_labels):
        raise ValueError(f"need as many clusters as labels (> 0), got {len(test_clusters)} and {len(test_labels)}")
    out = {
        "cluster_error_hungarian": float(hungarian_error(test_clusters, test_labels)),
        "cluster_error_majority": float(majority_error(test_clusters, test_labels)),
    }
    with warnings.catch_warnings():  # torchmetrics builds a sparse contingency table and warns about its checks
        warnings.filterwarnings("ignore", message=".*[Ss]parse invariant checks")
        out["nmi"] = float(normalized_mutual_info_score(test_clusters, test_labels))
        out["ari"] = float(adjusted_rand_score(test_clusters, test_labels))
    if val_labels is not None and val_confidence is not None:
        out["cluster_error_aae"] = float(aae_error(test_clusters, test_labels, val_labels, val_confidence, val_clusters))
    return out


def probe_accuracy(train_codes: Tensor, train_labels: Tensor, test_codes: Tensor, test_labels: Tensor, seed: int = 0) -> float:
    """Linear-probe accuracy: logistic regression on standardised training codes, scored on test codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    probe.fit(train_codes.double().numpy(), _long(train_labels).numpy())
    return float(probe.score(test_codes.double().numpy(), _long(test_labels).numpy()))


class CodeSplit(NamedTuple):
    """One split as seen by the clustering metrics: codes (N, D), cluster-head probabilities (N, K) or None, labels (N,)."""

    codes: Tensor
    probs: Tensor | None
    labels: Tensor


@torch.no_grad()
def encode_split(model, images: Tensor, labels: Tensor, batch_size: int = 256) -> CodeSplit:
    """Codes and cluster-head probabilities of images, with their labels."""
    codes = encode_all(model, images, batch_size, device="cpu").float()
    return CodeSplit(codes, head_probs(model, images, batch_size), labels)


def clustering_scores(
    test: CodeSplit,
    val: CodeSplit | None = None,
    train: CodeSplit | None = None,
    num_clusters: int | None = None,
    seed: int = 0,
    probe: bool = True,
) -> dict[str, Any]:
    """All clustering numbers from encoded splits, each split clustered consistently.

    With cluster-head probabilities the clusters are their argmax; otherwise k-means with
    ``num_clusters`` is fitted on the training codes (else the test codes) and assigns every
    split. Adds ``cluster_error_aae`` when ``val`` is given and ``probe_acc`` when ``train`` is
    given (and ``probe``), plus ``num_clusters`` and ``cluster_source`` ("head" or "kmeans").
    """
    out: dict[str, Any] = {}
    if test.probs is not None:
        clusters, k = test.probs.argmax(1), test.probs.shape[1]
        val_confidence = None if val is None else val.probs
        out["cluster_source"] = "head"
    else:
        if not num_clusters:
            raise AegenError("k-means clustering needs the number of clusters (the number of classes)")
        k = num_clusters
        kmeans = fit_kmeans(train.codes if train is not None else test.codes, k, seed)
        clusters = torch.from_numpy(kmeans.predict(test.codes.double().numpy())).long()
        val_confidence = None if val is None else kmeans_confidence(kmeans, val.codes)
        out["cluster_source"] = "kmeans"
    out["num_clusters"] = int(k)
    out.update(cluster_errors(clusters, test.labels, None, None if val is None else val.labels, val_confidence))
    if train is not None and probe:
        out["probe_acc"] = probe_accuracy(train.codes, train.labels, test.codes, test.labels, seed)
    return out


@torch.no_grad()
def clustering_metrics(
    model,
    test: LabelledImages,
    val: LabelledImages | None = None,
    train: LabelledImages | None = None,
    num_clusters: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """All clustering numbers of a model on (images in [-1, 1], class labels) splits; see ``clustering_scores``.

    ``num_clusters`` defaults to the model's ``num_classes`` (used only for k-means).
    """
    splits = [None if s is None else encode_split(model, *s, batch_size=batch_size) for s in (test, val, train)]
    k = num_clusters if splits[0].probs is not None else _num_clusters(model, num_clusters)
    return clustering_scores(*splits, num_clusters=k, seed=seed)


class ClusteringScores(Metric):
    """torchmetrics-style: collect codes (and cluster-head probabilities) with class labels; ``compute``
    returns ``cluster_error_hungarian``, ``cluster_error_majority``, ``nmi`` and ``ari`` of one split.

    States are concatenated across DDP ranks at ``compute`` and every rank computes the same
    numbers (k-means with a fixed seed when there are no probabilities).
    """

    full_state_update = False

    def __init__(self, num_clusters: int | None = None, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_clusters, self.seed = num_clusters, seed
        self.add_state("codes", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.add_state("probs", default=[], dist_reduce_fx="cat")

    def update(self, codes: Tensor, labels: Tensor, probs: Tensor | None = None) -> None:
        self.codes.append(codes.detach().flatten(1).float())
        self.labels.append(labels.detach().long())
        if probs is not None:
            self.probs.append(probs.detach().float())

    def compute(self) -> dict[str, float]:
        codes, labels = dim_zero_cat(self.codes).cpu(), dim_zero_cat(self.labels).cpu()
        probs = dim_zero_cat(self.probs).cpu() if len(self.probs) else None
        scores = clustering_scores(CodeSplit(codes, probs, labels), num_clusters=self.num_clusters, seed=self.seed)
        return {k: v for k, v in scores.items() if k not in ("cluster_source", "num_clusters")}
