"""The coarse global search: the shift, scale and rotation that best align thermal to visible.

At a coarse resolution, every (scale, rotation) of a grid is tried: the thermal frames are warped
by it, and the correlation of their edge orientation fields with the visible ones is computed at
every shift at once (FFT) and summed over the frames. The best peak is the start of the
refinement (`refine`); how much it stands out from the rest says whether the scene decides the
alignment at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .features import cross_power, orientation_field, padded_shape, peak, spectrum, surface
from .geometry import base_scale, normalised, resize_map, rig_homography, translation


@dataclass(frozen=True)
class SearchSpace:
    """The hypotheses of the coarse search.

    scale: (lowest, highest) scale relative to matching the image widths; step: between
    neighbouring scales (ratio); rotation_deg: the largest rotation either way, tried every
    rotation_step_deg; max_shift: the largest shift, as a fraction of the visible image's width.
    """

    scale: tuple[float, float] = (0.6, 1.7)
    scale_step: float = 1.05
    rotation_deg: float = 6.0
    rotation_step_deg: float = 2.0
    max_shift: float = 0.2

    def scales(self) -> np.ndarray:
        """The scales tried, geometrically spaced."""
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"scale range {self.scale}: expected 0 < low <= high")
        n = max(1, int(math.ceil(math.log(hi / lo) / math.log(self.scale_step))) + 1)
        return np.geomspace(lo, hi, n)

    def rotations(self) -> np.ndarray:
        """The rotations tried (degrees)."""
        n = int(math.floor(self.rotation_deg / self.rotation_step_deg + 1e-9))
        return np.arange(-n, n + 1) * self.rotation_step_deg


@dataclass(frozen=True)
class Hypothesis:
    """One (scale, rotation, shift) of the search, its homography and how well it scores.

    homography: thermal pixel -> visible pixel at full resolution; score: the mean over frames
    of the normalised orientation correlation; ratio: the peak over the best shift farther
    away (the same scale and rotation): near 1 the scene does not decide the shift.
    """

    scale: float
    rotation_deg: float
    shift: tuple[float, float]
    homography: np.ndarray
    score: float
    ratio: float


def coarse_search(
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    space: SearchSpace = SearchSpace(),
    work_width: int = 160,
) -> list[Hypothesis]:
    """The best hypothesis of each (scale, rotation), best first, over (thermal, visible) frames.

    The frames are 8-bit gray; every frame has the same thermal and the same visible size.
    """
    thermal = (frames[0][0].shape[1], frames[0][0].shape[0])
    visible = (frames[0][1].shape[1], frames[0][1].shape[0])
    k = work_width / visible[0]
    coarse = (work_width, max(8, round(visible[1] * k)))
    to_coarse = resize_map(visible, coarse)
    pad = int(math.ceil(space.max_shift * coarse[0]))
    shape = padded_shape((coarse[1], coarse[0]), pad)
    offset = translation(pad, pad)
    fixed = []
    for _, vis in frames:
        small = cv2.resize(vis, coarse, interpolation=cv2.INTER_AREA)
        field = np.zeros((shape[0], shape[1], 2), np.float32)
        field[pad : pad + coarse[1], pad : pad + coarse[0]] = orientation_field(small)
        fixed.append((spectrum(field, shape), float(np.linalg.norm(field))))
    # the thermal frames, shrunk once to about the coarse scale (no aliasing when warped)
    pre = min(1.0, base_scale(thermal, visible) * k * space.scale[0])
    pre_size = (max(8, round(thermal[0] * pre)), max(8, round(thermal[1] * pre)))
    small_ir = [cv2.resize(ir, pre_size, interpolation=cv2.INTER_AREA) for ir, _ in frames]
    to_pre = resize_map(thermal, pre_size)
    ones = np.ones((pre_size[1], pre_size[0]), np.uint8)
    limit = (pad, pad)
    out = []
    for scale in space.scales():
        for rotation in space.rotations():
            start = rig_homography(thermal, visible, scale=scale, rotation_deg=rotation)
            warp = offset @ to_coarse @ start @ np.linalg.inv(to_pre)
            power = np.zeros((shape[0], shape[1], 2), np.float32)
            for ir, (spec_v, norm_v) in zip(small_ir, fixed):
                size = (shape[1], shape[0])
                moved = cv2.warpPerspective(ir, warp, size, flags=cv2.INTER_LINEAR)
                valid = cv2.warpPerspective(ones, warp, size, flags=cv2.INTER_NEAREST)
                field = orientation_field(moved, valid)
                norm = float(np.linalg.norm(field)) * norm_v
                if norm > 0:
                    power += cross_power(spec_v, spectrum(field, shape)) * (1.0 / norm)
            best = peak(surface(power) / len(frames), limit)
            h = normalised(np.linalg.inv(to_coarse) @ translation(*best.shift) @ to_coarse @ start)
            shift = (best.shift[0] / to_coarse[0, 0], best.shift[1] / to_coarse[1, 1])
            out.append(Hypothesis(float(scale), float(rotation), shift, h, best.value, best.ratio))
    out.sort(key=lambda hyp: -hyp.score)
    return out
