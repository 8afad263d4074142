"""The fine step: the full 8-dof homography that best aligns many frames at once (ECC on edges).

`refine` maximises the enhanced correlation coefficient (Evangelidis & Psarakis, 2008: the
criterion of OpenCV's findTransformECC) between the visible frames' edge orientation fields and
the warped thermal frames' ones, jointly over all frames (one homography, every frame's pixels in
one criterion), coarse to fine. The thermal frames are warped and their fields recomputed at
every step, so the fields always describe the warped image (no rotated-gradient error).
OpenCV's ECC takes one single-channel pair, hence this implementation of the same update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .features import orientation_field, valid_interior
from .geometry import Size, apply, corners, normalised, resize_map


@dataclass(frozen=True)
class Refined:
    """The refined homography (thermal pixel -> visible pixel, full resolution) and its fit.

    score: the correlation over all frames at the finest level; frame_scores: each frame's;
    iterations: steps taken per level; converged: the last level's step fell below tolerance.
    """

    homography: np.ndarray
    score: float
    frame_scores: tuple[float, ...]
    iterations: tuple[int, ...]
    converged: bool


class RefineError(RuntimeError):
    """The criterion cannot improve: the frames do not overlap or do not correlate."""


class _Level:
    """The frames at one working resolution: visible fields fixed, thermal frames pre-shrunk."""

    def __init__(
        self, frames: Sequence[tuple[np.ndarray, np.ndarray]], width: int, magnification: float
    ) -> None:
        thermal = (frames[0][0].shape[1], frames[0][0].shape[0])
        visible = (frames[0][1].shape[1], frames[0][1].shape[0])
        self.size: Size = (width, max(8, round(visible[1] * width / visible[0])))
        self.to_level = resize_map(visible, self.size)
        # thermal shrunk once to about this level's scale, so that warping it does not alias
        pre = min(1.0, magnification * width / visible[0])
        self.pre_size: Size = (max(8, round(thermal[0] * pre)), max(8, round(thermal[1] * pre)))
        self.to_pre = resize_map(thermal, self.pre_size)
        self.thermal = [
            cv2.resize(ir, self.pre_size, interpolation=cv2.INTER_AREA) for ir, _ in frames
        ]
        self.visible = [
            orientation_field(cv2.resize(vis, self.size, interpolation=cv2.INTER_AREA))
            for _, vis in frames
        ]
        w, h = self.size
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self.half = w / 2.0
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        u, v = (xs - cx) / self.half, (ys - cy) / self.half
        # normalised coordinates: the increment's Jacobian is half * [u v 1 0 0 0 -u^2 -uv]
        # (x) and half * [0 0 0 u v 1 -uv -v^2] (y)
        self.u, self.v = u, v
        self.norm = np.array(
            [[1 / self.half, 0, -cx / self.half], [0, 1 / self.half, -cy / self.half], [0, 0, 1]]
        )
        self.ones = np.ones(self.pre_size[::-1], np.uint8)

    def warped_fields(self, h_level: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(field, valid) of each thermal frame warped into this level's visible grid."""
        warp = h_level @ np.linalg.inv(self.to_pre)
        out = []
        for ir in self.thermal:
            moved = cv2.warpPerspective(ir, warp, self.size, flags=cv2.INTER_LINEAR)
            valid = cv2.warpPerspective(self.ones, warp, self.size, flags=cv2.INTER_NEAREST)
            out.append((orientation_field(moved, valid), valid_interior(valid) > 0))
        return out

    def sums(self, h_level: np.ndarray, stride: int) -> _Sums:
        """The ECC sums of all frames warped by `h_level` (thermal -> this level's grid)."""
        sums = _Sums()
        sub = (slice(None, None, stride), slice(None, None, stride))
        u, v = self.u[sub][..., None], self.v[sub][..., None]
        for (ft, valid), fv in zip(self.warped_fields(h_level), self.visible):
            m = valid[sub].astype(np.float32)
            count = 2 * int(m.sum())
            if count == 0:
                sums.frames.append(0.0)
                continue
            m = m[..., None]
            gx = cv2.Sobel(ft, cv2.CV_32F, 1, 0, ksize=1)[sub] * (0.5 * self.half) * m
            gy = cv2.Sobel(ft, cv2.CV_32F, 0, 1, ksize=1)[sub] * (0.5 * self.half) * m
            radial = gx * u + gy * v
            g = np.stack(
                [gx * u, gx * v, gx, gy * u, gy * v, gy, -u * radial, -v * radial], axis=-1
            ).reshape(-1, 8)
            sums.add((fv[sub] * m).ravel(), (ft[sub] * m).ravel(), g, count)
        return sums

    def increment(self, p: np.ndarray) -> np.ndarray:
        """The pixel-coordinate homography of the increment p (8 numbers, normalised frame)."""
        d = np.array([[1 + p[0], p[1], p[2]], [p[3], 1 + p[4], p[5]], [p[6], p[7], 1.0]])
        return np.linalg.inv(self.norm) @ d @ self.norm


