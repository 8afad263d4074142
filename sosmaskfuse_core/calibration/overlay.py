"""Pictures a person judges a registration by: thermal edges on the visible image, a checkerboard.

Both take the thermal frame warped by the homography into the visible camera's grid. In the
edge overlay a good registration puts the red thermal edges on the visible image's own edges;
in the checkerboard blend, lines run on unbroken from a thermal tile into a visible one.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The widest overlay written (pixels); larger frames are shrunk.
MAX_WIDTH = 960


def registered(thermal: np.ndarray, h: np.ndarray, visible_wh: tuple[int, int]) -> np.ndarray:
    """The thermal image in the visible camera's grid (0 outside its footprint)."""
    return cv2.warpPerspective(thermal, h, tuple(visible_wh), flags=cv2.INTER_LINEAR)


def _edges(gray: np.ndarray) -> np.ndarray:
    """Canny edges with thresholds from the image's median (works for any gain)."""
    blurred = cv2.GaussianBlur(gray, (0, 0), 1.5)
    med = float(np.median(blurred))
    return cv2.Canny(blurred, max(5.0, 0.5 * med), max(15.0, 1.2 * med + 20))


def _shrink(image: np.ndarray) -> np.ndarray:
    w = image.shape[1]
    if w <= MAX_WIDTH:
        return image
    size = (MAX_WIDTH, round(image.shape[0] * MAX_WIDTH / w))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def edge_overlay(thermal: np.ndarray, visible: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The visible image (gray) with the registered thermal image's edges in red (BGR)."""
    size = (visible.shape[1], visible.shape[0])
    warped = registered(thermal, h, size)
    footprint = registered(np.full_like(thermal, 255), h, size) > 0
    edges = _edges(warped) > 0
    edges &= cv2.erode(footprint.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    edges = cv2.dilate(edges.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    out = cv2.cvtColor((visible * 0.8).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    out[~footprint] = out[~footprint] // 2  # what the thermal camera does not see is dimmed
    out[edges] = (0, 0, 255)
    return _shrink(out)


def checker_blend(
    thermal: np.ndarray, visible: np.ndarray, h: np.ndarray, tiles: int = 8
) -> np.ndarray:
    """Alternate tiles of the registered thermal image and the visible image (BGR).

    The thermal tiles are tinted orange so that a person can tell them apart.
    """
    size = (visible.shape[1], visible.shape[0])
    warped = registered(thermal, h, size)
    hh, ww = visible.shape[:2]
    ys, xs = np.mgrid[0:hh, 0:ww]
    side = max(ww, hh) / tiles
    thermal_tile = ((xs // side).astype(int) + (ys // side).astype(int)) % 2 == 0
    out = cv2.cvtColor(visible, cv2.COLOR_GRAY2BGR)
    tint = cv2.applyColorMap(warped, cv2.COLORMAP_INFERNO)
    out[thermal_tile] = tint[thermal_tile]
    return _shrink(out)
