"""Fuse every thermal/visible pair of two image folders through the node's per-pair stage.

Pairs are matched by file stem (`formats.image_files.pair_by_stem`). 8-bit images are read as
OpenCV reads them (BGR; gray files as three equal channels), as the reference does, so with the
paper's settings the output is the reference's. A 16-bit single-channel thermal file holds raw
counts: it goes to the stage as mono16, through the thermal gain control as a mono16 message
does (not cut to its top 8 bits). Every file is read under the pixel cap
(`formats.image_files.read_image`). A pair that cannot be read or fused (a hostile file, too
little memory) is recorded with the reason and skipped; the others are still written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sosmaskfuse_core.formats.image_files import Pairing, read_image, write_image
from sosmaskfuse_core.formats.pixels import DEFAULT_MAX_PIXELS
from sosmaskfuse_core.pipeline.pair_stage import Frame, PairStage

#: How thermal files are read: 16-bit data kept, gray kept gray, EXIF orientation applied (as
#: cv2.IMREAD_COLOR does), alpha dropped.
THERMAL_READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


@dataclass
class FolderReport:
    """What a folder job did: pairs written, and (file or stem, reason) for each one skipped."""

    total: int = 0
    fused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def thermal_frame(image: np.ndarray, name: str) -> Frame:
    """A thermal file's pixels (read with THERMAL_READ_FLAGS) as the frame the stage takes.

    16-bit or float single-channel data: raw counts (mono16, 32FC1), for the gain control.
    Anything else as cv2.IMREAD_COLOR gives it (BGR, 16-bit colour cut to its top 8 bits).
    """
    if image.ndim == 2 and image.dtype == np.uint16:
        return Frame(image, "mono16")
    if image.ndim == 2 and image.dtype == np.float32:
        return Frame(image, "32FC1")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: {image.dtype} colour pixels (8 or 16 bit expected)")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return Frame(image, "bgr8")


def fuse_pair(
    stage: PairStage,
    paths: tuple[Path, ...],
    out: Path,
    stem: str,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> None:
    """Read one pair (and its mask, when `paths` has three entries), fuse it and write the images.

    The two images must be of one size unless the stage registers them by a homography.

    Writes `out/mask/<stem>.png` and `out/fused/<stem>.png`. Raises ImageReadError, ValueError,
    OSError.
    """
    thermal = read_image(paths[0], THERMAL_READ_FLAGS, max_pixels=max_pixels)
    visible = read_image(paths[1], cv2.IMREAD_COLOR, max_pixels=max_pixels)
    mask = (
        read_image(paths[2], cv2.IMREAD_GRAYSCALE, max_pixels=max_pixels)
        if len(paths) > 2
        else None
    )
    if thermal.shape[:2] != visible.shape[:2] and stage.preparer.homography is None:
        raise ValueError(
            f"thermal {paths[0].name} is {thermal.shape[1]}x{thermal.shape[0]}, "
            f"visible {paths[1].name} is {visible.shape[1]}x{visible.shape[0]}"
        )
    result = stage(
        thermal_frame(thermal, paths[0].name),
        Frame(visible, "bgr8"),
        None if mask is None else Frame(mask, "mono8"),
    )
    if result.mask is not None:
        write_image(out / "mask" / f"{stem}.png", result.mask)
    write_image(out / "fused" / f"{stem}.png", result.fused)


def fuse_folder(
    pairing: Pairing,
    stage: PairStage,
    out: Path,
    on_pair: Callable[[str, bool], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> FolderReport:
    """Fuse every pair of `pairing`; `on_pair(stem, ok)` is called after each (progress).

    A pair that fails (ImageReadError and other ValueErrors, OSError, RuntimeError, OpenCV's
    errors, MemoryError) is recorded in `failed` with the reason and the run goes on.
    """
    report = FolderReport(
        total=len(pairing.pairs), failed=[(str(p), reason) for p, reason in pairing.unmatched]
    )
    for stem, paths in pairing.pairs:
        try:
            fuse_pair(stage, paths, out, stem, max_pixels)
        except (ValueError, OSError, RuntimeError, cv2.error, MemoryError) as exc:
            reason = "not enough memory for this pair" if isinstance(exc, MemoryError) else exc
            report.failed.append((stem, str(reason)))
            ok = False
        else:
            report.fused += 1
            ok = True
        if on_pair:
            on_pair(stem, ok)
    return report
