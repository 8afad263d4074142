"""Fusion metrics of fused-image folders against their sources, as tables (markdown, CSV).

Every fused image is paired by file stem with the infrared and visible image of the same stem;
all three are read as 8-bit gray. The command line is `sosmaskfuse_core.commands.evaluate`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from sosmaskfuse_core.evaluation.metrics import METRIC_NAMES, compute_all

MEAN_LABEL = "mean"


@dataclass(frozen=True)
class Row:
    """Table row: a method's metrics on one image, or its mean (image MEAN_LABEL) over n images."""

    method: str
    image: str
    n: int
    values: dict[str, float]


def read_gray(path: Path) -> NDArray[np.uint8]:
    """An image file as 8-bit gray; colour is converted with ITU-R 601 luma.

    Y = round(0.299 R + 0.587 G + 0.114 B), computed in float32 (OpenCV ``COLOR_BGR2GRAY``)
    and rounded half to even, as the common evaluation code reads images; alpha is ignored
    and deeper images are reduced to 8 bits by OpenCV. ValueError if OpenCV cannot decode it.
    """
    image = cv2.imread(str(path), cv2.IMREAD_ANYCOLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    if image.ndim == 2:
        # OpenCV's stubs type any image as MatLike; without IMREAD_ANYDEPTH it is 8-bit
        return cast(NDArray[np.uint8], image)
    luma = cv2.cvtColor(image[:, :, :3].astype(np.float32), cv2.COLOR_BGR2GRAY)
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)


def evaluate_image(fused: Path, ir: Path, vis: Path) -> dict[str, float]:
    """All metrics of one fused image against its sources; ValueError on a size mismatch."""
    f, a, b = read_gray(fused), read_gray(ir), read_gray(vis)
    if not f.shape == a.shape == b.shape:
        raise ValueError(
            f"size mismatch: fused {f.shape[1]}x{f.shape[0]}, ir {a.shape[1]}x{a.shape[0]}, "
            f"vis {b.shape[1]}x{b.shape[0]} (width x height)"
        )
    return compute_all(f, a, b)


def mean_row(method: str, rows: Sequence[Row]) -> Row:
    """The method's mean row over its per-image rows (NaN values when it has none)."""
    values = {
        name: float(np.mean([row.values[name] for row in rows])) if rows else float("nan")
        for name in METRIC_NAMES
    }
    return Row(method, MEAN_LABEL, len(rows), values)


def table_columns(per_image: bool) -> list[str]:
    """Header of the CSV and markdown tables."""
    return ["method"] + (["image"] if per_image else []) + ["n"] + list(METRIC_NAMES)


def _cells(row: Row, per_image: bool, number: Callable[[float], str]) -> list[str]:
    cells = [row.method] + ([row.image] if per_image else []) + [str(row.n)]
    return cells + [number(row.values[name]) for name in METRIC_NAMES]


def format_markdown(rows: Sequence[Row], per_image: bool = False, digits: int = 4) -> str:
    """A GitHub markdown table of ``rows`` (metrics with ``digits`` decimals)."""
    header = table_columns(per_image)
    alignment = ["---"] * (len(header) - len(METRIC_NAMES)) + ["---:"] * len(METRIC_NAMES)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(alignment) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cells(row, per_image, lambda v: f"{v:.{digits}f}")) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Row], path: Path, per_image: bool = False) -> None:
    """``rows`` as CSV with full float precision."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(table_columns(per_image))
        for row in rows:
            writer.writerow(_cells(row, per_image, repr))
