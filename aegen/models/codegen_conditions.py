"""What the learned-prior AAE's condition s is, one class per ``setting`` of ``codegen_aae``.

A condition knows its size (the code generator's condition input), how to ``draw`` s for generated
codes, how to read s from a batch's labels (``from_labels``: s fed to CG and D_C, and Q's target),
and its information term (Eq. 7, -log Q(s | image)):

- ``Unsupervised``: s ~ Cat(K), drawn at random for real and generated codes alike; D_C is
  label-free (the paper's Fig. 5).
- ``Supervised``: s = the image's class, one-hot (Fig. 4); D_C sees s (Eq. 8).
- ``Conditional``: s = any per-image vector (CelebA's attributes, fonts factors one-hot per column,
  a text embedding); generated codes take conditions seen in training, kept in a ring buffer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aegen.errors import AegenError

ClassLabels = Callable[[Tensor], "Tensor | None"]


class Condition(nn.Module):
    """A categorical s: one-hot classes, Q's cross-entropy. Subclasses say where s comes from."""

    #: s comes from the data: D_C sees it (Eq. 8) and without the learned prior the code is [s, noise]
    from_data: bool = True
    #: Q's outputs are one categorical's logits (the model's ``cluster_probs``)
    categorical: bool = True

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def default_noise(self, latent_dim: int) -> int:
        """noise_dim when not given: the code's size minus s (the paper's 10 + 54 -> 64)."""
        return latent_dim - self.size if latent_dim > self.size else latent_dim

    def one_hot(self, idx: Tensor) -> Tensor:
        return F.one_hot(idx, self.size).float()

    def draw(self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None) -> Tensor:
        """s (n, size) for generated codes: classes drawn uniformly."""
        return self.one_hot(torch.randint(self.size, (n,), generator=generator, device=device))

    def from_labels(self, y: Tensor, generator: torch.Generator | None = None,
                    class_labels: ClassLabels | None = None) -> tuple[Tensor, Tensor]:
        """(s (B, size) of real images with labels y, Q's target)."""
        raise NotImplementedError

    def of_classes(self, classes: Tensor) -> Tensor | None:
        """s for the given data classes (n,); None unless s is the class."""
        return None

    def remember(self, s: Tensor) -> None:
        """Called with each training batch's s (conditions that ``draw`` reuses keep them)."""

    def information_loss(self, q: Tensor, target: Tensor) -> Tensor:
        """-log Q(s | image) (Eq. 7)."""
        return F.cross_entropy(q, target)

    def critic_input(self, z: Tensor, s: Tensor) -> Tensor:
        """D_C's input: the code with s (Eq. 8)."""
        return torch.cat([z, s], dim=1)

    def fixed_code(self, s: Tensor, noise: Tensor) -> Tensor:
        """The code without the learned prior (the paper's AAE baseline): [s, noise]."""
        return torch.cat([s, noise], dim=1)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class Unsupervised(Condition):
    """s ~ Cat(``categories``), for real and generated codes alike; D_C never sees it."""

    from_data = False

    def __init__(self, categories: int = 10) -> None:
        if categories < 2:
            raise ValueError(f"categories must be at least 2, got {categories}")
        super().__init__(categories)

    def default_noise(self, latent_dim: int) -> int:
        """The paper's 10 + 90."""
        return 90

    def from_labels(self, y: Tensor, generator: torch.Generator | None = None,
                    class_labels: ClassLabels | None = None) -> tuple[Tensor, Tensor]:
        idx = torch.randint(self.size, (len(y),), generator=generator, device=y.device)
        return self.one_hot(idx), idx

    def critic_input(self, z: Tensor, s: Tensor) -> Tensor:
        return z

    def fixed_code(self, s: Tensor, noise: Tensor) -> Tensor:
        """N(0, I) codes: noise of the code's size."""
        return noise


