"""Disentanglement metrics on plain arrays: codes (N, D) and discrete factor labels (N, K).

Each follows disentanglement_lib (Locatello et al., 2019, ``evaluation/metrics/``) and its
default settings; where that library samples fresh observations from a ground-truth simulator,
these functions sample from a finite labelled pool (a dataset split) instead, and point counts
shrink to the pool's size when it is smaller than the default.

- ``mig``: mutual information gap (Chen et al., 2018): per factor, the gap between the two code
  dimensions with the highest mutual information, over the factor's entropy; codes discretised
  into 20 equal-width histogram bins per dimension; 10k points.
- ``dci``: Eastwood & Williams (2018): a gradient-boosted tree classifier per factor
  (scikit-learn defaults); disentanglement and completeness from its feature importances;
  informativeness = mean test accuracy; 10k training and 5k test points.
- ``factorvae_score``: Kim & Mnih (2018): majority-vote classifier from "the code dimension of
  least normalised variance" to "the factor held fixed" over batches of 64; dimensions whose
  global variance is below 0.05 are pruned; 10k training and 5k evaluation votes, variances
  from 10k points. Reported: evaluation accuracy.
- ``sap``: Kumar et al. (2018), discrete factors: per (dimension, factor) the test accuracy of a
  linear SVM (C=0.01, balanced classes) on that single dimension; mean over factors of the gap
  between the two best dimensions; 10k training and 5k test points.

All scores lie in [0, 1]; near 1 when each factor lives in its own code dimension.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

Array = Any  # anything np.asarray accepts: numpy arrays, torch tensors on the CPU, lists

NUM_TRAIN, NUM_TEST = 10_000, 5_000


def _arrays(codes: Array, factors: Array) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors) or not len(codes):
        raise ValueError(f"need codes (N, D) and factors (N, K) with the same N > 0, got {codes.shape} and {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError("factors must be discrete integer labels (N, K)")
    return codes, factors


def _subset(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return rng.choice(n, size=min(size, n), replace=False)


def histogram_discretize(codes: Array, num_bins: int = 20) -> np.ndarray:
    """Each code dimension binned into ``num_bins`` equal-width bins over its range (disentanglement_lib)."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        out[:, d] = np.digitize(codes[:, d], np.histogram(codes[:, d], num_bins)[1][:-1])
    return out


