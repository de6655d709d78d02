"""Fonts: letters rendered from the TrueType faces inside matplotlib, with five known factors.

The procedural data of the DEAE paper (and GZS-Net's Fonts before it), built offline from the
fonts matplotlib ships: every image is a deterministic function of its factor tuple

    letter (52: A-Z, a-z), font (21 faces), size (3), font_colour (10), background_colour (10)

so the disentanglement metrics and DEAE's group sampling can render any combination
(``render``), enumerate the grid (``factor_grid``) and find items that share one factor with an
anchor (``partners``, ``partner_factors``). Labels are the (N, 5) factor value indices in
``factor_names`` order; the class is the letter.

Rendering: each (letter, font, size) glyph is drawn once with FreeType (PIL) at the image size,
cropped to its ink and centred, giving an alpha mask; an image is the background colour blended
with the font colour through that mask, so colours cost nothing to vary. Every face is checked to
draw a real letter for all 52 characters (``check_face``). Rendered splits are cached in memory
and on disk under ``<root>/cache/fonts/`` (keyed by a hash of every setting and the matplotlib and
Pillow versions), so only the first setup renders.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
import warnings
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Sequence, Union

import matplotlib
import PIL
import torch
from matplotlib import ft2font
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from aegen.data.base import AEDataModule, Split, TensorSplit, from_uint8
from aegen.errors import AegenError
from aegen.io import save_atomic
from aegen.registry import register_data

RENDER_VERSION = 2  # bump when the rendering changes: invalidates the disk caches

LETTERS = string.ascii_uppercase + string.ascii_lowercase

# The faces whose 52 letters are real letters (check_face); matplotlib's other bundled faces draw
# blanks (DejaVu*Display, STIXNonUni*, STIXSiz*), boxes (LastResortHE) or math symbols (cmex10, cmsy10).
FACES: dict[str, str] = {face: f"{face}.ttf" for face in (
    "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
    "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
    "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSansMono-Oblique", "DejaVuSansMono-BoldOblique",
    "STIXGeneral", "STIXGeneral-Bold", "STIXGeneral-Italic", "STIXGeneral-BoldItalic",
    "cmr10", "cmb10", "cmss10", "cmtt10", "cmti10")}  # face -> its file in matplotlib's fonts/ttf
FACES.update({"STIXGeneral-Bold": "STIXGeneralBol.ttf", "STIXGeneral-Italic": "STIXGeneralItalic.ttf",
              "STIXGeneral-BoldItalic": "STIXGeneralBolIta.ttf"})

# Font size = em height as a share of the image side; the widest glyph (DejaVu Serif Bold Italic
# "M", 1.17 em) still fits at "large".
SIZES: dict[str, float] = {"small": 0.45, "medium": 0.6, "large": 0.75}

# Light font colours on dark backgrounds: every pair has a WCAG contrast ratio of at least 3.4,
# so no combination hides its letter.
FONT_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255), "yellow": (255, 230, 40), "orange": (255, 150, 30), "salmon": (255, 120, 110),
    "pink": (255, 130, 220), "lime": (150, 240, 60), "aqua": (60, 230, 230), "sky": (120, 180, 255),
    "lavender": (200, 170, 255), "silver": (185, 185, 185),
}
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "navy": (10, 20, 100), "blue": (30, 50, 170), "maroon": (110, 10, 20),
    "crimson": (150, 10, 50), "forest": (10, 80, 30), "teal": (0, 80, 90), "purple": (80, 20, 110),
    "brown": (90, 50, 15), "slate": (50, 55, 65),
}

FACTOR_NAMES = ("letter", "font", "size", "font_colour", "background_colour")
FACTOR_VALUES: dict[str, list[str]] = dict(zip(FACTOR_NAMES, map(list, (LETTERS, FACES, SIZES, FONT_COLOURS,
                                                                 BACKGROUND_COLOURS))))

SubsetSpec = dict[str, Union[int, list[Union[int, str]]]]


def font_path(face: str) -> Path:
    """The .ttf file of a face (a FACES key or any file name in matplotlib's font directory)."""
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FACES.get(face, face)
    if not path.is_file():
        raise AegenError(f"font file {path} is missing from this matplotlib installation; reinstall matplotlib")
    return path


@lru_cache(maxsize=None)
def _font(path: Path, em: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), em)


