"""Fuse every thermal/visible pair of two image folders through the node's per-pair stage.

Pairs are matched by file stem (`formats.image_files.pair_by_stem`). Images are read as OpenCV
reads them (BGR; gray files as three equal channels), as the reference does, so with the paper's
settings the output is the reference's. A pair that cannot be read or fused is recorded and
skipped; the others are still written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from sosmaskfuse_core.formats.image_files import ImageReadError, Pairing, read_image, write_image
from sosmaskfuse_core.pipeline.pair_stage import Frame, PairStage


@dataclass
class FolderReport:
    """What a folder job did: pairs written, and (file or stem, reason) for each one skipped."""

    total: int = 0
    fused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def fuse_pair(stage: PairStage, paths: tuple[Path, ...], out: Path, stem: str) -> None:
    """Read one pair (and its mask, when `paths` has three entries), fuse it and write the images.

    The two images must be of one size unless the stage registers them by a homography.

    Writes `out/mask/<stem>.png` and `out/fused/<stem>.png`. Raises ImageReadError, ValueError,
    OSError.
    """
    thermal = read_image(paths[0], cv2.IMREAD_COLOR)
    visible = read_image(paths[1], cv2.IMREAD_COLOR)
    mask = read_image(paths[2], cv2.IMREAD_GRAYSCALE) if len(paths) > 2 else None
    if thermal.shape[:2] != visible.shape[:2] and stage.preparer.homography is None:
        raise ValueError(
            f"thermal {paths[0].name} is {thermal.shape[1]}x{thermal.shape[0]}, "
            f"visible {paths[1].name} is {visible.shape[1]}x{visible.shape[0]}"
        )
    result = stage(
        Frame(thermal, "bgr8"),
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
) -> FolderReport:
    """Fuse every pair of `pairing`; `on_pair(stem, ok)` is called after each (progress)."""
    report = FolderReport(
        total=len(pairing.pairs), failed=[(str(p), reason) for p, reason in pairing.unmatched]
    )
    for stem, paths in pairing.pairs:
        try:
            fuse_pair(stage, paths, out, stem)
        except (ImageReadError, ValueError, OSError, RuntimeError) as exc:
            report.failed.append((stem, str(exc)))
            if on_pair:
                on_pair(stem, False)
            continue
        report.fused += 1
        if on_pair:
            on_pair(stem, True)
    return report
