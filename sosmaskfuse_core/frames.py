"""Camera frames to pipeline inputs: thermal gain control and thermal-to-visible registration.

Shared by the ROS node and the offline bag tool, so a recording processed offline gives the
frames the live node would have published.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .image_codec import to_bgr, to_gray
from .thermal_agc import ThermalAGC

_THERMAL_RAW = ("mono16", "16UC1", "32FC1")


def parse_homography(values: Sequence[float] | np.ndarray | None) -> np.ndarray | None:
    """A 3x3 thermal-pixel -> visible-pixel homography from 9 row-major numbers; empty -> None.

    Raises ValueError for a wrong count, non-finite entries or a singular matrix.
    """
    if values is None or len(values) == 0:
        return None
    h = np.asarray(values, dtype=np.float64)
    if h.size != 9:
        raise ValueError(f"homography needs 9 numbers (3x3, row-major), got {h.size}")
    h = h.reshape(3, 3)
    if not np.isfinite(h).all():
        raise ValueError("homography has non-finite entries")
    if abs(np.linalg.det(h)) < 1e-12:
        raise ValueError("homography is singular (determinant 0)")
    return h


def register_thermal(thermal: np.ndarray, visible_shape: tuple[int, int],
                     homography: np.ndarray | None) -> np.ndarray:
    """The thermal image in the visible camera's pixel grid (height, width = visible_shape).

    With a homography the thermal image is warped into the visible frame (pixels it does not
    cover are 0); without one it is resized to the visible size when the sizes differ, which
    assumes both cameras see the same field of view.
    """
    h, w = visible_shape
    if homography is not None:
        return cv2.warpPerspective(thermal, homography, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if thermal.shape[:2] != (h, w):
        shrink = thermal.shape[0] > h
        return cv2.resize(thermal, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return thermal


@dataclass(frozen=True, eq=False)
class FramePreparer:
    """Decoded message arrays (in their own encodings) -> (thermal uint8, visible uint8 BGR or gray)."""

    agc: ThermalAGC = ThermalAGC()
    homography: np.ndarray | None = None

    def thermal(self, image: np.ndarray, encoding: str) -> np.ndarray:
        """8-bit thermal: raw counts (mono16, 16UC1, 32FC1) through the gain control, colour to gray."""
        if encoding in _THERMAL_RAW:
            return self.agc.apply(image)
        if image.ndim == 3:
            return to_gray(image, encoding)
        return image

    @staticmethod
    def visible(image: np.ndarray, encoding: str) -> np.ndarray:
        """8-bit visible: gray stays gray, colour becomes BGR (OpenCV order)."""
        if image.ndim == 2:
            if image.dtype != np.uint8:
                raise ValueError(f"visible image: encoding {encoding} is not an 8-bit image")
            return image
        return to_bgr(image, encoding)

    def prepare(self, thermal: np.ndarray, thermal_encoding: str, visible: np.ndarray,
                visible_encoding: str) -> tuple[np.ndarray, np.ndarray]:
        vis = self.visible(visible, visible_encoding)
        ir = register_thermal(self.thermal(thermal, thermal_encoding), vis.shape[:2], self.homography)
        return ir, vis