def local_scale(h: np.ndarray, thermal: Size) -> float:
    """How much `h` magnifies at the thermal image's centre (square root of the area ratio)."""
    cx, cy = (thermal[0] - 1) / 2.0, (thermal[1] - 1) / 2.0
    p = apply(h, np.array([[cx, cy], [cx + 1, cy], [cx, cy + 1]]))
    return float(np.sqrt(abs(np.cross(p[1] - p[0], p[2] - p[0]))))


class _Sums:
    """What one ECC step needs, summed frame by frame (no big matrix is ever built).

    Over all valid pixels and both channels: the counts, sums and dot products of the visible
    field t and the warped thermal field i; over pixels with a gradient: G^T G, G^T t, G^T i
    and G^T 1, where G is the Jacobian of i with respect to the 8 parameters.
    """

    def __init__(self) -> None:
        self.n = 0
        self.st = self.si = self.tt = self.ii = self.ti = 0.0
        self.hess = np.zeros((8, 8))
        self.gt = np.zeros(8)
        self.gi = np.zeros(8)
        self.g1 = np.zeros(8)
        self.frames: list[float] = []  # each frame's correlation

    def add(self, t: np.ndarray, i: np.ndarray, g: np.ndarray, count: int) -> None:
        """One frame: t and i (flat, 0 outside its valid pixels), g (len(t) x 8), `count` valid."""
        t64, i64 = t.astype(np.float64), i.astype(np.float64)
        st, si = float(t64.sum()), float(i64.sum())
        tt, ii, ti = float(t64 @ t64), float(i64 @ i64), float(t64 @ i64)
        self.n += count
        self.st += st
        self.si += si
        self.tt += tt
        self.ii += ii
        self.ti += ti
        var_t, var_i = tt - st * st / count, ii - si * si / count
        cov = ti - st * si / count
        self.frames.append(cov / np.sqrt(var_t * var_i) if var_t > 0 and var_i > 0 else 0.0)
        self.hess += g.T @ g
        self.gt += g.T @ t
        self.gi += g.T @ i
        self.g1 += g.sum(axis=0, dtype=np.float64)

    def score(self) -> float:
        """The correlation of all frames together."""
        if self.n == 0:
            return 0.0
        var_t = self.tt - self.st**2 / self.n
        var_i = self.ii - self.si**2 / self.n
        cov = self.ti - self.st * self.si / self.n
        return cov / np.sqrt(var_t * var_i) if var_t > 0 and var_i > 0 else 0.0

    def step(self) -> np.ndarray:
        """The ECC update of the parameters (the criterion's closed-form maximiser)."""
        mt, mi = self.st / self.n, self.si / self.n
        gt, gi = self.gt - mt * self.g1, self.gi - mi * self.g1  # zero-mean t and i
        ii = self.ii - self.n * mi * mi
        ti = self.ti - self.n * mt * mi
        try:
            hess_inv = np.linalg.inv(self.hess)
        except np.linalg.LinAlgError:
            raise RefineError("the frames have too little structure to fix 8 parameters")
        proj_i = hess_inv @ gi
        lam_n = ii - float(gi @ proj_i)
        lam_d = ti - float(gt @ proj_i)
        if lam_d <= 0:
            raise RefineError("the frames do not correlate (the criterion would decrease)")
        return hess_inv @ ((lam_n / lam_d) * gt - gi)


def refine(
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    start: np.ndarray,
    widths: Sequence[int] = (160, 320),
    iterations: int = 40,
    tolerance_px: float = 0.05,
    stride: int = 1,
) -> Refined:
    """Refine `start` (thermal -> visible, full resolution) over all frames, coarse to fine.

    `widths`: the visible image's width at each level; `tolerance_px`: stop a level when the
    step moves no image corner by more than this (level pixels); `stride`: use every
    stride-th pixel in each direction. Raises RefineError when the frames stop overlapping or
    the criterion would decrease (uncorrelated frames).
    """
    h = normalised(start)
    thermal = (frames[0][0].shape[1], frames[0][0].shape[0])
    steps: list[int] = []
    converged = False
    sums = _Sums()
    for width in widths:
        level = _Level(frames, width, local_scale(h, thermal))
        h_level = level.to_level @ h
        converged = False
        n = 0
        for n in range(1, iterations + 2):
            sums = level.sums(h_level, stride)
            if n > iterations:  # the last pass only scores the result
                break
            if sums.n == 0:
                raise RefineError("the thermal frames no longer overlap the visible ones")
            inc = level.increment(sums.step())
            h_level = normalised(np.linalg.inv(inc) @ h_level)
            moved = np.abs(apply(inc, corners(level.size)) - corners(level.size)).max()
            if moved < tolerance_px:
                converged = True
                sums = level.sums(h_level, stride)
                break
        steps.append(min(n, iterations))
        h = normalised(np.linalg.inv(level.to_level) @ h_level)
    return Refined(h, sums.score(), tuple(sums.frames), tuple(steps), converged)