def _ink(path: Path, char: str, em: int) -> Image.Image | None:
    """The glyph drawn white on black at ``em`` px, cropped to its ink; None when it is blank."""
    canvas = Image.new("L", (4 * em, 4 * em))
    ImageDraw.Draw(canvas).text((em, 3 * em), char, font=_font(path, em), fill=255, anchor="ls")
    box = canvas.getbbox()
    return canvas.crop(box) if box else None


def check_face(face: str, em: int = 64) -> list[str]:
    """Why a face cannot serve as a Fonts face: [] when all 52 letters render as real letters.

    A letter must be in the face's character map under its own glyph name (symbol faces map
    letters to symbols, e.g. cmsy10 maps "a" to "turnstileright"), draw some ink, differ from the
    face's missing-glyph box, and differ from every other letter.
    """
    path = font_path(face)
    info = ft2font.FT2Font(str(path))
    problems, seen = [], {}
    missing_box = _ink(path, "\U0010fffd", em)
    for char in LETTERS:
        index = info.get_char_index(ord(char))
        if index == 0:
            problems.append(f"no glyph for {char!r}")
            continue
        if info.get_glyph_name(index) != char:
            problems.append(f"{char!r} is the symbol {info.get_glyph_name(index)!r}")
        ink = _ink(path, char, em)
        if ink is None:
            problems.append(f"{char!r} is blank")
            continue
        key = (ink.size, ink.tobytes())
        if missing_box is not None and key == (missing_box.size, missing_box.tobytes()):
            problems.append(f"{char!r} is the missing-glyph box")
        if key in seen:
            problems.append(f"{char!r} looks like {seen[key]!r}")
        seen.setdefault(key, char)
    return problems


@lru_cache(maxsize=None)
def _checked(face: str) -> None:
    problems = check_face(face)
    if problems:
        raise AegenError(f"font {face} ({font_path(face)}) does not draw real letters: {'; '.join(problems[:3])}")


