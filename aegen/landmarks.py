"""Continuous face attributes computed from facial landmarks, for attribute vectors.

Landmarks are CelebA's five points per face, in the column order of
``list_landmarks_align_celeba.txt``: lefteye_x, lefteye_y, righteye_x, righteye_y, nose_x, nose_y,
leftmouth_x, leftmouth_y, rightmouth_x, rightmouth_y, as (N, 10) or as (N, 5, 2) (x, y) points
(``CelebA.landmarks(split)``). "left" and "right" are the image's: the left eye has the smaller x.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from aegen.errors import AegenError

if TYPE_CHECKING:
    from torch import Tensor

LandmarkAttribute = Literal["rotation"]
LANDMARK_FILE = "list_landmarks_align_celeba.txt"


def head_rotation(landmarks: Tensor) -> Tensor:
    """Head rotation per face (N,) from landmarks (N, 10) or (N, 5, 2), as in GAIA's Figure 6.

    GAIA (Sainburg et al. 2018) takes "the distance from the nose to the mean of the left mouth/eye
    vs right mouth/eye". Here: with L the mean of the left eye and left mouth corner, R the mean of
    the right eye and right mouth corner and n the nose,

        rotation = (|n - L| - |n - R|) / |right eye - left eye|

    (Euclidean distances; dividing by the eye distance makes it independent of the face's size).
    A frontal, symmetric face gives 0; the nose nearer the right-hand landmarks (the face turned
    towards the image's right) gives a positive value, nearer the left-hand ones a negative one.
    """
    import torch  # here, so that the CLI can name the attributes without importing torch

    points = torch.as_tensor(landmarks).float().reshape(-1, 5, 2)
    left_eye, right_eye, nose, left_mouth, right_mouth = points.unbind(1)
    to_left = (nose - (left_eye + left_mouth) / 2).norm(dim=1)
    to_right = (nose - (right_eye + right_mouth) / 2).norm(dim=1)
    return (to_left - to_right) / (right_eye - left_eye).norm(dim=1).clamp_min(1e-6)


LANDMARK_ATTRIBUTES = {"rotation": head_rotation}


def landmark_attribute(datamodule, name: LandmarkAttribute, split: str, limit: int | None = None) -> Tensor:
    """The attribute ``name`` (N,) of the first ``limit`` images of ``split`` (the images of
    ``datamodule.tensors(split, limit)``), standardised to mean 0 and standard deviation 1 so that an
    attribute vector's strength counts standard deviations of the attribute in those images.
    Raises a one-line AegenError when the data has no landmarks or the value does not vary."""
    directory = getattr(datamodule, "directory", getattr(datamodule, "root", "."))
    if not hasattr(datamodule, "landmarks"):
        raise AegenError(f"{datamodule.registry_name} has no landmarks; --landmarks needs celeba with {LANDMARK_FILE}")
    landmarks = datamodule.landmarks(split)
    if landmarks is None:
        raise AegenError(f"{datamodule.registry_name} has no landmarks: {directory}/{LANDMARK_FILE} is missing; "
                         "place CelebA's landmark list there (or use --attr)")
    values = LANDMARK_ATTRIBUTES[name](landmarks[:limit])
    if len(values) < 2 or values.std() < 1e-8:
        raise AegenError(f"the {len(values)} {split} image(s) all have the same {name}: nothing to regress on; "
                         "use more images (--bank)")
    return (values - values.mean()) / values.std()
