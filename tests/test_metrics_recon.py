import os
import shutil
from pathlib import Path

import pytest
import torch

from aegen.data.arrays import TensorData
from aegen.data.digits import Digits
from aegen.metric_groups import Evaluation, recon_group


class Identity(torch.nn.Module):
    """A perfect "reconstruction": the images themselves."""

    device = torch.device("cpu")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture
def judged(digits_judge):
    """Install the test run's digits judge under this test's data root."""
    shutil.copytree(digits_judge.parent, Path(os.environ["AEGEN_DATA"]) / "judges")


def test_recon_judge_acc_of_perfect_reconstructions_is_the_judges_test_accuracy(judged):
    dm = Digits()
    dm.setup("fit")
    ev = Evaluation(Identity(), dm)
    out = recon_group(ev)
    assert out["recon_mse"] == 0
    assert out["recon_judge_acc"] == pytest.approx(ev.info["judge_test_acc"])
    assert 0.5 < out["recon_judge_acc"] <= 1


def test_recon_judge_acc_is_absent_without_labels():
    images = torch.rand(40, 1, 8, 8) * 2 - 1
    dm = TensorData(images)
    dm.setup("fit")
    out = recon_group(Evaluation(Identity(), dm))
    assert "recon_judge_acc" not in out and out["recon_mse"] == 0
