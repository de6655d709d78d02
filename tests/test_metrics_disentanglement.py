import numpy as np
import pytest

from aegen.metrics.disentanglement import dci, dci_from_importance, disentanglement_metrics, factorvae_score, mig, sap

SIZES = (4, 3, 5)


def factors(n, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


@pytest.fixture(scope="module")
def data():
    train, test = factors(500, 0), factors(250, 1)
    rng = np.random.default_rng(2)
    return {
        "factors": (train, test),
        # a code dimension per factor, slightly noisy, plus one dimension of pure noise
        "perfect": tuple(np.concatenate([f + 0.05 * rng.standard_normal(f.shape), rng.standard_normal((len(f), 1))], 1)
                         for f in (train, test)),
        "random": tuple(rng.standard_normal((len(f), 4)) for f in (train, test)),
        "constant": tuple(np.zeros((len(f), 4)) for f in (train, test)),
    }


def scores(data, kind):
    (ftr, fte), (ctr, cte) = data["factors"], data[kind]
    return disentanglement_metrics(ctr, ftr, cte, fte, num_train=500, num_test=250, seed=0)


def test_factors_as_codes_score_near_one(data):
    out = scores(data, "perfect")
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factorvae_score"):
        assert out[key] > 0.9, (key, out[key])
    # SAP is the accuracy gap between the two best dimensions: the runner-up predicts at chance,
    # and one linear SVM on one dimension cannot separate a factor's middle values, so SAP stays
    # well below 1 even here (a property of the metric); it is far above noise
    assert out["sap"] > 0.25


def test_random_codes_score_near_zero(data):
    out = scores(data, "random")
    assert out["mig"] < 0.05 and out["sap"] < 0.05 and out["dci_disentanglement"] < 0.2
    assert out["dci_informativeness"] < 0.5  # chance is 1/4, 1/3, 1/5 per factor
    assert out["factorvae_score"] < 0.6  # majority voting on noise: ~chance (1/3) plus small-sample luck


def test_constant_codes_score_zero(data):
    out = scores(data, "constant")
    assert out["mig"] == pytest.approx(0, abs=1e-12) and out["sap"] == pytest.approx(0)
    assert out["dci_disentanglement"] == pytest.approx(0, abs=1e-6) and out["factorvae_score"] == 0


def test_duplicated_dimensions_lower_mig(data):
    (ftr, _), (ctr, _) = data["factors"], data["perfect"]
    duplicated = np.concatenate([ctr, ctr[:, :1]], 1)  # factor 0 now lives in two dimensions
    assert mig(duplicated, ftr) < mig(ctr, ftr) - 0.2


def test_sap_of_binary_factors_is_the_gap_to_chance():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 2, (600, 2))
    codes = f + 0.1 * rng.standard_normal(f.shape)
    # the right dimension predicts its factor perfectly, the other one at chance (1/2)
    assert sap(codes[:400], f[:400], codes[400:], f[400:]) == pytest.approx(0.5, abs=0.06)


def test_dci_of_hand_made_importances():
    assert dci_from_importance(np.eye(3)) == pytest.approx((1, 1), abs=1e-6)
    # every code matters equally for every factor: neither disentangled nor complete
    assert dci_from_importance(np.ones((3, 3))) == pytest.approx((0, 0), abs=1e-6)
    # one code explains every factor: completeness 1, disentanglement 0
    d, c = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0, abs=1e-6) and c == pytest.approx(1, abs=1e-6)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="codes"):
        mig(np.zeros((5, 2)), np.zeros((4, 2), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        factorvae_score(np.zeros((5, 2)), np.zeros((5, 2)))