def mig(codes: Array, factors: Array, num_bins: int = 20, num_points: int = NUM_TRAIN, seed: int = 0) -> float:
    """Mutual information gap, averaged over factors (constant factors are skipped)."""
    from sklearn.metrics import mutual_info_score

    codes, factors = _arrays(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs codes with at least 2 dimensions")
    pick = _subset(np.random.default_rng(seed), len(codes), num_points)
    binned, factors = histogram_discretize(codes[pick], num_bins), factors[pick]
    info = np.array([[mutual_info_score(factors[:, k], binned[:, d]) for k in range(factors.shape[1])]
                     for d in range(binned.shape[1])])  # (D, K)
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
    top = np.sort(info, axis=0)[::-1]
    varying = entropy > 0
    if not varying.any():
        raise ValueError("every factor is constant in these points: MIG is undefined")
    return float(np.mean((top[0, varying] - top[1, varying]) / entropy[varying]))


def _entropy_score(p: np.ndarray, base: int) -> np.ndarray:
    import scipy.stats

    return 1.0 - scipy.stats.entropy(p + 1e-11, base=base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix (D codes, K factors)."""
    importance = np.asarray(importance, dtype=np.float64)
    per_code = _entropy_score(importance.T, importance.shape[1])
    per_factor = _entropy_score(importance, importance.shape[0])
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    disentanglement = np.sum(per_code * weights.sum(1) / weights.sum())
    completeness = np.sum(per_factor * weights.sum(0) / weights.sum())
    return float(disentanglement), float(completeness)


def _points(codes_train: Array, factors_train: Array, codes_test: Array, factors_test: Array, num_train: int,
            num_test: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded subsets of at most ``num_train`` training and ``num_test`` test points, as arrays:
    (codes_train, factors_train, codes_test, factors_test)."""
    codes_train, factors_train = _arrays(codes_train, factors_train)
    codes_test, factors_test = _arrays(codes_test, factors_test)
    rng = np.random.default_rng(seed)
    tr, te = _subset(rng, len(codes_train), num_train), _subset(rng, len(codes_test), num_test)
    return codes_train[tr], factors_train[tr], codes_test[te], factors_test[te]


def dci(
    codes_train: Array,
    factors_train: Array,
    codes_test: Array,
    factors_test: Array,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    seed: int = 0,
    **gbt_options: Any,
) -> dict[str, float]:
    """``dci_disentanglement``, ``dci_completeness`` and ``dci_informativeness`` (mean test accuracy).

    ``gbt_options`` go to scikit-learn's ``GradientBoostingClassifier`` (default: its defaults,
    as disentanglement_lib).
    """
    from sklearn.ensemble import GradientBoostingClassifier

    x_train, y_train, x_test, y_test = _points(codes_train, factors_train, codes_test, factors_test, num_train,
                                               num_test, seed)
    importance = np.zeros((x_train.shape[1], y_train.shape[1]))
    accuracy = []
    for k in range(y_train.shape[1]):
        if len(np.unique(y_train[:, k])) < 2:  # a constant factor: nothing to predict, every guess is right
            accuracy.append(float(np.mean(y_test[:, k] == y_train[0, k])))
            continue
        model = GradientBoostingClassifier(random_state=seed, **gbt_options).fit(x_train, y_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy.append(float(np.mean(model.predict(x_test) == y_test[:, k])))
    disentanglement, completeness = dci_from_importance(importance)
    return {"dci_disentanglement": disentanglement, "dci_completeness": completeness,
            "dci_informativeness": float(np.mean(accuracy))}


def factorvae_score(
    codes: Array,
    factors: Array,
    batch_size: int = 64,
    num_train: int = NUM_TRAIN,
    num_eval: int = NUM_TEST,
    num_variance_estimate: int = NUM_TRAIN,
    prune_threshold: float = 0.05,
    seed: int = 0,
) -> float:
    """FactorVAE metric: evaluation accuracy of the majority-vote classifier (0 if no dimension is active).

    A vote: pick a factor k and a value v (that of a random point), take ``batch_size`` points
    with factor k = v (with replacement when fewer exist), and note the active dimension whose
    variance over the batch, divided by its global variance, is smallest.
    """
    codes, factors = _arrays(codes, factors)
    rng = np.random.default_rng(seed)
    global_var = np.var(codes[_subset(rng, len(codes), num_variance_estimate)], axis=0, ddof=1)
    active = global_var >= prune_threshold
    if not active.any():
        return 0.0
    active_dims = np.flatnonzero(active)
    by_value = [{v: np.flatnonzero(factors[:, k] == v) for v in np.unique(factors[:, k])} for k in range(factors.shape[1])]

    def votes(num: int) -> np.ndarray:
        table = np.zeros((factors.shape[1], codes.shape[1]), dtype=np.int64)
        for _ in range(num):
            k = rng.integers(factors.shape[1])
            members = by_value[k][factors[rng.integers(len(factors)), k]]
            batch = codes[rng.choice(members, size=batch_size, replace=len(members) < batch_size)]
            ratio = np.var(batch[:, active_dims], axis=0, ddof=1) / global_var[active_dims]
            table[k, active_dims[np.argmin(ratio)]] += 1
        return table

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)  # code dimension -> factor
    eval_votes = votes(num_eval)
    return float(eval_votes[classifier, np.arange(codes.shape[1])].sum() / eval_votes.sum())


def sap(
    codes_train: Array,
    factors_train: Array,
    codes_test: Array,
    factors_test: Array,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    seed: int = 0,
) -> float:
    """Separated attribute predictability for discrete factors (constant factors are skipped)."""
    from sklearn.svm import LinearSVC

    x_train, y_train, x_test, y_test = _points(codes_train, factors_train, codes_test, factors_test, num_train,
                                               num_test, seed)
    if x_train.shape[1] < 2:
        raise ValueError("SAP needs codes with at least 2 dimensions")
    varying = [k for k in range(y_train.shape[1]) if len(np.unique(y_train[:, k])) > 1]
    if not varying:
        raise ValueError("every factor is constant in these points: SAP is undefined")
    scores = np.zeros((x_train.shape[1], len(varying)))
    for d in range(x_train.shape[1]):
        for j, k in enumerate(varying):
            svm = LinearSVC(C=0.01, class_weight="balanced", random_state=seed).fit(x_train[:, d : d + 1], y_train[:, k])
            scores[d, j] = np.mean(svm.predict(x_test[:, d : d + 1]) == y_test[:, k])
    top = np.sort(scores, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def disentanglement_metrics(
    codes_train: Array,
    factors_train: Array,
    codes_test: Array,
    factors_test: Array,
    num_train: int = NUM_TRAIN,
    num_test: int = NUM_TEST,
    seed: int = 0,
) -> dict[str, float]:
    """``mig``, ``dci_*``, ``factorvae_score`` and ``sap`` with disentanglement_lib's defaults.

    MIG and the FactorVAE score use the training points only; DCI and SAP train on the training
    points and score on the test points.
    """
    out = {"mig": mig(codes_train, factors_train, num_points=num_train, seed=seed)}
    out.update(dci(codes_train, factors_train, codes_test, factors_test, num_train, num_test, seed))
    out["factorvae_score"] = factorvae_score(codes_train, factors_train, num_train=num_train, num_eval=num_test,
                                             num_variance_estimate=num_train, seed=seed)
    out["sap"] = sap(codes_train, factors_train, codes_test, factors_test, num_train, num_test, seed)
    return out


class DisentanglementScores(Metric):
    """torchmetrics-style: collect codes (N, D) and factor labels (N, K); ``compute`` returns
    ``disentanglement_metrics`` with the points split 2:1 (seeded) into training and test points.

    States are concatenated across DDP ranks at ``compute``; every rank computes the same numbers.
    """

    full_state_update = False

    def __init__(self, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_train, self.num_test, self.seed = num_train, num_test, seed
        self.add_state("codes", default=[], dist_reduce_fx="cat")
        self.add_state("factors", default=[], dist_reduce_fx="cat")

    def update(self, codes: torch.Tensor, factors: torch.Tensor) -> None:
        self.codes.append(codes.detach().flatten(1).float())
        self.factors.append(factors.detach().long())

    def compute(self) -> dict[str, float]:
        codes = dim_zero_cat(self.codes).cpu().double().numpy()
        factors = dim_zero_cat(self.factors).cpu().numpy()
        order = np.random.default_rng(self.seed).permutation(len(codes))
        cut = (2 * len(codes)) // 3
        tr, te = order[:cut], order[cut:]
        return disentanglement_metrics(codes[tr], factors[tr], codes[te], factors[te], self.num_train, self.num_test, self.seed)
