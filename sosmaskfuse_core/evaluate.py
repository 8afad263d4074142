"""The `sosmaskfuse eval` sub-command: fusion metrics of fused-image folders against their sources.

    sosmaskfuse eval --ir DIR --vis DIR --fused DIR [--fused DIR ...] [--csv F] [--markdown F]
                     [--per-image]

Each ``--fused`` folder holds one method's results; its name is the method's name. Every fused
image is paired by file stem with the infrared and visible image of the same stem, and all
three are read as 8-bit gray. The table has one row per method (means over its images, with
``n`` images), and with ``--per-image`` also one row per image. Missing partners, size
mismatches and unreadable files are reported on stderr by name; that image is skipped and the
exit code is 1. Bad folders give exit code 2.
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from .image_files import list_images, single
from .metrics import METRIC_NAMES, compute_all

MEAN_LABEL = "mean"
EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Row:
    """A table row: a method's metrics on one image, or its mean (image MEAN_LABEL) over n images."""

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
        return image
    luma = cv2.cvtColor(image[:, :, :3].astype(np.float32), cv2.COLOR_BGR2GRAY)
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)


def evaluate_image(fused: Path, ir: Path, vis: Path) -> dict[str, float]:
    """All metrics of one fused image against its sources; ValueError on a size mismatch."""
    f, a, b = read_gray(fused), read_gray(ir), read_gray(vis)
    if not f.shape == a.shape == b.shape:
        raise ValueError(
            f"size mismatch: fused {f.shape[1]}x{f.shape[0]}, ir {a.shape[1]}x{a.shape[0]}, "
            f"vis {b.shape[1]}x{b.shape[0]} (width x height)")
    return compute_all(f, a, b)


def mean_row(method: str, rows: Sequence[Row]) -> Row:
    """The method's mean row over its per-image rows (NaN values when it has none)."""
    values = {name: float(np.mean([row.values[name] for row in rows])) if rows else float("nan")
              for name in METRIC_NAMES}
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


def method_names(folders: Sequence[Path]) -> list[str]:
    """Folder names as method names; the folders as given where two names coincide."""
    names = [folder.resolve().name for folder in folders]
    return [str(folder) if names.count(name) > 1 else name for folder, name in zip(folders, names)]


def run(args: argparse.Namespace) -> int:
    """Run `sosmaskfuse eval`; returns the exit code (0 ok, 1 images skipped, 2 bad folders)."""
    folders = [("--ir", args.ir), ("--vis", args.vis)] + [("--fused", f) for f in args.fused]
    missing = [f"{flag} {folder}" for flag, folder in folders if not folder.is_dir()]
    if missing:
        print("error: not a folder: " + ", ".join(missing), file=sys.stderr)
        return EXIT_USAGE
    ir_images, vis_images = list_images(args.ir), list_images(args.vis)
    fused_images = [list_images(folder) for folder in args.fused]
    total = sum(len(images) for images in fused_images)
    done = skipped = 0
    rows: list[Row] = []
    for method, folder, images in zip(method_names(args.fused), args.fused, fused_images):
        if not images:
            print(f"error: {method}: no images in {folder}", file=sys.stderr)
            skipped += 1
        image_rows = []
        for stem in images:
            done += 1
            print(f"[{done}/{total}] {method}/{stem}", file=sys.stderr, flush=True)
            try:
                values = evaluate_image(single(images, stem, "fused", folder),
                                        single(ir_images, stem, "infrared", args.ir),
                                        single(vis_images, stem, "visible", args.vis))
            except ValueError as error:
                print(f"error: {method}/{stem}: {error}; skipped", file=sys.stderr)
                skipped += 1
                continue
            image_rows.append(Row(method, stem, 1, values))
        rows.extend(image_rows if args.per_image else [])
        rows.append(mean_row(method, image_rows))

    table = format_markdown(rows, args.per_image)
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")
    if args.csv:
        write_csv(rows, args.csv, args.per_image)
    print(table, end="")
    if skipped:
        print(f"error: {skipped} image(s) or folder(s) skipped, see above", file=sys.stderr)
        return EXIT_SKIPPED
    return EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `eval` sub-command on ``subparsers`` (``func=run``); returns its parser."""
    parser = subparsers.add_parser(
        "eval", help="fusion-quality metrics of folders of fused images",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--ir", type=Path, required=True, metavar="DIR", help="infrared sources")
    parser.add_argument("--vis", type=Path, required=True, metavar="DIR", help="visible sources")
    parser.add_argument("--fused", type=Path, required=True, action="append", metavar="DIR",
                        help="fused images of one method (the folder name); repeat for several")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write the table as CSV")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the markdown table")
    parser.add_argument("--per-image", action="store_true", help="also one row per image")
    parser.set_defaults(func=run)
    return parser
