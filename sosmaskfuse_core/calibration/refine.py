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
from .geometry import Size, apply, corners, cross2, normalised, resize_map


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
        self.u, self.v = u, v
        self.norm = np.array(
            [[1 / self.half, 0, -cx / self.half], [0, 1 / self.half, -cy / self.half], [0, 0, 1]]
        )
        self.ones = np.ones(self.pre_size[::-1], np.uint8)
        self._monomials: dict[int, np.ndarray] = {}

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
        sums = _Sums(self.half)
        sub = (slice(None, None, stride), slice(None, None, stride))
        if stride not in self._monomials:
            u, v = self.u[sub].ravel(), self.v[sub].ravel()
            self._monomials[stride] = np.stack([u**a * v**b for a, b in EXPONENTS], axis=1)
        monomials = self._monomials[stride]
        for (ft, valid), fv in zip(self.warped_fields(h_level), self.visible):
            m = valid[sub].astype(np.float32)
            channels = range(ft.shape[2])
            count = len(channels) * int(m.sum())
            if count == 0:
                sums.frames.append(0.0)
                continue
            # each channel of the fields and of their x and y derivatives (level pixels)
            t = [fv[sub][..., c] * m for c in channels]
            i = [ft[sub][..., c] * m for c in channels]
            dx = cv2.Sobel(ft, cv2.CV_32F, 1, 0, ksize=1)[sub]
            dy = cv2.Sobel(ft, cv2.CV_32F, 0, 1, ksize=1)[sub]
            a = [dx[..., c] * (0.5 * m) for c in channels]
            b = [dy[..., c] * (0.5 * m) for c in channels]
            per_pixel = np.empty((m.size, 9), np.float32)
            for k, (x, y) in enumerate([(a, a), (a, b), (b, b), (a, t), (b, t), (a, i), (b, i)]):
                per_pixel[:, k] = np.sum([x[c] * y[c] for c in channels], axis=0).ravel()
            per_pixel[:, 7] = np.sum(a, axis=0).ravel()
            per_pixel[:, 8] = np.sum(b, axis=0).ravel()
            flat_t = np.concatenate([c.ravel() for c in t])
            flat_i = np.concatenate([c.ravel() for c in i])
            sums.add(flat_t, flat_i, monomials.T @ per_pixel, count)
        return sums

    def increment(self, p: np.ndarray) -> np.ndarray:
        """The pixel-coordinate homography of the increment p (8 numbers, normalised frame)."""
        d = np.array([[1 + p[0], p[1], p[2]], [p[3], 1 + p[4], p[5]], [p[6], p[7], 1.0]])
        return np.linalg.inv(self.norm) @ d @ self.norm


def local_scale(h: np.ndarray, thermal: Size) -> float:
    """How much `h` magnifies at the thermal image's centre (square root of the area ratio)."""
    cx, cy = (thermal[0] - 1) / 2.0, (thermal[1] - 1) / 2.0
    p = apply(h, np.array([[cx, cy], [cx + 1, cy], [cx, cy + 1]]))
    return float(np.sqrt(abs(cross2(p[1] - p[0], p[2] - p[0]))))


#: Exponents (a, b) of the monomials u^a v^b up to degree 4: the entries of J^T J, where J is
#: the increment's Jacobian (x: [u v 1 0 0 0 -u^2 -uv], y: [0 0 0 u v 1 -uv -v^2]).
EXPONENTS = [(a, d - a) for d in range(5) for a in range(d, -1, -1)]
_JACOBIAN = (  # (coefficient, exponent) of each parameter's entry, rows x and y
    [(1, (1, 0)), (1, (0, 1)), (1, (0, 0)), None, None, None, (-1, (2, 0)), (-1, (1, 1))],
    [None, None, None, (1, (1, 0)), (1, (0, 1)), (1, (0, 0)), (-1, (1, 1)), (-1, (0, 2))],
)


def _assembly() -> tuple[np.ndarray, np.ndarray]:
    """Tensors turning monomial moments into J^T T J (8 x 8 x 15 x 3) and J^T g (8 x 15 x 2).

    T is the per-pixel 2 x 2 tensor of the field's gradient (columns xx, xy, yy); g a per-pixel
    2-vector (columns x, y).
    """
    index = {e: k for k, e in enumerate(EXPONENTS)}
    hess = np.zeros((8, 8, len(EXPONENTS), 3))
    vec = np.zeros((8, len(EXPONENTS), 2))
    column = {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 2}
    for r in range(2):
        for p, entry in enumerate(_JACOBIAN[r]):
            if entry is None:
                continue
            vec[p, index[entry[1]], r] += entry[0]
            for s in range(2):
                for q, other in enumerate(_JACOBIAN[s]):
                    if other is None:
                        continue
                    e = (entry[1][0] + other[1][0], entry[1][1] + other[1][1])
                    hess[p, q, index[e], column[(r, s)]] += entry[0] * other[0]
    return hess, vec


_HESS, _VEC = _assembly()


class _Sums:
    """What one ECC step needs, summed frame by frame (no Jacobian matrix is ever built).

    Over all valid pixels and both channels: the counts, sums and dot products of the visible
    field t and the warped thermal field i; and the monomial moments of the field gradient's
    tensor and of its products with t, i and 1, from which G^T G, G^T t, G^T i and G^T 1 follow
    (G: the Jacobian of i with respect to the 8 parameters).
    """

    def __init__(self, half: float) -> None:
        self.half = half  # level pixels per normalised unit
        self.n = 0
        self.st = self.si = self.tt = self.ii = self.ti = 0.0
        self.moments = np.zeros((len(EXPONENTS), 9))
        self.frames: list[float] = []  # each frame's correlation

    def add(self, t: np.ndarray, i: np.ndarray, moments: np.ndarray, count: int) -> None:
        """One frame: t and i (flat, 0 outside its `count` valid entries), its moments."""
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
        self.moments += moments

    @property
    def hess(self) -> np.ndarray:
        """G^T G."""
        return self.half**2 * np.einsum("pqmk,mk->pq", _HESS, self.moments[:, :3])

    def _project(self, cols: slice) -> np.ndarray:
        return self.half * np.einsum("pmk,mk->p", _VEC, self.moments[:, cols])

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
        g1 = self._project(slice(7, 9))
        gt = self._project(slice(3, 5)) - mt * g1  # zero-mean t and i
        gi = self._project(slice(5, 7)) - mi * g1
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
    tolerance_px: float = 0.1,
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
    sums = _Sums(1.0)
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
