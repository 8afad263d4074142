"""Camera frames to pipeline inputs: gain control, colour, registration and resizing, once each.

`FramePreparer` turns a decoded thermal and visible frame (in their own encodings) into the two
8-bit images the pipeline fuses, already at the processing size:

* thermal: raw counts (mono16, 16UC1, 32FC1) through the gain control (`ThermalAGC`, the one
  owner of 16 -> 8 bit); 8-bit gray as it is; colour kept as BGR (the reference normalises
  B, G and R separately for the SOS network);
* visible: 8-bit luma (PIL's formula, as the reference reads images) when colour output is off,
  so only one channel goes on; BGR when the fused image gets the visible chroma;
* geometry: the thermal image goes straight into the visible camera's pixel grid at the
  processing size (the homography composed with the scaling, or one resize), the visible
  image is resized once. Nothing is interpolated twice.

Shared by the ROS node, the bag tool and the folder job through `PairStage`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from sosmaskfuse_core.formats.image_codec import to_bgr, to_luma, to_uint8
from sosmaskfuse_core.thermal.agc import ThermalAGC

#: Encodings that hold raw thermal counts rather than display gray levels.
THERMAL_RAW = ("mono16", "16UC1", "32FC1")


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


def check_thermal_encoding(image: np.ndarray, encoding: str) -> None:
    """ValueError unless a thermal frame is raw counts (`THERMAL_RAW`) or 8-bit gray or colour.

    16-bit colour (rgb16, bgr16, ...) is no thermal camera's output: it is refused by name,
    before any gain control sees it.
    """
    if encoding not in THERMAL_RAW and image.dtype != np.uint8:
        raise ValueError(
            f"thermal image: unsupported encoding {encoding!r} ({image.dtype} with "
            f"{image.shape[2] if image.ndim == 3 else 1} channel(s)); a thermal camera gives "
            f"raw counts ({', '.join(THERMAL_RAW)}) or 8-bit images"
        )


def thermal_share_inside(
    homography: np.ndarray, thermal_wh: tuple[int, int], visible_wh: tuple[int, int]
) -> float:
    """The share (0..1) of the thermal frame's area that `homography` maps into the visible frame.

    0 when the map sends part of the frame through infinity (the frame is not seen as a
    quadrilateral at all).
    """
    tw, th = thermal_wh
    corners = np.array([[0, 0, 1], [tw, 0, 1], [tw, th, 1], [0, th, 1]], dtype=np.float64)
    mapped = corners @ homography.T
    if not (mapped[:, 2] > 0).all() and not (mapped[:, 2] < 0).all():
        return 0.0
    quad = (mapped[:, :2] / mapped[:, 2:]).astype(np.float32)
    area = abs(cv2.contourArea(quad))
    if not math.isfinite(area) or area <= 0:
        return 0.0
    if cv2.contourArea(quad, oriented=True) < 0:
        quad = quad[::-1].copy()  # intersectConvexConvex wants both in the same orientation
    vw, vh = visible_wh
    frame = np.array([[0, 0], [vw, 0], [vw, vh], [0, vh]], dtype=np.float32)
    inside, _ = cv2.intersectConvexConvex(quad, frame)
    return float(min(1.0, max(0.0, inside / area)))


#: Less than this share of the thermal frame on the visible one: the homography is refused.
MIN_THERMAL_SHARE = 0.5


def check_registration(
    homography: np.ndarray | None, thermal_wh: tuple[int, int], visible_wh: tuple[int, int]
) -> None:
    """ValueError when the homography maps the thermal frame off, or mostly off, the visible one.

    Less than `MIN_THERMAL_SHARE` of the thermal frame landing on the visible frame is a
    homography for other cameras, other resolutions or the inverse direction.
    """
    if homography is None:
        return
    share = thermal_share_inside(homography, thermal_wh, visible_wh)
    if share < MIN_THERMAL_SHARE:
        raise ValueError(
            f"homography maps {share:.0%} of the {thermal_wh[0]}x{thermal_wh[1]} thermal frame "
            f"onto the {visible_wh[0]}x{visible_wh[1]} visible frame (at least "
            f"{MIN_THERMAL_SHARE:.0%} must land on it): it must map thermal pixels to visible "
            "pixels at these cameras' resolutions"
        )


def aspect_text(size_wh: tuple[int, int]) -> str:
    """`4:3` for 640x480, `32:9` for 3840x1080."""
    w, h = size_wh
    g = math.gcd(w, h) or 1
    return f"{w // g}:{h // g}"


def aspect_mismatch(
    thermal_wh: tuple[int, int], visible_wh: tuple[int, int], tolerance: float = 0.1
) -> str | None:
    """What is wrong when a thermal frame of another shape is resized onto the visible one.

    Without a homography the thermal image is stretched to the visible size, which assumes
    both cameras see the same field of view; aspect ratios more than `tolerance` apart say
    they do not. None when they agree.
    """
    ratio = (thermal_wh[0] / thermal_wh[1]) / (visible_wh[0] / visible_wh[1])
    if abs(math.log(ratio)) <= math.log1p(tolerance):
        return None
    return (
        f"the {thermal_wh[0]}x{thermal_wh[1]} thermal frame ({aspect_text(thermal_wh)}) is "
        f"stretched onto the {visible_wh[0]}x{visible_wh[1]} visible frame "
        f"({aspect_text(visible_wh)}) without a homography: set homography to register the "
        "cameras"
    )


def pixel_scaling(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """The 3x3 map of pixel coordinates from a `src_wh` grid to a `dst_wh` grid of the same view.

    Pixel centres are aligned, as OpenCV's resize maps them.
    """
    sx, sy = dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def resize(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """`image` at `size_wh`: area averaging when it shrinks, bilinear when it grows.

    No copy if the size is already `size_wh`.
    """
    h, w = image.shape[:2]
    if (w, h) == tuple(size_wh):
        return image
    shrink = size_wh[0] * size_wh[1] < w * h
    return cv2.resize(
        image, tuple(size_wh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def register_thermal(
    thermal: np.ndarray,
    visible_wh: tuple[int, int],
    homography: np.ndarray | None,
    size_wh: tuple[int, int] | None = None,
) -> np.ndarray:
    """The thermal image in the visible camera's pixel grid, at `size_wh` (default: visible size).

    With a homography (thermal pixel -> visible pixel at the visible camera's own resolution) the
    thermal image is warped once, straight to the target grid (pixels it does not cover are 0);
    without one it is resized, which assumes both cameras see the same field of view.
    """
    target = size_wh or visible_wh
    if homography is None:
        return resize(thermal, target)
    if tuple(target) != tuple(visible_wh):
        homography = pixel_scaling(visible_wh, target) @ homography
    return cv2.warpPerspective(
        thermal,
        homography,
        target,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


@dataclass(frozen=True, eq=False)
class FramePreparer:
    """Decoded frames -> (thermal uint8, visible uint8 luma or BGR), both at the processing size.

    agc: gain control of raw thermal counts.
    homography: 3x3 thermal pixel -> visible pixel (None: resize the thermal image).
    size: (width, height) to prepare both images at; None keeps the visible size.
    gray_visible: give the visible image as one channel of 8-bit luma (colour output off).
    """

    agc: ThermalAGC = ThermalAGC()
    homography: np.ndarray | None = None
    size: tuple[int, int] | None = None
    gray_visible: bool = False

    def thermal(self, image: np.ndarray, encoding: str) -> np.ndarray:
        """8-bit thermal: raw counts through the gain control, 8-bit gray as is, colour as BGR."""
        if encoding in THERMAL_RAW:
            return self.agc.apply(image)
        check_thermal_encoding(image, encoding)
        if image.ndim == 3 and image.shape[2] > 1:
            return to_bgr(image, encoding)
        return image.reshape(image.shape[:2])

    def visible(self, image: np.ndarray, encoding: str) -> np.ndarray:
        """8-bit visible: luma when `gray_visible`, else BGR (gray stays gray).

        16-bit visible data (mono16, rgb16, demosaiced 16-bit bayer) is taken as full range.
        """
        if image.dtype == np.uint16:
            image = to_uint8(image)
        if image.dtype != np.uint8:
            raise ValueError(f"visible image: encoding {encoding} is not an 8-bit image")
        if image.ndim == 2 or image.shape[2] == 1:
            return image.reshape(image.shape[:2])
        return to_luma(image, encoding) if self.gray_visible else to_bgr(image, encoding)

    def prepare(
        self,
        thermal: np.ndarray,
        thermal_encoding: str,
        visible: np.ndarray,
        visible_encoding: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Both images in the visible camera's grid at the processing size."""
        visible_wh = (visible.shape[1], visible.shape[0])
        size_wh = self.size or visible_wh
        vis = resize(self.visible(visible, visible_encoding), size_wh)
        ir = register_thermal(
            self.thermal(thermal, thermal_encoding), visible_wh, self.homography, size_wh
        )
        return ir, vis

    def mask(self, mask: np.ndarray, visible_wh: tuple[int, int]) -> np.ndarray:
        """A mask given in the visible camera's grid, at the processing size.

        ValueError if the mask is not of the visible image's size.
        """
        if (mask.shape[1], mask.shape[0]) != tuple(visible_wh):
            raise ValueError(
                f"mask is {mask.shape[1]}x{mask.shape[0]}, visible is "
                f"{visible_wh[0]}x{visible_wh[1]}"
            )
        return resize(mask, self.size or visible_wh)
