"""Homography arithmetic of a thermal + visible rig: building, composing, measuring, describing.

Every homography here maps thermal pixels to visible pixels (the node's `homography`), in pixel
coordinates whose integer values are pixel centres (OpenCV's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

Size = tuple[int, int]  # (width, height)


def centre(size: Size) -> tuple[float, float]:
    """The centre of a `size` image in pixel coordinates."""
    return (size[0] - 1) / 2.0, (size[1] - 1) / 2.0


def translation(dx: float, dy: float) -> np.ndarray:
    """The 3x3 translation by (dx, dy)."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def similarity(scale: float, rotation_deg: float) -> np.ndarray:
    """Scale and rotation (counter-clockwise on screen is negative: y points down) about 0."""
    a = math.radians(rotation_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def base_scale(thermal: Size, visible: Size) -> float:
    """The scale that makes the thermal image as wide as the visible one (square pixels)."""
    return visible[0] / thermal[0]


def rig_homography(
    thermal: Size,
    visible: Size,
    *,
    shift: tuple[float, float] = (0.0, 0.0),
    scale: float = 1.0,
    rotation_deg: float = 0.0,
    perspective: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Thermal -> visible homography: centres matched, widths matched, then the given changes.

    `scale` is relative to the width-matching scale, `shift` is in visible pixels, `perspective`
    is the projective row (px, py) in coordinates where the thermal half-width is 1 (0.05 makes
    one side about 10% taller than the other).
    """
    ct = centre(thermal)
    cv = centre(visible)
    half = thermal[0] / 2.0
    norm = np.diag([1.0 / half, 1.0 / half, 1.0]) @ translation(-ct[0], -ct[1])
    persp = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [perspective[0], perspective[1], 1.0]])
    s = scale * base_scale(thermal, visible) * half
    h = (
        translation(cv[0] + shift[0], cv[1] + shift[1])
        @ similarity(s, rotation_deg)
        @ persp
        @ norm
    )
    return normalised(h)


def normalised(h: np.ndarray) -> np.ndarray:
    """`h` scaled so that h[2, 2] == 1."""
    return np.asarray(h, dtype=np.float64) / h[2, 2]


def cross2(a: np.ndarray, b: np.ndarray) -> float:
    """The z component of the cross product of two 2-D vectors (twice a triangle's area)."""
    return float(a[0] * b[1] - a[1] * b[0])


def apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N x 2) through the homography `h`."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = np.c_[pts, np.ones(len(pts))] @ np.asarray(h, dtype=np.float64).T
    return p[:, :2] / p[:, 2:3]


def corners(size: Size) -> np.ndarray:
    """The four corner pixels of a `size` image (4 x 2)."""
    w, h = size[0] - 1.0, size[1] - 1.0
    return np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])


def point_error(estimate: np.ndarray, truth: np.ndarray, points: np.ndarray) -> np.ndarray:
    """How far `estimate` puts thermal `points` from where `truth` puts them, in thermal pixels.

    Each point goes to the visible image by `truth` and back by `estimate`'s inverse, so the
    figure does not depend on the visible camera's resolution.
    """
    back = apply(np.linalg.inv(estimate) @ truth, points)
    return np.linalg.norm(back - np.asarray(points, dtype=np.float64), axis=1)


def corner_error(estimate: np.ndarray, truth: np.ndarray, thermal: Size) -> np.ndarray:
    """`point_error` at the four corners of the thermal image (4 values, thermal pixels)."""
    return point_error(estimate, truth, corners(thermal))


def overlap_corners(h: np.ndarray, thermal: Size, visible: Size) -> np.ndarray:
    """The corners of what both cameras see, in thermal pixels (the fused image's extent).

    The intersection of the visible image and the thermal image's footprint under `h`; empty
    (0 x 2) when they do not overlap.
    """
    footprint = apply(h, corners(thermal)).astype(np.float32)
    frame = corners(visible).astype(np.float32)
    if cross2(footprint[1] - footprint[0], footprint[2] - footprint[1]) < 0:
        footprint = footprint[::-1].copy()  # intersectConvexConvex wants one orientation
    area, polygon = cv2.intersectConvexConvex(frame, footprint)
    if area <= 0 or polygon is None:
        return np.zeros((0, 2))
    return apply(np.linalg.inv(h), polygon.reshape(-1, 2))


def overlap_error(
    estimate: np.ndarray, truth: np.ndarray, thermal: Size, visible: Size
) -> np.ndarray:
    """`point_error` at the corners of the overlap (`overlap_corners` of `truth`)."""
    return point_error(estimate, truth, overlap_corners(truth, thermal, visible))


def grid_error(
    estimate: np.ndarray, truth: np.ndarray, region: np.ndarray, step: int = 8
) -> np.ndarray:
    """Visible-pixel distances between `estimate` and `truth` over a grid of thermal points.

    `region`: (x0, y0, x1, y1) in thermal pixels, e.g. a board's extent.
    """
    x0, y0, x1, y1 = region
    xs, ys = np.meshgrid(np.linspace(x0, x1, step), np.linspace(y0, y1, step))
    pts = np.c_[xs.ravel(), ys.ravel()]
    return np.linalg.norm(apply(estimate, pts) - apply(truth, pts), axis=1)


@dataclass(frozen=True)
class Pose:
    """A homography read as a person thinks of it: shift, scale, rotation, perspective."""

    shift: tuple[float, float]  # visible pixels, of the thermal centre from the visible centre
    scale: float  # relative to matching the widths
    rotation_deg: float
    perspective: tuple[float, float]

    def __str__(self) -> str:
        return (
            f"shift ({self.shift[0]:+.1f}, {self.shift[1]:+.1f}) px, scale {self.scale:.3f}, "
            f"rotation {self.rotation_deg:+.2f} deg, "
            f"perspective ({self.perspective[0]:+.3f}, {self.perspective[1]:+.3f})"
        )


def describe(h: np.ndarray, thermal: Size, visible: Size) -> Pose:
    """The shift, scale, rotation and perspective of `h` (the inverse of `rig_homography`)."""
    ct, cv = centre(thermal), centre(visible)
    half = thermal[0] / 2.0
    norm = np.diag([1.0 / half, 1.0 / half, 1.0]) @ translation(-ct[0], -ct[1])
    m = normalised(np.asarray(h, dtype=np.float64) @ np.linalg.inv(norm))
    # m = T(c + shift) @ S(s, a) @ P: its last row is P's, its upper-left block S's
    persp = (float(m[2, 0]), float(m[2, 1]))
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [persp[0], persp[1], 1.0]])
    a = m @ np.linalg.inv(p)
    linear = a[:2, :2]
    scale = math.sqrt(abs(np.linalg.det(linear))) / (base_scale(thermal, visible) * half)
    rotation = math.degrees(math.atan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1]))
    shift = (float(a[0, 2] - cv[0]), float(a[1, 2] - cv[1]))
    return Pose(shift, float(scale), float(rotation), persp)


def resize_map(src: Size, dst: Size) -> np.ndarray:
    """Pixel coordinates of a `src`-sized image -> those of the same view resized to `dst`.

    Pixel centres are aligned, as OpenCV's resize maps them.
    """
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def rescaled(h: np.ndarray, thermal: tuple[Size, Size], visible: tuple[Size, Size]) -> np.ndarray:
    """`h` for resized images: `thermal` and `visible` are each (old size, new size)."""
    return normalised(resize_map(*visible) @ h @ np.linalg.inv(resize_map(*thermal)))
