import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from torch import nn

from aegen.errors import AegenError
from aegen.metrics.clustering import (
    aae_error,
    cluster_assignments,
    cluster_errors,
    clustering_metrics,
    probe_accuracy,
)

LABELS = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])


def test_perfect_permuted_clustering_has_no_error():
    clusters = torch.tensor([2, 2, 2, 0, 0, 0, 1, 1, 1, 1])
    out = cluster_errors(clusters, LABELS)
    assert out["cluster_error_hungarian"] == 0 and out["cluster_error_majority"] == 0
    assert out["nmi"] == pytest.approx(1) and out["ari"] == pytest.approx(1)


def test_constant_clustering():
    out = cluster_errors(torch.zeros(10, dtype=torch.long), LABELS)
    # one cluster can take one label: the largest class (4 of 10) is right under both rules
    assert out["cluster_error_hungarian"] == pytest.approx(0.6)
    assert out["cluster_error_majority"] == pytest.approx(0.6)
    assert out["nmi"] == pytest.approx(0) and out["ari"] == pytest.approx(0)


def test_many_to_one_forgives_split_classes_one_to_one_does_not():
    # every class split into two pure clusters: 6 clusters for 3 labels
    clusters = torch.tensor([0, 0, 1, 2, 3, 3, 4, 4, 5, 5])
    out = cluster_errors(clusters, LABELS)
    assert out["cluster_error_majority"] == 0
    # one-to-one: each label keeps its bigger cluster (2 + 2 + 2 points right of 10)
    assert out["cluster_error_hungarian"] == pytest.approx(0.4)


def test_fewer_clusters_than_labels():
    clusters = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])  # classes 1 and 2 merged
    out = cluster_errors(clusters, LABELS)
    assert out["cluster_error_hungarian"] == pytest.approx(0.3)
    assert out["cluster_error_majority"] == pytest.approx(0.3)


def test_nmi_ari_match_scikit_learn():
    g = torch.Generator().manual_seed(0)
    clusters, labels = torch.randint(0, 7, (300,), generator=g), torch.randint(0, 5, (300,), generator=g)
    out = cluster_errors(clusters, labels)
    assert out["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters), abs=1e-5)
    assert out["ari"] == pytest.approx(adjusted_rand_score(labels, clusters), abs=1e-5)
    assert 0.6 < out["cluster_error_hungarian"] <= 1 and 0.5 < out["cluster_error_majority"] <= 1


def test_aae_rule_takes_the_label_of_the_most_confident_validation_example():
    test_clusters = torch.tensor([0, 0, 1, 1])
    test_labels = torch.tensor([3, 3, 5, 5])
    val_labels = torch.tensor([3, 5, 5])
    # cluster 0's most confident validation example is the first (label 3), cluster 1's the third (5)
    confidence = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert aae_error(test_clusters, test_labels, val_labels, confidence) == 0
    # now the second example (label 5) is cluster 0's most confident: cluster 0's test points are wrong
    confidence[1, 0] = 0.95
    assert aae_error(test_clusters, test_labels, val_labels, confidence) == pytest.approx(0.5)
    # per-example confidences: cluster 1 has no validation example, so its test points are errors
    out = cluster_errors(test_clusters, test_labels, torch.tensor([0, 0, 0]), val_labels, torch.tensor([0.9, 0.1, 0.2]))
    assert out["cluster_error_aae"] == pytest.approx(0.5)


def test_negative_labels_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        cluster_errors(torch.zeros(3, dtype=torch.long), torch.tensor([-1, -1, -1]))


class Blobs(nn.Module):
    """A stand-in model whose 'codes' are the flattened images: three well separated blobs."""

    def __init__(self, head: bool = False) -> None:
        super().__init__()
        self.hparams = {"num_classes": 3}
        self.head = head
        self.device = torch.device("cpu")

    def encode(self, x):
        return x.flatten(1)

    def cluster_probs(self, x):
        if not self.head:
            return None
        return torch.softmax(-torch.cdist(x.flatten(1), CENTRES) * 10, 1)


CENTRES = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])


def blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    return (CENTRES[labels] + 0.3 * torch.randn(n, 2, generator=g)).view(n, 1, 1, 2), labels


@pytest.mark.parametrize("head", [False, True])
def test_separable_blobs_cluster_perfectly(head):
    model = Blobs(head)
    clusters, probs = cluster_assignments(model, blobs(60, 0)[0], batch_size=16)
    assert (probs is not None) == head and len(clusters) == 60
    out = clustering_metrics(model, blobs(60, 0), val=blobs(30, 1), train=blobs(90, 2), batch_size=16)
    assert out["cluster_source"] == ("head" if head else "kmeans") and out["num_clusters"] == 3
    for key in ("cluster_error_hungarian", "cluster_error_majority", "cluster_error_aae"):
        assert out[key] == 0, key
    assert out["nmi"] == pytest.approx(1) and out["probe_acc"] == 1


def test_kmeans_without_class_count_says_what_to_do():
    model = Blobs()
    model.hparams = {}
    with pytest.raises(AegenError, match="number of clusters"):
        cluster_assignments(model, blobs(9, 0)[0])


def test_probe_reads_a_linear_code_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (200,), generator=g)
    codes = torch.randn(200, 4, generator=g)
    informative = codes.clone()
    informative[:, 0] += 4 * labels
    assert probe_accuracy(informative[:100], labels[:100], informative[100:], labels[100:]) > 0.9
    assert probe_accuracy(codes[:100], labels[:100], codes[100:], labels[100:]) < 0.7
