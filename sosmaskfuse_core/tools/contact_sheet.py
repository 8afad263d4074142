"""A contact sheet: rows of thermal | visible | mask | fused tiles, as one BGR image.

The columns have titles.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from sosmaskfuse_core.thermal.agc import stretch_to_uint8

COLUMNS = ("thermal", "visible", "mask (sos_mask)", "fused")


def _tile(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """8-bit BGR tile of `size_wh` (16-bit images are min-max stretched for display)."""
    if image.dtype != np.uint8:
        image = stretch_to_uint8(image, float(image.min()), float(image.max()))
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    interp = cv2.INTER_AREA if image.shape[1] > size_wh[0] else cv2.INTER_NEAREST
    return cv2.resize(image, size_wh, interpolation=interp)


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str] = COLUMNS,
    tile_width: int = 320,
    gap: int = 4,
) -> np.ndarray:
    """Tile each row's images (any size, gray or BGR) at one tile size, titles on top."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    h0, w0 = rows[0][0].shape[:2]
    size = (tile_width, max(1, round(tile_width * h0 / w0)))
    header = 24
    cols = len(titles)
    sheet = np.full(
        (header + len(rows) * (size[1] + gap), cols * (size[0] + gap) - gap, 3), 255, np.uint8
    )
    for c, title in enumerate(titles):
        cv2.putText(
            sheet,
            title,
            (c * (size[0] + gap) + 6, 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.55,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    for r, row in enumerate(rows):
        y = header + r * (size[1] + gap)
        for c, image in enumerate(row):
            x = c * (size[0] + gap)
            sheet[y : y + size[1], x : x + size[0]] = _tile(image, size)
    return sheet
