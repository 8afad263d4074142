"""Hot-object candidates as a component tree of thresholded levels, scored and cut optimally.

Steps 2 to 7 of the method in `hot_object_mask`: threshold levels, filter and score the
connected components, accept them on absolute and relative floors, select the best
non-overlapping set (an antichain of the tree), optionally grow, fill holes.
"""

from __future__ import annotations

import cv2
import numpy as np

from .mask_config import ThermalMaskConfig


def _noise_sigma(small: np.ndarray) -> float:
    """Robust pixel-noise estimate of the working image: scaled MAD of a 3x3 box blur's residual.

    It measures fine texture and sensor noise; larger structures barely contribute.
    """
    r = (small - cv2.blur(small, (3, 3)))[::2, ::2]  # subsample: the median is costly
    return float(np.median(np.abs(r)) * 1.4826 * 1.125)  # 1.125: box-blur residual -> sigma


#: Size gain: ``min(area / (_SIZE_REF * image area), _SIZE_CAP) ** size_power``.
_SIZE_REF = 0.001
_SIZE_CAP = 4.0


#: Contrast unit: sqrt(_UNIT_RANGE * global std) of the normalised working image (a geometric
#: mean of the frame's spread and a tenth of its normalised range).
_UNIT_RANGE = 0.1


def select_objects(small: np.ndarray, base: float, cfg: ThermalMaskConfig) -> np.ndarray:
    """The selected candidates on the working image, as uint8 {0, 1}."""
    h, w = small.shape
    out = np.zeros((h, w), np.uint8)
    if base >= 1.0:
        return out
    area = float(h * w)
    flat = small.ravel().astype(np.float64)
    # 16-bit labels are several times faster in OpenCV; they suffice while the label count
    # (at most ceil(h / 2) * ceil(w / 2) + 1 with 8-connectivity) fits.
    ltype = cv2.CV_16U if ((h + 1) // 2) * ((w + 1) // 2) < 65535 else cv2.CV_32S
    # Pass 1, per level (lowest threshold first): the components and their raw statistics.
    labs, stats, sums, parents, sides_lr, sides_tb, levels_t = [], [], [], [], [], [], []
    prev = None
    for t in np.linspace(base, 1.0, cfg.levels + 2)[1:-1]:
        n, lab, st, _ = cv2.connectedComponentsWithStats(
            (small >= t).view(np.uint8), connectivity=8, ltype=ltype
        )
        if n <= 1:
            break
        lab = lab.astype(np.intp)
        ar = st[:, 4].astype(np.float64)
        # One bincount gives both the intensity sum inside each component and its parent
        # label at the level below (all its pixels share one): weights = pixel + 4 * parent.
        # The component's mean is in (0, 1] (pixels >= t > 0), so sum / (4 * area) lies in
        # (parent, parent + 0.25] and its floor is the parent.
        packed = np.bincount(
            lab.ravel(), weights=flat if prev is None else flat + prev, minlength=n
        )
        parent = np.floor(packed / (4.0 * np.maximum(ar, 1.0))).astype(np.intp)
        parent[0] = 0
        labs.append(lab)
        levels_t.append(t)
        stats.append(st)
        sums.append(packed - 4.0 * parent * ar)
        parents.append(parent)
        # pixels each component has on the left+right and on the top+bottom image edges
        sides_lr.append(np.bincount(np.concatenate((lab[:, 0], lab[:, -1])), minlength=n))
        sides_tb.append(np.bincount(np.concatenate((lab[0], lab[-1])), minlength=n))
        prev = lab.ravel() * 4.0
    if not labs:
        return out
    # Pass 2, all candidates of all levels at once: filters and score.
    counts = np.array([len(s) for s in stats])
    offsets = np.concatenate(([0], np.cumsum(counts)))
    st = np.concatenate(stats).astype(np.int64)
    x, y, bw, bh, ar = (st[:, k] for k in range(5))
    s_in = np.concatenate(sums)
    integral = cv2.integral(small, sdepth=cv2.CV_64F)
    m = (cfg.ring * np.sqrt(bw * bh)).astype(np.int64) + 2
    x0, y0 = np.maximum(0, x - m), np.maximum(0, y - m)
    x1, y1 = np.minimum(w, x + bw + m), np.minimum(h, y + bh + m)
    s_box = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    n_ring = (x1 - x0) * (y1 - y0) - ar
    mean_in = s_in / np.maximum(ar, 1)
    diff = mean_in - (s_box - s_in) / np.maximum(n_ring, 1)
    # A candidate must beat the pixel noise by this much, whatever the frame's contrast: this
    # keeps pure noise and flat frames empty.
    floor = max(cfg.noise_contrast * _noise_sigma(small), 1e-3)
    ok = (
        (ar >= cfg.min_area * area)
        & (ar <= cfg.max_area * area)
        & (n_ring > 0)
        & (bw <= cfg.max_width * w)
        & (bh <= cfg.max_height * h)
        & ~((bw > cfg.band_aspect * bh) & (bw > 0.3 * w))
        & (diff >= floor)
    )
    ok[offsets[:-1]] = False  # label 0 of every level
    # Border contact: the share of its own extent a candidate runs along the image edges
    # (a person cut by the frame touches it briefly; sky, road and walls run along it).
    contact = np.minimum(np.concatenate(sides_lr) / np.maximum(bh, 1), 2.0) + np.minimum(
        np.concatenate(sides_tb) / np.maximum(bw, 1), 2.0
    )
    unit = float(np.sqrt(_UNIT_RANGE * float(small.std()))) + 1e-6
    g = diff / unit * cfg.border_penalty**contact  # contrast (also for growth)
    c = g * np.minimum(np.maximum(ar, 1) / (_SIZE_REF * area), _SIZE_CAP) ** cfg.size_power
    if cfg.upright > 0:
        c *= np.minimum(1.0, bh / (cfg.upright * np.maximum(bw, 1)))
    c = np.where(ok, c, 0.0)
    # The relative floor compares this score (without the peak factor, so that cooler people
    # are not held to the hottest one's peak) with the frame's best.
    rel_ok = c >= cfg.seed_rel * float(c.max())
    if cfg.brightness_power > 0:
        # peak: the highest level any descendant reaches (bottom-up maximum over the tree)
        peak = np.repeat(np.asarray(levels_t), counts)
        for i in range(len(labs) - 1, 0, -1):
            np.maximum.at(peak, offsets[i - 1] + parents[i], peak[offsets[i] : offsets[i + 1]])
        c *= peak**cfg.brightness_power
    accepted = ok & rel_ok & (c >= cfg.min_contrast)
    if not accepted.any():
        return out
    # Pass 3: the optimal non-overlapping set of accepted candidates (an antichain of the
    # component tree). A candidate is kept rather than its descendants when its evidence
    # q = score * area is at least theirs, summed. Bottom-up: the children's best totals ...
    q = np.where(accepted, c * ar, 0.0)
    child = np.zeros(len(q))
    for i in range(len(labs) - 1, 0, -1):
        a, b = offsets[i], offsets[i + 1]
        best_i = np.maximum(q[a:b], child[a:b])
        best_i[0] = 0.0
        child[offsets[i - 1] : a] += np.bincount(
            parents[i], weights=best_i, minlength=counts[i - 1]
        )
    # ... top-down: a candidate is selected if it beats its descendants and no ancestor was.
    chosen = (q > 0) & (q >= child)
    selected: list[np.ndarray] = []
    covered = np.zeros(counts[0], bool)
    for i, lab in enumerate(labs):
        a, b = offsets[i], offsets[i + 1]
        if i > 0:
            covered = covered[parents[i]] | selected[-1][parents[i]]
        sel = chosen[a:b] & ~covered
        if sel.any():
            out |= np.take(sel.astype(np.uint8), lab)
        selected.append(sel)
    if cfg.grow_rel < 1.0 and out.any():
        out = _grow(out, labs, offsets, selected, g, ok, ar, cfg)
    return _fill(out, cfg)


def _grow(
    out: np.ndarray,
    labs: list,
    offsets: np.ndarray,
    selected: list,
    g: np.ndarray,
    ok: np.ndarray,
    ar: np.ndarray,
    cfg: ThermalMaskConfig,
) -> np.ndarray:
    """Optional growth: a larger candidate that overlaps the selection may join it.

    It joins if its contrast is at least ``grow_rel`` times that of the selected pixels inside
    it and its area at most ``grow_area`` times their count.
    """
    seed_g = np.zeros(out.shape, np.float32)
    for i, (lab, sel) in enumerate(zip(labs, selected)):
        if sel.any():
            lut = np.where(sel, g[offsets[i] : offsets[i + 1]], 0.0).astype(np.float32)
            np.maximum(seed_g, np.take(lut, lab), out=seed_g)
    seeds = seed_g > 0
    seed_vals = seed_g[seeds].astype(np.float64)
    grown = out.copy()
    for i, lab in enumerate(labs):
        a, b = offsets[i], offsets[i + 1]
        labs_at = lab[seeds]
        n_seed = np.bincount(labs_at, minlength=b - a)
        mean_g = np.bincount(labs_at, weights=seed_vals, minlength=b - a) / np.maximum(n_seed, 1)
        join = (
            ok[a:b]
            & (n_seed > 0)
            & (g[a:b] >= cfg.grow_rel * mean_g)
            & (ar[a:b] <= cfg.grow_area * n_seed)
        )
        if join.any():
            grown |= np.take(join.astype(np.uint8), lab)
    return grown


def _fill(out: np.ndarray, cfg: ThermalMaskConfig) -> np.ndarray:
    if cfg.fill_holes:
        contours, _ = cv2.findContours(out, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out
