"""Thermal target contrast kept in labelled boxes, box by box (../shared/tools/box_contrast.py).

For each box (``x1``, ``y1`` exclusive below) at least 3 px wide and tall:

* target: the ellipse inscribed in the box, shrunk to 80 % (half-axes ``int(0.4 * size)``);
* ring: the box grown by ``g = max(4, int(0.3 * larger side))`` px, minus the box;
* IR contrast = mean IR in the target - mean IR in the ring; boxes with |IR contrast| < 5
  gray levels do not stand out in the thermal image and are not counted;
* TCR = (the same in the fused image) / IR contrast, clipped to [-3, 3]. A target is *kept*
  when TCR >= 0.5 and *inverted* when TCR < 0.

The numbers are those of the acceptance tool, operation for operation, on images read as it
reads them (`read_ir`, `read_fused`); test/test_box_contrast.py runs the tool and compares.
Where the tool counts a missing or mis-sized fused image as TCR 0, `evaluate_folder` reports it
instead and leaves its boxes out. Summaries go per class and per size (`box_sizes`): boxes,
kept and inverted shares, median TCR over all boxes of all images.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

from sosmaskfuse_core.evaluation.box_sizes import SIZE_CLASSES, size_class
from sosmaskfuse_core.formats.box_folder import BoxFolder
from sosmaskfuse_core.formats.image_files import list_images, single
from sosmaskfuse_core.formats.voc_boxes import Box, BoxFileError

__all__ = [
    "ALL",
    "BoxContrastConfig",
    "BoxTCR",
    "FolderResult",
    "Summary",
    "box_tcr",
    "evaluate_folder",
    "format_markdown",
    "image_tcrs",
    "read_fused",
    "read_ir",
    "summarise",
    "summary_rows",
    "target_and_ring",
    "write_box_csv",
]

ALL = "all"
IGNORED_LABELS = ("dontcare",)


@dataclass(frozen=True)
class BoxContrastConfig:
    """The measure's constants (the acceptance tool's values by default)."""

    min_contrast: float = 5.0  # |IR contrast| in gray levels for a box to count
    target_axes: float = 0.4  # half-axes of the target ellipse as a share of the box's sides
    ring_share: float = 0.3  # ring width as a share of the box's larger side ...
    ring_min: int = 4  # ... and at least this many pixels
    min_side: int = 3  # narrower or shorter boxes are skipped
    clip: float = 3.0  # TCR is clipped to [-clip, clip]
    keep: float = 0.5  # kept: TCR >= keep; inverted: TCR < 0


@dataclass(frozen=True)
class BoxTCR:
    """One counted box: where, its size class, the two contrasts and the (clipped) TCR."""

    stem: str
    box: Box
    size: str
    ir_contrast: float
    fused_contrast: float
    tcr: float

    @property
    def label(self) -> str:
        """The class name, lower case."""
        return self.box.label.strip().lower()


def read_ir(path: str | Path) -> np.ndarray:
    """An IR image as the tool reads it: OpenCV colour, then BGR -> gray (uint8); OSError."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def read_fused(path: str | Path) -> np.ndarray:
    """A fused image as the tool reads it: OpenCV's grayscale decoding (uint8); OSError."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return image


def target_and_ring(
    shape: tuple[int, int], box: Box, config: BoxContrastConfig = BoxContrastConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the box's target ellipse and of the ring around the box."""
    h, w = shape
    x0, y0, x1, y1 = box.x0, box.y0, box.x1 + 1, box.y1 + 1
    target = np.zeros((h, w), np.uint8)
    axes = (
        max(1, int(config.target_axes * (x1 - x0))),
        max(1, int(config.target_axes * (y1 - y0))),
    )
    cv2.ellipse(target, (int((x0 + x1) / 2), int((y0 + y1) / 2)), axes, 0, 0, 360, 1, -1)
    g = max(config.ring_min, int(config.ring_share * max(x1 - x0, y1 - y0)))
    ring = np.zeros((h, w), np.uint8)
    ring[max(0, y0 - g) : y1 + g, max(0, x0 - g) : x1 + g] = 1
    ring[max(0, y0) : y1, max(0, x0) : x1] = 0
    return target.astype(bool), ring.astype(bool)


def box_tcr(
    fused: np.ndarray,
    ir: np.ndarray,
    box: Box,
    stem: str = "",
    config: BoxContrastConfig = BoxContrastConfig(),
) -> BoxTCR | None:
    """The box's TCR, or None when it is too small, flat in the IR image or has no ring.

    ``fused`` and ``ir`` are gray images of one size (ValueError otherwise).
    """
    if fused.shape != ir.shape or ir.ndim != 2:
        raise ValueError(f"fused {fused.shape} and IR {ir.shape} are not gray images of one size")
    if box.width < config.min_side or box.height < config.min_side:
        return None
    target, ring = target_and_ring(ir.shape, box, config)
    if not target.any() or not ring.any():  # the box covers the image or lies outside it
        return None
    a, f = np.asarray(ir, float), np.asarray(fused, float)  # no copy when already float
    ir_contrast = a[target].mean() - a[ring].mean()
    if abs(ir_contrast) < config.min_contrast:
        return None
    fused_contrast = f[target].mean() - f[ring].mean()
    tcr = float(np.clip(fused_contrast / ir_contrast, -config.clip, config.clip))
    return BoxTCR(
        stem, box, size_class(box.height), float(ir_contrast), float(fused_contrast), tcr
    )


