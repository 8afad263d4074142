"""Image folders on disk: pairing files by stem across folders, reading them with clear errors."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: File suffixes (lower case) of the image formats OpenCV decodes.
IMAGE_SUFFIXES = frozenset(
    {
        ".bmp",
        ".dib",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jp2",
        ".png",
        ".webp",
        ".avif",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pxm",
        ".pnm",
        ".pfm",
        ".sr",
        ".ras",
        ".tiff",
        ".tif",
        ".exr",
        ".hdr",
        ".pic",
    }
)


class ImageReadError(ValueError):
    """A file that OpenCV cannot read as an image."""


def list_images(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """Image files of a folder (by suffix, hidden files skipped) by stem, in name order.

    A stem usually has one file; several (a.png and a.jpg) make it ambiguous, which callers
    report rather than guess. Raises NotADirectoryError for a missing folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    out: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if (
            path.suffix.lower() in IMAGE_SUFFIXES
            and not path.name.startswith(".")
            and path.is_file()
        ):
            out.setdefault(path.stem, []).append(path)
    return out


def single(images: dict[str, list[Path]], stem: str, role: str, folder: str | os.PathLike) -> Path:
    """The one `role` file of `stem` in a `list_images` listing; ValueError naming the problem."""
    paths = images.get(stem, [])
    if not paths:
        raise ValueError(f"no {role} image named '{stem}' in {folder}")
    if len(paths) > 1:
        raise ValueError(f"ambiguous {role} image '{stem}': " + ", ".join(p.name for p in paths))
    return paths[0]


@dataclass
class Pairing:
    """Files matched by stem across several folders, and what could not be matched."""

    pairs: list[tuple[str, tuple[Path, ...]]] = field(default_factory=list)
    unmatched: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)


def pair_by_stem(*folders: str | os.PathLike, names: tuple[str, ...] | None = None) -> Pairing:
    """Match files of the same stem in every folder; the others are reported with the reason.

    The reason is the folders they are missing from, or several files of one stem.
    """
    names = names or tuple(Path(f).name for f in folders)
    listings = [list_images(f) for f in folders]
    result = Pairing()
    for stem in sorted(set().union(*listings), key=natural_key):
        found = [listing.get(stem, []) for listing in listings]
        ambiguous = [paths for paths in found if len(paths) > 1]
        if ambiguous:
            for path in ambiguous[0]:
                result.unmatched.append((path, f"several files named '{stem}' in {path.parent}"))
        elif all(found):
            result.pairs.append((stem, tuple(paths[0] for paths in found)))
        else:
            missing = ", ".join(n for n, paths in zip(names, found) if not paths)
            for paths in found:
                if paths:
                    result.unmatched.append((paths[0], f"no partner in {missing}"))
    return result


def natural_key(stem: str) -> tuple:
    """Sort key putting '2' before '10' (digit runs compare as numbers)."""
    return tuple(
        (0, int(t), t) if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", stem) if t
    )


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
