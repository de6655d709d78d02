"""What the DEAE claims share: the fonts subset, fonts with few training items, syntheses and a letter classifier.

Models train through ``aegen fit`` (``Context.fit``) and are loaded back with ``aegen.load``; the
syntheses and the classifiers run in this process, on the GPU when there is one. Images stay
uint8 in memory and become floats in [-1, 1] one batch at a time.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

import aegen
from aegen.data.base import from_uint8, signed_to_uint8
from aegen.data.fonts import Fonts
from aegen.metrics.controllability import decode_all, edit_codes
from aegen.metrics.judge import JudgeNet

#: the quick fonts subset: 10 letters x 6 faces x 3 sizes x 5 font colours x 5 backgrounds (4500 combinations)
SUBSET = {"letter": 10, "font": 6, "size": 3, "font_colour": 5, "background_colour": 5}
#: the blocks an augmentation changes: every one but the letter, which the classifier reads
STYLE = ["font", "size", "font_colour", "background_colour"]
#: the class path ``aegen fit --data`` takes for ``FewFonts`` (``harness.aegen`` puts ``experiments/`` on the path)
FEW_FONTS = f"{__name__}.FewFonts"


class FewFonts(Fonts):
    """Fonts whose training split keeps only its first ``train_items`` items (the seeded split's
    order); validation and test are unchanged."""

    def __init__(self, train_items: int | None = None, **kwargs: Any) -> None:
        """
        Args:
            train_items: items kept from the training split (None: all of them).
        """
        super().__init__(**kwargs)
        self.train_items = train_items

    def judge_data(self) -> Fonts:
        """The judges of plain Fonts of these settings: trained on its whole judge draw, not ``train_items``."""
        settings = {k: v for k, v in self.hparams.items() if not k.startswith("_") and k != "train_items"}
        return Fonts(**settings).judge_data()

    def load_splits(self) -> dict[str, Any]:
        splits = super().load_splits()
        if self.train_items is not None:
            images, factors = splits["train"]
            splits["train"] = (images[: self.train_items], factors[: self.train_items])
        return splits


def fonts(**options: Any) -> FewFonts:
    """The datamodule of ``options`` (FewFonts' and Fonts' settings), in this process."""
    return FewFonts(**options)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load(ckpt) -> Any:
    """The trained model of a checkpoint, on ``device()``, in eval mode."""
    return aegen.load(ckpt).to(device()).eval()


@torch.no_grad()
def encode(model, images: Tensor, batch_size: int = 256) -> Tensor:
    """Codes (N, D) on the CPU of uint8 images (N, C, H, W)."""
    return torch.cat([model.encode(from_uint8(x.to(model.device))).flatten(1).cpu() for x in images.split(batch_size)])


@torch.no_grad()
def synthesise(model, images: Tensor, blocks: list[str], copies: int, seed: int,
               how: Literal["swap", "interpolate"]) -> tuple[Tensor, Tensor]:
    """``copies`` syntheses per image (uint8) from each image's code with the blocks ``blocks`` changed.

    ``swap``: the blocks taken whole from a random other image of ``images`` (seen values in a new
    combination). ``interpolate``: each dimension of the blocks drawn uniformly between the image's
    value and that random image's, as DEAE's exploration draws (values between seen ones).
    Returns the syntheses and, for each, the index of the image it keeps the other blocks of.
    """
    generator = torch.Generator().manual_seed(seed)
    codes = encode(model, images)
    dims = [d for name in blocks for d in range(model.blocks[name].start, model.blocks[name].stop)]
    out, kept = [], []
    for _ in range(copies):
        donors = codes[torch.randint(len(codes), (len(codes),), generator=generator)]
        if how == "interpolate":
            u = torch.rand(codes.shape, generator=generator)
            donors = codes + u * (donors - codes)
        edited = edit_codes(codes, donors, dims)
        out += [signed_to_uint8(decode_all(model, part)) for part in edited.split(1024)]
        kept.append(torch.arange(len(codes)))
    return torch.cat(out), torch.cat(kept)


def train_classifier(images: Tensor, letters: Tensor, num_classes: int, steps: int, seed: int,
                     batch_size: int = 64, lr: float = 1e-3) -> JudgeNet:
    """A letter classifier (aegen's judge CNN) trained with Adam for ``steps`` steps on uint8 images."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = JudgeNet(images.shape[1], num_classes).to(device())
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        net.train()
        for _ in range(steps):
            idx = torch.randint(len(images), (batch_size,), generator=generator)
            x, y = from_uint8(images[idx].to(device())), letters[idx].to(device())
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: JudgeNet, images: Tensor, letters: Tensor, batch_size: int = 512) -> float:
    """Share of uint8 images whose letter ``net`` reads right."""
    hits = [(net(from_uint8(x.to(device()))).argmax(1).cpu() == y).sum() for x, y in
            zip(images.split(batch_size), letters.split(batch_size))]
    return float(sum(hits)) / len(letters)
