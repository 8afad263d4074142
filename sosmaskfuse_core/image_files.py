"""Image folders on disk: pairing files by stem across folders and reading them with clear errors."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


#: File suffixes (lower case) of the image formats OpenCV decodes.
IMAGE_SUFFIXES = frozenset({
    ".bmp", ".dib", ".jpg", ".jpeg", ".jpe", ".jp2", ".png", ".webp", ".avif", ".pbm", ".pgm",
    ".ppm", ".pxm", ".pnm", ".pfm", ".sr", ".ras", ".tiff", ".tif", ".exr", ".hdr", ".pic",
})


class ImageReadError(ValueError):
    """A file that OpenCV cannot read as an image."""


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Files of a folder by stem (hidden files skipped; any format OpenCV may read).

    Raises NotADirectoryError for a missing folder. Two files with one stem (a.png, a.jpg)
    keep the first in name order; the others are returned by `duplicate_stems`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    out: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            out.setdefault(path.stem, path)
    return out


@dataclass
class Pairing:
    """Files matched by stem across several folders, and what could not be matched."""

    pairs: list[tuple[str, tuple[Path, ...]]] = field(default_factory=list)
    unmatched: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)


def pair_by_stem(*folders: str | os.PathLike, names: tuple[str, ...] | None = None) -> Pairing:
    """Match files of the same stem in every folder; others are reported with the folder they miss."""
    names = names or tuple(Path(f).name for f in folders)
    listings = [list_images(f) for f in folders]
    stems = sorted(set().union(*listings))
    result = Pairing()
    for stem in stems:
        found = [listing.get(stem) for listing in listings]
        if all(found):
            result.pairs.append((stem, tuple(found)))
        else:
            missing = ", ".join(n for n, f in zip(names, found) if f is None)
            for path in (f for f in found if f is not None):
                result.unmatched.append((path, f"no partner in {missing}"))
    return result


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """cv2.imread that raises ImageReadError (with the file's name) instead of returning None."""
    path = os.fspath(path)
    data = np.fromfile(path, dtype=np.uint8) if os.path.isfile(path) else None
    if data is None:
        raise ImageReadError(f"{path}: no such file")
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    image = cv2.imdecode(data, flags)
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not an image OpenCV can read")
    return image


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image, creating the folder; raises OSError when the encoder or the disk fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the image")
    buf.tofile(os.fspath(path))