@lru_cache(maxsize=8192)
def glyph_alpha(letter: str, face: str, size: str, image_size: int) -> Tensor:
    """uint8 (image_size, image_size) coverage of one letter, its ink centred in the square."""
    _checked(face)
    em = max(1, round(SIZES[size] * image_size))
    ink = _ink(font_path(face), letter, em)
    square = Image.new("L", (image_size, image_size))
    if ink is not None:
        square.paste(ink, ((image_size - ink.width) // 2, (image_size - ink.height) // 2))
    return torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8).view(image_size, image_size)


def _resolve(factor: str, spec: int | list[int | str]) -> list[int]:
    """Value indices of one factor picked by ``--data.subset``: a count (the first n) or a list."""
    values = FACTOR_VALUES[factor]
    if isinstance(spec, bool) or not isinstance(spec, (int, list, tuple)):
        raise ValueError(f"--data.subset {factor}: give a count or a list of values, got {spec!r}")
    if isinstance(spec, int):
        if not 1 <= spec <= len(values):
            raise ValueError(f"--data.subset {factor}: a count between 1 and {len(values)}, got {spec}")
        return list(range(spec))
    picked = []
    for item in spec:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(values):
                raise ValueError(f"--data.subset {factor}: index {item} is out of range 0..{len(values) - 1}")
            picked.append(item)
        elif str(item) in values:
            picked.append(values.index(str(item)))
        else:
            raise ValueError(f"--data.subset {factor}: unknown value {item!r}; choose from {', '.join(values)}")
    if not picked or len(set(picked)) != len(picked):
        raise ValueError(f"--data.subset {factor}: give a non-empty list without repeats, got {spec!r}")
    return picked


_MEMORY: OrderedDict[str, dict[str, TensorSplit]] = OrderedDict()
_MEMORY_ENTRIES = 4


@register_data("fonts")
class Fonts(AEDataModule):
    """Letters rendered from matplotlib's fonts with 5 known factors (embedded, offline), RGB."""

    channels = 3
    factor_names = list(FACTOR_NAMES)
    #: the factor ``class_labels`` reads, so the class judge serves as that factor's judge too
    class_factor = "letter"

    def __init__(
        self,
        subset: SubsetSpec | None = None,
        bias: list[str] | None = None,
        num_items: int = 8000,
        judge_items: int = 24000,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        disk_cache: bool = True,
        batch_size: int = 16,
        **kwargs,
    ) -> None:
        """
        Args:
            subset: values kept per factor, e.g. ``{letter: 10, font: 3, font_colour: 3}`` (the
                first n values) or ``{letter: [A, B, c], font: [cmr10, DejaVuSans], size: [0, 2]}``
                (names or indices, in that order); unnamed factors keep all values. Labels index
                the kept values.
            bias: two factor names ``[a, b]``: in the training split only, the i-th value of a
                appears only with the (i mod n)-th value of b (n = b's number of values), e.g.
                ``[letter, background_colour]``; validation and test stay unbiased.
            num_items: items drawn (seeded, without repeats) from the factor grid and split into
                train/val/test; the whole grid when it is smaller (327,600 combinations in all).
                Items take 3 KB each at 32 px, 48 KB at 128 px (in memory and in the disk cache).
            judge_items: items of the draw the judges of ``aegen evaluate`` train on (``judge_data``),
                whatever ``num_items`` says (``num_items`` when larger): trained on the 8,000-item
                draw the typeface judge read the typeface of 0.730 of its test images right, on
                the 24,000-item one 0.985 (the same 800 images).
            val_fraction: share of the items for validation.
            test_fraction: share of the items for testing.
            disk_cache: keep rendered splits under ``<root>/cache/fonts/`` for the next run.
            batch_size: batch size per device (images, or groups for the group models deae and gsl).

        The default item count and batch make ``aegen fit --model deae --data fonts`` train 4,000
        minibatches in 10 epochs (6.9 minutes for the whole process on a 2-core CPU); 6,000 (12,000
        items) took 5.4 to 10.4 minutes on the same CPU on different days, over the defaults' 10.
        """
        super().__init__(batch_size=batch_size, **kwargs)
        if self.image_size < 16:
            raise ValueError(f"fonts needs --data.image_size of at least 16 (32, 64 or 128 are usual), got {self.image_size}")
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
        if min(num_items, judge_items) < 3:
            raise ValueError("num_items and judge_items must be at least 3 (one item per split), "
                             f"got {num_items} and {judge_items}")
        subset = dict(subset or {})
        unknown = set(subset) - set(FACTOR_NAMES)
        if unknown:
            raise ValueError(f"--data.subset: unknown factor {sorted(unknown)[0]!r}; factors are {', '.join(FACTOR_NAMES)}")
        self.value_indices = [_resolve(f, subset[f]) if f in subset else list(range(len(FACTOR_VALUES[f])))
                              for f in FACTOR_NAMES]
        self.factor_values = [[FACTOR_VALUES[f][i] for i in idx] for f, idx in zip(FACTOR_NAMES, self.value_indices)]
        self.factor_sizes = [len(v) for v in self.factor_values]
        self.num_classes = self.factor_sizes[0]
        if bias is not None:
            if len(bias) != 2 or bias[0] == bias[1] or not set(bias) <= set(FACTOR_NAMES):
                raise ValueError(f"--data.bias takes two different factor names from {', '.join(FACTOR_NAMES)}, got {bias!r}")
            self.bias = (FACTOR_NAMES.index(bias[0]), FACTOR_NAMES.index(bias[1]))
        else:
            self.bias = None
        self.num_items, self.judge_items = num_items, judge_items
        self.fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
        self.disk_cache = disk_cache
        self.loaded_from: str | None = None  # "memory", "disk" or "render" after setup

    # ------------------------------------------------------------------ judges
    #: 6,000 Adam steps: 20 epochs of the 19,200 training items of the default judge draw
    judge_training: ClassVar[dict[str, int | float]] = {"max_steps": 6000}

    def judge_data(self) -> Fonts:
        """The draw the judges train on: these settings without ``bias`` (a judge reads each factor
        on its own) at ``judge_items`` items, or ``num_items`` when larger, so every run of the same
        subset, image size and split shares its judges. The draw takes its validation and test
        items first from the same seeded order, in the same fractions, so they include this data's
        own, and its training split holds none of them."""
        items = max(self.num_items, self.judge_items)
        if self.bias is None and items == self.num_items:
            return self
        hparams = {k: v for k, v in self.hparams.items() if not k.startswith("_")}
        return type(self)(**{**hparams, "bias": None, "num_items": items})

    # ------------------------------------------------------------------ factors and rendering
    def class_labels(self, labels: Tensor) -> Tensor:
        """The letter of each item."""
        return labels[:, 0] if labels.dim() == 2 else labels

    @property
    def num_combinations(self) -> int:
        return math.prod(self.factor_sizes)

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Grid positions (N,) -> factor tuples (N, 5); the letter varies slowest."""
        return torch.stack(torch.unravel_index(codes, tuple(self.factor_sizes)), dim=1)

    def factor_grid(self) -> Tensor:
        """Every factor tuple of the (subset) grid, (num_combinations, 5)."""
        return self.decode_codes(torch.arange(self.num_combinations))

    def sample_factors(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` factor tuples drawn uniformly from the grid, (n, 5)."""
        return torch.stack([torch.randint(size, (n,), generator=generator) for size in self.factor_sizes], dim=1)

    def _check_factors(self, factors: Tensor) -> Tensor:
        factors = torch.as_tensor(factors, dtype=torch.long).cpu()
        if factors.dim() != 2 or factors.shape[1] != len(FACTOR_NAMES):
            raise ValueError(f"factor tuples hold {len(FACTOR_NAMES)} value indices ({', '.join(FACTOR_NAMES)}), "
                             f"got shape {tuple(factors.shape)}")
        sizes = torch.tensor(self.factor_sizes)
        if ((factors < 0) | (factors >= sizes)).any():
            raise ValueError(f"factor value indices must be below the factor sizes {self.factor_sizes}")
        return factors

    def render_uint8(self, factors: Tensor, chunk: int = 4096) -> Tensor:
        """uint8 (N, 3, S, S) images of factor tuples (N, 5)."""
        factors = self._check_factors(factors)
        letters, faces, sizes = self.factor_values[:3]
        fg_table = torch.tensor([FONT_COLOURS[c] for c in self.factor_values[3]], dtype=torch.float32)
        bg_table = torch.tensor([BACKGROUND_COLOURS[c] for c in self.factor_values[4]], dtype=torch.float32)
        out = []
        size = self.image_size
        for part in factors.split(chunk):
            glyphs, which = torch.unique(part[:, :3], dim=0, return_inverse=True)  # draw each glyph once
            masks = torch.stack([glyph_alpha(letters[c], faces[f], sizes[z], size) for c, f, z in glyphs.tolist()])
            alpha = masks[which].unsqueeze(1).float()
            fg, bg = fg_table[part[:, 3], :, None, None], bg_table[part[:, 4], :, None, None]
            blend = torch.addcmul(bg.expand(len(part), 3, size, size), alpha, (fg - bg) / 255)  # bg + (fg - bg) * a
            out.append(blend.round_().to(torch.uint8))
        return torch.cat(out) if out else torch.empty(0, 3, self.image_size, self.image_size, dtype=torch.uint8)

    def render_batch(self, factors: Tensor) -> Tensor:
        """Float (N, 3, S, S) images in [-1, 1] of factor tuples (N, 5)."""
        return from_uint8(self.render_uint8(factors))

    def render(self, factors: Sequence[int] | Tensor) -> Tensor:
        """The image (3, S, S) in [-1, 1] of one factor tuple (value indices in ``factor_names`` order)."""
        return self.render_batch(torch.as_tensor(factors, dtype=torch.long).view(1, -1))[0]

    def partner_factors(self, anchors: Tensor, factor: int | str, generator: torch.Generator | None = None) -> Tensor:
        """Factor tuples sharing exactly ``factor`` with each anchor (B, 5): every other factor is
        drawn uniformly from the values that differ from the anchor's (kept when it has one value)."""
        k = FACTOR_NAMES.index(factor) if isinstance(factor, str) else factor
        anchors = self._check_factors(anchors)
        out = anchors.clone()
        for j, size in enumerate(self.factor_sizes):
            if j != k and size > 1:
                shift = torch.randint(1, size, (len(anchors),), generator=generator)
                out[:, j] = (anchors[:, j] + shift) % size
        return out

    def partners(self, anchors: Tensor, factor: int | str, split: str = "train",
                 generator: torch.Generator | None = None) -> Tensor:
        """Indices into ``split`` of items sharing ``factor`` with each anchor (B, 5), chosen
        uniformly among those sharing the fewest other factors (none, when such items exist);
        -1 where no item of the split has the anchor's value of ``factor``."""
        k = FACTOR_NAMES.index(factor) if isinstance(factor, str) else factor
        anchors = self._check_factors(anchors)
        labels = self.split(split)[1].cpu()
        out = torch.full((len(anchors),), -1, dtype=torch.long)
        for b, anchor in enumerate(anchors):
            candidates = (labels[:, k] == anchor[k]).nonzero().flatten()
            if len(candidates) == 0:
                continue
            shared = (labels[candidates] == anchor).sum(1)
            best = candidates[shared == shared.min()]
            out[b] = best[torch.randint(len(best), (1,), generator=generator)]
        return out

    # ------------------------------------------------------------------ splits and caches
    def cache_key(self) -> str:
        settings = {
            "version": RENDER_VERSION, "matplotlib": matplotlib.__version__, "pillow": PIL.__version__,
            "image_size": self.image_size, "values": self.factor_values, "bias": self.bias,
            "num_items": self.num_items, "fractions": self.fractions, "split_seed": self.split_seed,
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]

    @property
    def cache_path(self) -> Path:
        return self.root / "cache" / "fonts" / f"{self.cache_key()}.pt"

    def split_factors(self) -> dict[str, Tensor]:
        """The factor tuples of each split: a seeded draw from the grid, the training split biased if asked."""
        generator = torch.Generator().manual_seed(self.split_seed)
        total = self.num_combinations
        n = min(self.num_items, total)
        n_val, n_test = (max(1, round(f * n)) for f in self.fractions[1:])
        order = torch.randperm(total, generator=generator)
        val, test, rest = order[:n_val], order[n_val:n_val + n_test], order[n_val + n_test:]
        rest = self.decode_codes(rest)
        if self.bias is not None:
            a, b = self.bias
            rest = rest[rest[:, b] == rest[:, a] % self.factor_sizes[b]]
        train = rest[: n - n_val - n_test]
        if len(train) == 0:
            raise ValueError("--data.subset/--data.bias leave no training items; keep more values or raise num_items")
        return {"train": train, "val": self.decode_codes(val), "test": self.decode_codes(test)}

    def _read_disk(self) -> dict[str, TensorSplit] | None:
        path = self.cache_path
        if not (self.disk_cache and path.is_file()):
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            splits = {name: (data[f"{name}_images"], data[f"{name}_labels"]) for name in ("train", "val", "test")}
            if any(x.dtype != torch.uint8 or x.shape[1:] != self.img_shape or len(x) != len(y) for x, y in splits.values()):
                raise ValueError("unexpected tensor shapes")
            return splits
        except Exception as err:  # noqa: BLE001 - a broken cache is re-rendered, never fatal
            warnings.warn(f"ignoring unreadable fonts cache {path} ({err}); rendering again", stacklevel=2)
            return None

    def _write_disk(self, splits: dict[str, TensorSplit]) -> None:
        path = self.cache_path
        try:
            # atomic (DDP ranks may write the same file), and without drawing from torch's random state
            save_atomic({f"{name}_{kind}": t for name, (x, y) in splits.items() for kind, t in (("images", x), ("labels", y))},
                        path)
        except OSError as err:
            warnings.warn(f"could not write the fonts cache {path} ({err}); the next run renders again", stacklevel=2)

    def load_splits(self) -> dict[str, Split]:
        key = self.cache_key()
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            self.loaded_from = "memory"
            return dict(_MEMORY[key])
        splits = self._read_disk()
        self.loaded_from = "disk"
        if splits is None:
            splits = {name: (self.render_uint8(factors), factors) for name, factors in self.split_factors().items()}
            self.loaded_from = "render"
            if self.disk_cache:
                self._write_disk(splits)
        _MEMORY[key] = splits
        while len(_MEMORY) > _MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)
        return dict(splits)
