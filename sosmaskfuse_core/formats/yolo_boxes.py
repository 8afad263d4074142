"""Object boxes of YOLO txt label files (`class cx cy w h`, normalised) and their class names.

Pixel coordinates are computed as ../shared/tools/box_contrast.py (and most YOLO tools) do:
``x0 = int((cx - w / 2) * W)``, ``x1 = int((cx + w / 2) * W)`` (exclusive; Python's ``int``
truncates towards zero), the same for y; the `Box` keeps the last pixel (``x1 - 1``), as VOC
boxes do.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from sosmaskfuse_core.formats.voc_boxes import Box, BoxFileError

__all__ = ["read_class_names", "read_yolo"]


def read_class_names(path: str | Path) -> list[str]:
    """Class names, one a line (YOLO's classes.txt); an optional leading id is dropped.

    ``0 person`` and ``person`` both name class 0 (lines in id order; blank lines skipped).
    BoxFileError naming the file when it cannot be read or an id is out of order.
    """
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise BoxFileError(f"{path}: cannot read the class names ({exc})") from exc
    names: list[str] = []
    for line in filter(None, lines):
        head, _, rest = line.partition(" ")
        if head.isdigit() and rest.strip():
            if int(head) != len(names):
                raise BoxFileError(f"{path}: class id {head} where {len(names)} was expected")
            line = rest.strip()
        names.append(line)
    return names


def read_yolo(
    path: str | Path, width: int, height: int, names: Sequence[str] | None = None
) -> list[Box]:
    """The boxes of a YOLO label file on a ``width`` x ``height`` image.

    A box's label is ``names[class id]``, or the id as text without names. BoxFileError naming
    the file and line for a line that is not ``id cx cy w h`` (id a whole number, a class of
    ``names`` when given; the rest finite numbers, w and h not negative).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BoxFileError(f"{path}: cannot read the labels ({exc})") from exc
    boxes = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 5:
                raise ValueError(f"{len(fields)} fields")
            cls = float(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
            if cls != int(cls) or cls < 0:
                raise ValueError(f"class {fields[0]} is not a class id")
            if not all(math.isfinite(v) for v in (cx, cy, w, h)) or w < 0 or h < 0:
                raise ValueError("a coordinate is not finite or a size is negative")
            if names is not None and int(cls) >= len(names):
                raise ValueError(f"class {int(cls)} but only {len(names)} class names")
        except ValueError as exc:
            raise BoxFileError(
                f"{path}:{number}: not a YOLO box 'class cx cy w h' ({exc}): {line.strip()!r}"
            ) from exc
        label = names[int(cls)] if names is not None else str(int(cls))
        x0, x1 = int((cx - w / 2) * width), int((cx + w / 2) * width)
        y0, y1 = int((cy - h / 2) * height), int((cy + h / 2) * height)
        boxes.append(Box(label, x0, y0, x1 - 1, y1 - 1))
    return boxes
