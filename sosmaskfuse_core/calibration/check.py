"""The live alignment check: how far the registered thermal frame sits from the visible one.

`AlignmentCheck.measure(thermal_u8, visible_u8)` takes the thermal frame already warped into
the visible camera's grid and the visible frame (8-bit gray, one size), shrinks both to a coarse
grid, and finds the shift that best aligns their edge orientation fields (one FFT correlation):
a few milliseconds at 640x480, cheap enough for every Nth pair of a running node. The calibration
uses the same measure to see whether each frame agrees with the homography it found.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .features import correlate, edge_fraction, orientation_field, padded_shape, peak, spectrum


@dataclass(frozen=True)
class AlignmentReading:
    """One measurement.

    shift_xy: where the thermal content sits relative to the visible content, in pixels of the
    given images ((+15, 0): the thermal image shows things 15 px to the right of where the visible
    one does); score: the edge orientation correlation at that shift (about 0: unrelated, 1:
    identical edges); ratio: the peak over the best value away from it; informative: both
    images have enough edges and the peak stands out, so the shift means something.
    """

    shift_xy: tuple[float, float]
    score: float
    ratio: float
    informative: bool

    @property
    def error_px(self) -> float:
        """The length of the shift."""
        return float(np.hypot(*self.shift_xy))


@dataclass(frozen=True)
class AlignmentCheck:
    """A reusable check: grid width, the largest shift it looks for, what counts as informative.

    grid_width: the coarse grid's width (pixels); max_shift: the largest shift measured, as a
    fraction of the image width; min_edges: the share of edge pixels each image needs;
    min_ratio: how much the peak must stand out; min_score: the least correlation at the peak.
    """

    grid_width: int = 192
    max_shift: float = 0.12
    min_edges: float = 0.02
    min_ratio: float = 1.05
    min_score: float = 0.1

    def measure(
        self,
        thermal_u8: np.ndarray,
        visible_u8: np.ndarray,
        valid: np.ndarray | None = None,
    ) -> AlignmentReading:
        """Measure the residual shift of a registered pair (8-bit gray, same size).

        `valid` (optional, same size, nonzero where the thermal frame has data): the footprint
        of the warp, so that its border does not count as an edge.
        """
        if thermal_u8.shape[:2] != visible_u8.shape[:2]:
            raise ValueError(
                f"thermal {thermal_u8.shape[1]}x{thermal_u8.shape[0]} and visible "
                f"{visible_u8.shape[1]}x{visible_u8.shape[0]}: the check needs one size"
            )
        h, w = visible_u8.shape[:2]
        gw = min(self.grid_width, w)
        size = (gw, max(8, round(h * gw / w)))
        small_t = cv2.resize(thermal_u8, size, interpolation=cv2.INTER_AREA)
        small_v = cv2.resize(visible_u8, size, interpolation=cv2.INTER_AREA)
        small_valid = (
            None
            if valid is None
            else cv2.resize(
                (np.asarray(valid) > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
            )
        )
        ft = orientation_field(small_t, small_valid)
        fv = orientation_field(small_v, small_valid)
        pad = max(2, int(round(self.max_shift * gw)))
        shape = padded_shape((size[1], size[0]), pad)
        norm = float(np.linalg.norm(ft) * np.linalg.norm(fv))
        edges = min(edge_fraction(ft), edge_fraction(fv))
        if norm == 0:
            return AlignmentReading((0.0, 0.0), 0.0, 0.0, False)
        surface = correlate(spectrum(fv, shape), spectrum(ft, shape)) / norm
        best = peak(surface, (pad, pad), exclusion=max(3, round(0.025 * gw)))
        fx, fy = w / size[0], h / size[1]
        # the peak t has thermal(x - t) ~ visible(x): the thermal content sits at -t
        shift = (-best.shift[0] * fx, -best.shift[1] * fy)
        informative = (
            edges >= self.min_edges
            and best.ratio >= self.min_ratio
            and best.value >= self.min_score
            and max(abs(best.shift[0]), abs(best.shift[1])) < pad  # not at the search's edge
        )
        return AlignmentReading(shift, best.value, best.ratio, bool(informative))
