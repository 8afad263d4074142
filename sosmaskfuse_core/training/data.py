"""Training data: image folders as in-memory 8-bit gray images, a held-out split, and crop batches.

Batches are a pure function of (seed, step), so a resumed run draws exactly the batches the
uninterrupted run would have drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from sosmaskfuse_core.formats.image_files import IMAGE_SUFFIXES, ImageReadError, read_image

log = logging.getLogger(__name__)


class DataError(ValueError):
    """Training data that cannot be used (missing, empty or mismatched folders)."""


def find_images(folders: Sequence[str | Path]) -> list[Path]:
    """Image files under the folders (recursively), sorted.

    DataError if a folder is missing or empty.
    """
    found: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder")
        files = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"{folder}: no image files "
                f"(looked for {', '.join(sorted(IMAGE_SUFFIXES)[:6])}, ...)"
            )
        found.extend(files)
    return found


def split_holdout(
    paths: Sequence[Path], fraction: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """A deterministic (train, held-out) split of files; files of one stem stay on one side.

    Keeping stems together means an infrared image and its visible partner are never split
    across train and validation.
    """
    stems = sorted({p.stem for p in paths})
    rng = np.random.default_rng(seed)
    n_val = int(round(fraction * len(stems)))
    held = set(rng.permutation(stems)[:n_val].tolist()) if n_val else set()
    return [p for p in paths if p.stem not in held], [p for p in paths if p.stem in held]


def load_gray(paths: Sequence[Path], min_size: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """8-bit gray images (OpenCV luma for colour files), and the reasons for files skipped.

    Unreadable or too small files are skipped with a warning and returned as reasons, so one bad
    file never stops a run.
    """
    images, skipped = [], []
    for path in paths:
        try:
            img = read_image(path, cv2.IMREAD_GRAYSCALE)
        except ImageReadError as exc:
            skipped.append(str(exc))
            log.warning("skipped %s", exc)
            continue
        if min(img.shape) < min_size:
            skipped.append(
                f"{path}: {img.shape[1]}x{img.shape[0]} is smaller than {min_size} pixels"
            )
            log.warning("skipped %s", skipped[-1])
            continue
        images.append(img)
    return images, skipped


@dataclass(frozen=True)
class CropSpec:
    """How a training sample is cut from an image: a random crop or the whole image, resized.

    A random `crop` (ours), or the whole image resized to `resize` x `resize` with nearest
    interpolation (the paper's COCO setting).
    """

    crop: int | None = 64
    resize: int | None = None
    flip: bool = True

    def __post_init__(self) -> None:
        if (self.crop is None) == (self.resize is None):
            raise ValueError("give exactly one of crop and resize")
        if self.size < 16:
            raise ValueError("crops and resized images must be at least 16 pixels")

    @property
    def size(self) -> int:
        size = self.crop if self.crop is not None else self.resize
        assert size is not None  # exactly one of them is given (checked on construction)
        return int(size)


def sample_batch(
    images: Sequence[np.ndarray], spec: CropSpec, batch_size: int, seed: int, step: int
) -> torch.Tensor:
    """Batch `step` of a run: B x 1 x S x S float gray levels 0..255.

    A pure function of its arguments.
    """
    rng = np.random.default_rng([seed, step])
    out = np.empty((batch_size, 1, spec.size, spec.size), np.float32)
    for b in range(batch_size):
        img = images[int(rng.integers(len(images)))]
        if spec.resize:
            sample = cv2.resize(img, (spec.size, spec.size), interpolation=cv2.INTER_NEAREST)
        else:
            y = int(rng.integers(img.shape[0] - spec.size + 1))
            x = int(rng.integers(img.shape[1] - spec.size + 1))
            sample = img[y : y + spec.size, x : x + spec.size]
        if spec.flip and rng.random() < 0.5:
            sample = sample[:, ::-1]
        out[b, 0] = sample
    return torch.from_numpy(out)