class Supervised(Condition):
    """s = the image's class: the batch label when it is a class index (B,); for factor labels
    (B, K) column ``label_column``, or else the datamodule's class (fonts: the letter)."""

    def __init__(self, num_labels: int | None = None, label_column: int | None = None) -> None:
        if not num_labels:
            raise ValueError("the supervised setting needs labelled data: train on a dataset with classes "
                             "(num_classes is set from the data) or pass --model.num_labels")
        super().__init__(num_labels)
        self.label_column = label_column

    def class_index(self, y: Tensor, class_labels: ClassLabels | None = None) -> Tensor:
        """The class (B,) of a batch's labels; ``class_labels`` is the datamodule's lookup for (B, K) labels."""
        if self.label_column is not None:
            if y.dim() != 2 or not 0 <= self.label_column < y.shape[1]:
                raise AegenError(f"--model.label_column {self.label_column} needs (B, K) labels with more "
                                 f"columns, got labels of shape {tuple(y.shape)}")
            y = y[:, self.label_column]
        elif y.dim() != 1:
            classes = class_labels(y) if class_labels is not None else None
            if classes is None:
                raise AegenError(f"labels of shape {tuple(y.shape)} carry no class; pick one with --model.label_column")
            y = classes
        y = y.long()
        if len(y) and (y.min() < 0 or y.max() >= self.size):
            raise AegenError(f"the supervised setting needs class labels in [0, {self.size}), got "
                             f"{y.min().item()}..{y.max().item()} (unlabelled data? use --model.setting unsupervised)")
        return y

    def from_labels(self, y: Tensor, generator: torch.Generator | None = None,
                    class_labels: ClassLabels | None = None) -> tuple[Tensor, Tensor]:
        idx = self.class_index(y, class_labels)
        return self.one_hot(idx), idx

    def of_classes(self, classes: Tensor) -> Tensor:
        if (classes < 0).any() or (classes >= self.size).any():
            raise ValueError(f"classes must be in [0, {self.size}), got {classes.min().item()}..{classes.max().item()}")
        return self.one_hot(classes)


class Conditional(Condition):
    """s = the image's label vector (B, condition_dim), or (B, K) value indices one-hot encoded per
    column (``condition_sizes``); Q regresses free vectors (squared error) and classifies each column
    of factor labels. Generated codes take one of the last ``condition_bank`` training conditions."""

    categorical = False

    def __init__(self, condition_dim: int | None = None, condition_sizes: Sequence[int] | None = None,
                 condition_bank: int = 2048) -> None:
        if condition_sizes:
            if any(int(c) < 1 for c in condition_sizes):
                raise ValueError(f"condition_sizes must be positive, got {condition_sizes}")
            sizes = [int(c) for c in condition_sizes]
        elif not condition_dim or condition_dim < 1:
            raise ValueError("the conditional setting needs --model.condition_dim (the size of the per-image label "
                             "vector, e.g. 40 for CelebA attributes) or --model.condition_sizes for factor labels")
        if condition_bank < 1:
            raise ValueError(f"condition_bank must be a positive integer, got {condition_bank}")
        super().__init__(sum(sizes) if condition_sizes else condition_dim)
        self.sizes = sizes if condition_sizes else None
        self.register_buffer("bank", torch.zeros(condition_bank, self.size))
        self.register_buffer("bank_filled", torch.zeros((), dtype=torch.long))

    def draw(self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None) -> Tensor:
        """n training conditions, drawn uniformly from the bank."""
        filled = int(self.bank_filled.clamp(max=len(self.bank)))
        if filled == 0:
            raise AegenError("this conditional model has seen no training conditions; use sample_given(conditions)")
        return self.bank[torch.randint(filled, (n,), generator=generator, device=device)]

    def from_labels(self, y: Tensor, generator: torch.Generator | None = None,
                    class_labels: ClassLabels | None = None) -> tuple[Tensor, Tensor]:
        y = y.view(len(y), -1)
        if self.sizes is None:
            if y.shape[1] != self.size:
                raise AegenError(f"condition vectors have {y.shape[1]} values but --model.condition_dim is {self.size}")
            return y.float(), y.float()
        if y.shape[1] != len(self.sizes):
            raise AegenError(f"labels have {y.shape[1]} columns but --model.condition_sizes has {len(self.sizes)}")
        idx = y.long()
        if (idx < 0).any() or (idx >= idx.new_tensor(self.sizes)).any():
            raise AegenError(f"label values must be below --model.condition_sizes {self.sizes}")
        return torch.cat([F.one_hot(idx[:, k], c).float() for k, c in enumerate(self.sizes)], 1), idx

    @torch.no_grad()
    def remember(self, s: Tensor) -> None:
        """Keep training conditions (a ring buffer) so ``draw`` gives realistic ones."""
        size = len(self.bank)
        pos = (int(self.bank_filled) + torch.arange(len(s), device=s.device)) % size
        self.bank[pos[-size:]] = s[-size:]
        self.bank_filled += len(s)

    def information_loss(self, q: Tensor, target: Tensor) -> Tensor:
        if self.sizes is None:
            return F.mse_loss(q, target)
        return sum(F.cross_entropy(c, target[:, k]) for k, c in enumerate(q.split(self.sizes, dim=1)))


#: ``setting`` -> its condition class
SETTINGS: dict[str, type[Condition]] = {"unsupervised": Unsupervised, "supervised": Supervised,
                                        "conditional": Conditional}


def make_condition(setting: str, **options) -> Condition:
    """The condition of ``setting``, built from those of the model's ``options`` its class takes."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of: {', '.join(SETTINGS)}")
    cls = SETTINGS[setting]
    wanted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in options.items() if k in wanted})
