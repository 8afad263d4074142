"""Object boxes of VOC XML annotation files (HIT-UAV's format): the Box record and its reader."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Box", "BoxFileError", "read_voc"]


class BoxFileError(ValueError):
    """An annotation file that cannot be read."""


@dataclass(frozen=True)
class Box:
    """An object box in pixel coordinates, inclusive (VOC style: x1, y1 are the last pixels)."""

    label: str
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Pixels across (x1 - x0 + 1)."""
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        """Pixels tall (y1 - y0 + 1): what the size classes (small < 32 px) go by."""
        return self.y1 - self.y0 + 1


def _coordinate(bndbox: ET.Element, tag: str) -> int:
    text = bndbox.findtext(tag)
    if text is None:
        raise ValueError(f"a bndbox has no <{tag}>")
    return int(round(float(text)))


def read_voc(path: str | Path) -> list[Box]:
    """The boxes of a VOC XML annotation file; BoxFileError naming the file if it is malformed."""
    try:
        root = ET.parse(path).getroot()
        boxes = []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            if bb is None:
                continue
            vals = [_coordinate(bb, k) for k in ("xmin", "ymin", "xmax", "ymax")]
            boxes.append(Box((obj.findtext("name") or "").strip(), *vals))
        return boxes
    except (ET.ParseError, OSError, TypeError, ValueError) as exc:
        raise BoxFileError(f"{path}: not a readable VOC annotation ({exc})") from exc