def image_tcrs(
    fused: np.ndarray,
    ir: np.ndarray,
    boxes: Iterable[Box],
    stem: str = "",
    classes: set[str] | None = None,
    config: BoxContrastConfig = BoxContrastConfig(),
) -> tuple[list[BoxTCR], int]:
    """The counted boxes of one image and how many were not (too small or flat in the IR image).

    Only boxes of ``classes`` (lower-case labels) count when it is given; DontCare never does.
    """
    counted, left_out = [], 0
    fused, ir = np.asarray(fused, float), np.asarray(ir, float)  # once for all boxes
    for box in boxes:
        label = box.label.strip().lower()
        if label in IGNORED_LABELS or (classes is not None and label not in classes):
            continue
        result = box_tcr(fused, ir, box, stem, config)
        if result is None:
            left_out += 1
        else:
            counted.append(result)
    return counted, left_out


@dataclass(frozen=True)
class Summary:
    """Boxes counted, the shares kept and inverted, the median TCR (NaN without boxes)."""

    boxes: int
    kept: float
    inverted: float
    median: float


def summarise(tcrs: Sequence[BoxTCR], config: BoxContrastConfig = BoxContrastConfig()) -> Summary:
    """The summary of ``tcrs`` (over all of them, not per image)."""
    if not tcrs:
        return Summary(0, float("nan"), float("nan"), float("nan"))
    v = np.array([t.tcr for t in tcrs])
    return Summary(
        len(v), float(np.mean(v >= config.keep)), float(np.mean(v < 0)), float(np.median(v))
    )


def summary_rows(
    tcrs: Sequence[BoxTCR], config: BoxContrastConfig = BoxContrastConfig()
) -> list[tuple[str, str, Summary]]:
    """(class, size, summary) rows: all boxes, each size, then each class and its sizes.

    Rows without boxes are left out (except the first).
    """
    classes = sorted({t.label for t in tcrs})
    rows = []
    for cls in [ALL] + classes:
        for size in (ALL,) + SIZE_CLASSES:
            subset = [t for t in tcrs if cls in (ALL, t.label) and size in (ALL, t.size)]
            if subset or (cls == ALL and size == ALL):
                rows.append((cls, size, summarise(subset, config)))
    return rows


@dataclass
class FolderResult:
    """One fused folder's counted boxes, the boxes not counted, and what went wrong, by name."""

    tcrs: list[BoxTCR] = field(default_factory=list)
    images: int = 0
    left_out: int = 0  # labelled boxes too small or flat in the IR image
    errors: list[str] = field(default_factory=list)
    no_image: list[str] = field(default_factory=list)  # label files without an IR image


def evaluate_folder(
    fused_dir: str | Path,
    ir_dir: str | Path,
    boxes: BoxFolder,
    classes: set[str] | None = None,
    config: BoxContrastConfig = BoxContrastConfig(),
) -> FolderResult:
    """The TCR of every labelled box of every image of ``fused_dir`` (paired with ``ir_dir``).

    Label files without an IR image are listed in ``no_image``; a labelled IR image without a
    fused image, an unreadable or malformed file or a size mismatch is an error (by name) and
    its boxes are left out.
    """
    ir_images, fused_images = list_images(ir_dir), list_images(fused_dir)
    result = FolderResult()
    for stem in boxes.stems():
        try:
            ir_path = single(ir_images, stem, "infrared", ir_dir)
        except ValueError:
            result.no_image.append(stem)
            continue
        try:
            ir = read_ir(ir_path)
            fused = read_fused(single(fused_images, stem, "fused", fused_dir))
            if fused.shape != ir.shape:
                raise ValueError(
                    f"size mismatch: fused {fused.shape[1]}x{fused.shape[0]}, "
                    f"ir {ir.shape[1]}x{ir.shape[0]}"
                )
            labelled = boxes.read(stem, ir.shape[1], ir.shape[0])
        except (OSError, ValueError, BoxFileError) as exc:
            result.errors.append(f"{stem}: {exc}")
            continue
        counted, left_out = image_tcrs(fused, ir, labelled, stem, classes, config)
        result.tcrs.extend(counted)
        result.left_out += left_out
        result.images += 1
    return result


def _share(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def format_markdown(
    results: Mapping[str, Sequence[BoxTCR]], config: BoxContrastConfig = BoxContrastConfig()
) -> str:
    """One markdown table: method, class, size, boxes, kept, inverted, median TCR."""
    lines = [
        "| method | class | size | boxes | kept | inverted | median TCR |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for method, tcrs in results.items():
        for cls, size, s in summary_rows(tcrs, config):
            lines.append(
                f"| {method} | {cls} | {size} | {s.boxes} | {_share(s.kept)} | "
                f"{_share(s.inverted)} | {_share(s.median)} |"
            )
    return "\n".join(lines) + "\n"


def write_box_csv(results: Mapping[str, Sequence[BoxTCR]], path: str | Path) -> None:
    """Every counted box as a CSV row: method, image, class, size, box, contrasts, TCR."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            [
                "method",
                "image",
                "class",
                "size",
                "x0",
                "y0",
                "x1",
                "y1",
                "ir_contrast",
                "fused_contrast",
                "tcr",
            ]  # fmt: skip
        )
        for method, tcrs in results.items():
            for t in tcrs:
                b = t.box
                writer.writerow(
                    [
                        method,
                        t.stem,
                        t.label,
                        t.size,
                        b.x0,
                        b.y0,
                        b.x1,
                        b.y1,
                        repr(t.ir_contrast),
                        repr(t.fused_contrast),
                        repr(t.tcr),
                    ]  # fmt: skip
                )
