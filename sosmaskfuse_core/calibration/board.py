"""Calibration boards: what a checkerboard or circle grid is, and finding it in either camera.

`BoardSpec` says the pattern (inner corners of a checkerboard, or circles of a symmetric grid)
and where its points lie on the board; `detect_board` finds them in an 8-bit gray image of
either polarity (a heated or sun-warmed board is bright in the thermal image where the print is
dark in the visible one), to sub-pixel precision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

BOARD_KINDS = ("checkerboard", "circles")


@dataclass(frozen=True)
class BoardSpec:
    """A planar calibration pattern.

    kind: `checkerboard` (cols x rows inner corners) or `circles` (a symmetric grid of
    cols x rows circles). square_mm: the pitch, for the report only (a homography needs no
    metric size). Board units: one pitch; the pattern starts `margin` units from the edge.
    """

    kind: str = "checkerboard"
    cols: int = 9
    rows: int = 6
    square_mm: float = 0.0
    margin: float = 1.0
    circle_radius: float = 0.3  # circles: radius in pitches

    def __post_init__(self) -> None:
        if self.kind not in BOARD_KINDS:
            raise ValueError(f"board {self.kind!r}: expected one of {', '.join(BOARD_KINDS)}")
        if self.cols < 2 or self.rows < 2 or self.cols * self.rows < 6:
            raise ValueError(f"pattern {self.cols}x{self.rows}: needs at least 3x2 points")
        if self.square_mm < 0:
            raise ValueError(f"square size {self.square_mm} mm: must be positive")

    @classmethod
    def parse(cls, kind: str, pattern: str, square_mm: float = 0.0) -> BoardSpec:
        """From command-line text: `checkerboard`, `9x6` (COLSxROWS), 25."""
        found = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", pattern)
        if not found:
            raise ValueError(f"pattern {pattern!r}: expected COLSxROWS, e.g. 9x6")
        return cls(kind, int(found.group(1)), int(found.group(2)), float(square_mm))

    @property
    def size(self) -> tuple[int, int]:
        """(cols, rows): OpenCV's pattern size."""
        return self.cols, self.rows

    @property
    def extent(self) -> tuple[float, float]:
        """The board's width and height in board units, margins included."""
        span = (
            (self.cols + 1, self.rows + 1)
            if self.kind == "checkerboard"
            else (
                self.cols - 1,
                self.rows - 1,
            )
        )
        return span[0] + 2 * self.margin, span[1] + 2 * self.margin

    def points(self) -> np.ndarray:
        """The pattern's points in board units, row by row (cols * rows x 2)."""
        first = self.margin + (1.0 if self.kind == "checkerboard" else 0.0)
        xs, ys = np.meshgrid(np.arange(self.cols), np.arange(self.rows))
        return np.c_[xs.ravel(), ys.ravel()].astype(np.float64) + first

    def __str__(self) -> str:
        pitch = f", {self.square_mm:g} mm" if self.square_mm else ""
        return f"{self.kind} {self.cols}x{self.rows}{pitch}"


@dataclass(frozen=True)
class Detection:
    """The board's points found in one image (cols * rows x 2, OpenCV's order) and how."""

    points: np.ndarray
    inverted: bool  # found in the inverted image (the print brighter than the board)


def stretch(gray: np.ndarray) -> np.ndarray:
    """8-bit gray stretched between its 0.5 and 99.5 percentiles (low-contrast thermal boards)."""
    lo, hi = np.percentile(gray, (0.5, 99.5))
    if hi - lo < 1:
        return gray
    out = (gray.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def _checkerboard_sb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """OpenCV's sector-based detector: sub-pixel, exact pattern size; needs a light border."""
    flags = cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_ACCURACY
    found, pts = cv2.findChessboardCornersSB(image, size, flags=flags)
    return pts.reshape(-1, 2).astype(np.float64) if found else None


def _checkerboard_classic(image: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """OpenCV's quad-based detector and cornerSubPix: takes boards darker than their border."""
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    found, pts = cv2.findChessboardCorners(image, size, flags=flags)
    if not found:
        return None
    # the window: a third of the smallest square, at least 2 px
    grid = pts.reshape(size[1], size[0], 2)
    pitch = min(
        np.linalg.norm(np.diff(grid, axis=1), axis=2).min(),
        np.linalg.norm(np.diff(grid, axis=0), axis=2).min(),
    )
    win = int(max(2, min(11, pitch / 3)))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 50, 0.01)
    refined = cv2.cornerSubPix(image, pts, (win, win), (-1, -1), criteria)
    return refined.reshape(-1, 2).astype(np.float64)


def _circles(image: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    # opencv-python's type stubs do not list the blob detector's classes
    params = cv2.SimpleBlobDetector_Params()  # type: ignore[attr-defined]
    params.filterByColor = True
    params.blobColor = 0  # dark circles: the caller inverts the image for bright ones
    params.minArea = 8
    params.maxArea = image.shape[0] * image.shape[1] / (size[0] * size[1])
    params.minDistBetweenBlobs = 3
    detector = cv2.SimpleBlobDetector_create(params)  # type: ignore[attr-defined]
    found, pts = cv2.findCirclesGrid(
        image, size, flags=cv2.CALIB_CB_SYMMETRIC_GRID, blobDetector=detector
    )
    return pts.reshape(-1, 2).astype(np.float64) if found else None


def _circles_smoothed(image: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """Circles in a noisy image: blurred first (sigma 1 px) so that blobs stay whole."""
    return _circles(cv2.GaussianBlur(image, (0, 0), 1.0), size)


def detect_board(gray: np.ndarray, spec: BoardSpec) -> Detection | None:
    """The board's points in an 8-bit gray image, whatever its polarity; None if not found.

    The image is contrast-stretched first. A checkerboard is looked for by OpenCV's sector-based
    detector, as it is and inverted (the inverse of a checkerboard is one too; the detector
    wants a border lighter than the squares), then by the quad-based one with cornerSubPix (a
    heated board's paper is often darker than the scene around it). Circles are looked for dark
    and then bright, in the image and then (noisy thermal images) in the image blurred.
    """
    if gray.ndim != 2:
        raise ValueError(f"detect_board takes one 8-bit channel, got shape {gray.shape}")
    image = stretch(gray)
    finders = (
        (_checkerboard_sb, _checkerboard_classic)
        if spec.kind == "checkerboard"
        else (_circles, _circles_smoothed)
    )
    for find in finders:
        for inverted in (False, True):
            pts = find(255 - image if inverted else image, spec.size)
            if pts is not None and np.isfinite(pts).all():
                return Detection(pts, inverted)
    return None


def orderings(spec: BoardSpec) -> list[np.ndarray]:
    """Index permutations that map the pattern onto itself without mirroring it.

    A detector may start from any corner that the pattern's symmetry allows: the grid turned
    by 180 degrees always, by 90 degrees too when it is square.
    """
    idx = np.arange(spec.cols * spec.rows).reshape(spec.rows, spec.cols)
    turns = [idx, idx[::-1, ::-1]]
    if spec.cols == spec.rows:
        turns += [np.rot90(idx, 1), np.rot90(idx, 3)]
    return [t.ravel() for t in turns]
