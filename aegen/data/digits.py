"""scikit-learn's 1797 handwritten 8x8 digits, shipped inside scikit-learn: the embedded default."""

from __future__ import annotations

import torch

from aegen.data.base import AEDataModule, Split, random_split_indices, resize, unit_to_uint8
from aegen.registry import register_data


@register_data("digits")
class Digits(AEDataModule):
    """1797 handwritten digits from scikit-learn (embedded, offline), 10 classes, 1 channel."""

    channels = 1
    num_classes = 10

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.1, **kwargs) -> None:
        """
        Args:
            val_fraction: share of the images held out for validation.
            test_fraction: share of the images held out for testing.
        """
        super().__init__(**kwargs)
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
        self.fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)

    def load_splits(self) -> dict[str, Split]:
        # scikit-learn is slow to import: only when the data loads
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(digits.images).float().div(16).unsqueeze(1)
        images = unit_to_uint8(resize(images, self.image_size))
        labels = torch.from_numpy(digits.target).long()
        parts = random_split_indices(len(images), self.fractions, self.split_seed)
        return {name: (images[idx], labels[idx]) for name, idx in zip(("train", "val", "test"), parts)}
