"""CelebA aligned faces from local files, needing only the images and the partition list.

``<root>/celeba/img_align_celeba/`` (the 202,599 aligned 178x218 JPEGs) plus
``list_eval_partition.txt`` are enough: the official train/val/test partition is used.
``list_attr_celeba.txt``, when present, gives the 40 binary attributes by name
(``attribute_names``; labels become (N, 40) in {0, 1}); without it labels are -1.
``list_landmarks_align_celeba.txt``, when present, gives five landmarks per face
(``landmarks(split)``). Kaggle's ``.csv`` versions of these lists are read too. No other
CelebA file and no integrity check is needed, and nothing is downloaded (CelebA's hosted
download is unreliable; place the files by hand).

Faces: the central ``crop`` x ``crop`` square (default 140, the usual face crop, e.g. WAE) is
resized to ``image_size`` (64 by default; 32 for LatentGAN, 128 for GAIA). Images are decoded from
the files on demand (202k images do not fit in memory at 64 px), so ``device_cache`` is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from aegen.data.base import AEDataModule, ImageFiles, Split, find_files
from aegen.errors import AegenError
from aegen.registry import register_data

ALIGNED_SIZE = (178, 218)  # width, height of every img_align_celeba image
LANDMARK_NAMES = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
HOW = ("download img_align_celeba.zip and list_eval_partition.txt (optionally list_attr_celeba.txt, "
       "list_landmarks_align_celeba.txt) from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html or a mirror "
       "(e.g. Kaggle's celeba-dataset) and extract them there, or point --data.root (or $AEGEN_DATA) at the directory "
       "holding celeba/; aegen does not download CelebA")


class CenterCropResize:
    """The central ``crop`` square of an image, resized to ``size`` (picklable for workers)."""

    def __init__(self, crop: int, size: int) -> None:
        self.crop, self.size = crop, size

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        side = min(self.crop, width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.crop(self.box(*image.size)).resize((self.size, self.size), Image.Resampling.BICUBIC)


def _list_file(directory: Path, stem: str) -> Path | None:
    return next((directory / f"{stem}{ext}" for ext in (".txt", ".csv") if (directory / f"{stem}{ext}").is_file()), None)


def read_list(path: Path) -> tuple[list[str] | None, list[str], np.ndarray]:
    """A CelebA list (.txt, optionally starting with a count line, or Kaggle's .csv):
    (column names or None, image file names, int values (N, columns))."""
    try:
        rows = [line.replace(",", " ").split() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise AegenError(f"{path} is unreadable ({err}); fetch it again") from None
    if rows and len(rows[0]) == 1 and rows[0][0].isdigit():
        rows = rows[1:]  # the count line of the .txt lists
    names = None
    if rows and not all(v.lstrip("-").isdigit() for v in rows[0][1:]) or (rows and len(rows[0]) < 2):
        names, rows = rows[0], rows[1:]
    if not rows:
        raise AegenError(f"{path} lists no images; fetch it again")
    width = len(rows[0])
    if names is not None and len(names) == width:
        names = names[1:]  # the .csv header names the file column too
    values = np.empty((len(rows), width - 1), dtype=np.int64)
    for i, row in enumerate(rows):
        try:
            if len(row) != width:
                raise ValueError(f"{len(row)} fields, expected {width}")
            values[i] = [int(v) for v in row[1:]]
        except ValueError as err:
            raise AegenError(f"{path} is corrupt near line {i + 1} ({err}); fetch it again") from None
    return names, [row[0] for row in rows], values


@register_data("celeba")
class CelebA(AEDataModule):
    """CelebA aligned faces from local files (<root>/celeba), attributes by name when listed, RGB."""

    channels = 3

    def __init__(self, image_size: int = 64, crop: int = 140, attributes: bool | None = None, **kwargs) -> None:
        """
        Args:
            image_size: side of the square images (64: the usual size; 32 for LatentGAN, 128 for GAIA).
            crop: side of the central square cut from the 178x218 aligned images before resizing.
            attributes: labels are the 40 attributes (True: list_attr_celeba.txt required; None: when
                the file is present; False: never, labels -1).
        """
        super().__init__(image_size=image_size, **kwargs)
        if not 1 <= crop <= min(ALIGNED_SIZE):
            raise ValueError(f"crop must be between 1 and {min(ALIGNED_SIZE)} px (the aligned images are 178x218), got {crop}")
        if self.device_cache:
            raise ValueError("celeba is decoded from its image files on demand; device_cache needs in-memory data, "
                             "so leave --data.device_cache false")
        self.crop, self.use_attributes = crop, attributes
        self.directory = self.root / "celeba"
        self.transform = CenterCropResize(crop, image_size)
        self.attribute_names = None
        attr_file = _list_file(self.directory, "list_attr_celeba")
        if attributes is not False and attr_file is not None:
            self.attribute_names = self._attribute_header(attr_file)
        self._landmarks: dict[str, Tensor] | None = None

    @staticmethod
    def _attribute_header(path: Path) -> list[str]:
        with open(path, errors="replace") as f:
            for line in f:
                fields = line.replace(",", " ").split()
                if len(fields) >= 2 and not fields[1].lstrip("-").isdigit():
                    return fields[1:] if fields[0] == "image_id" else fields
        raise AegenError(f"{path} has no header of attribute names; fetch it again")

    def load_splits(self) -> dict[str, Split]:
        directory = self.directory
        partition_file = _list_file(directory, "list_eval_partition")
        required = ["img_align_celeba/"] + ([] if partition_file else ["list_eval_partition.txt"])
        if self.use_attributes and _list_file(directory, "list_attr_celeba") is None:
            required.append("list_attr_celeba.txt")
        find_files(directory, required, "celeba", HOW)
        _, files, partition = read_list(partition_file)
        partition = partition[:, 0]
        images = directory / "img_align_celeba"
        present = set(os.listdir(images))
        absent = [f for f in files if f not in present]
        if absent:
            raise AegenError(f"celeba: {len(absent)} of the {len(files)} images in {partition_file.name} are missing from "
                             f"{images} (e.g. {', '.join(absent[:3])}); extract img_align_celeba.zip there again")
        labels = torch.full((len(files),), -1, dtype=torch.long)
        if self.attribute_names is not None:
            labels = self._table("list_attr_celeba", files, len(self.attribute_names)).gt(0).long()
        landmark_file = _list_file(directory, "list_landmarks_align_celeba")
        landmarks = self._table("list_landmarks_align_celeba", files, 10) if landmark_file else None
        paths = np.array([images / f for f in files], dtype=object)
        splits: dict[str, Split] = {}
        self._landmarks = {} if landmarks is not None else None
        for code, name in enumerate(("train", "val", "test")):
            idx = np.flatnonzero(partition == code)
            splits[name] = ImageFiles(list(paths[idx]), labels[torch.from_numpy(idx)], self.transform, mode="RGB")
            if landmarks is not None:
                self._landmarks[name] = self._to_output_pixels(landmarks[torch.from_numpy(idx)])
        if any(len(s) == 0 for s in splits.values()):
            raise AegenError(f"{partition_file} leaves a split empty (train/val/test are partitions 0/1/2); fetch it again")
        return splits

    def _table(self, stem: str, files: list[str], columns: int) -> Tensor:
        path = _list_file(self.directory, stem)
        _, names, values = read_list(path)
        if values.shape[1] != columns:
            raise AegenError(f"{path} has {values.shape[1]} value columns, expected {columns}; fetch it again")
        row = {name: i for i, name in enumerate(names)}
        missing = [f for f in files if f not in row]
        if missing:
            raise AegenError(f"{path} has no row for {len(missing)} images (e.g. {missing[0]}); fetch it again")
        return torch.from_numpy(values[[row[f] for f in files]])

    def _to_output_pixels(self, landmarks: Tensor) -> Tensor:
        left, top, right, _ = self.transform.box(*ALIGNED_SIZE)
        scale = self.image_size / (right - left)
        xy = landmarks.view(-1, len(LANDMARK_NAMES), 2).float()
        return (xy - torch.tensor([left, top], dtype=torch.float32)) * scale

    def landmarks(self, split: str) -> Tensor | None:
        """(N, 5, 2) landmark (x, y) positions in the output images' pixels, in LANDMARK_NAMES order;
        None without list_landmarks_align_celeba.txt."""
        self.setup()
        return None if self._landmarks is None else self._landmarks[split]
