"""Soft mask of salient hot objects (people first, vehicles) computed from a thermal image alone.

This module's one job is ``mask_source=thermal``: a classical, network-free stand-in for the
SOSMaskFuse salient-object-segmentation (SOS) network. It turns one infrared frame into a soft
mask in [0, 1] that is high on hot objects that stand out from their *local* surround, and low
on the background. It uses NumPy and OpenCV only (no torch, no ROS) and runs in a few
milliseconds per 640x512 frame.

Method (the optimal cut of a component tree)
--------------------------------------------
1. Downscale to a working size (``work_size`` px on the long side) and normalise robustly to
   [0, 1] between two percentiles (so a few saturated pixels or a uint16 offset do not matter).
2. Threshold at ``levels`` grey levels between the ``base_percentile`` and the maximum. Every
   connected component at every level is a candidate object; together they form a component
   tree (hot cores nested inside warm bodies nested inside larger warm regions).
3. Filter: tiny, huge, very wide or very tall candidates, wide-thin "band" components (a hot
   horizon, skyline or sky band) and candidates whose contrast (mean inside minus mean in a
   ring around the bounding box, ring width ``ring`` x sqrt(bbox area), O(1) with an integral
   image) does not beat ``noise_contrast`` times the pixel noise are dropped.
4. Score each remaining candidate: its contrast in units of sqrt(0.1 x the frame's global
   standard deviation), times
   - ``border_penalty`` ** (how far it runs along the image edges, relative to its own
     extent): sky, road and walls run along the frame, a person cut by it touches it briefly;
   - min(1, (height / width) / ``upright``): the upright prior (standing people are taller
     than wide; bands, roofs, car bodies and paths are not);
   - min(area / 0.1 % of the frame, 4) ** ``size_power``: small specks need more contrast;
   - peak ** ``brightness_power``, where peak is the highest level that some part of the
     candidate reaches: people and engines hold a hot core, warm walls and roofs do not.
5. Accept candidates whose score reaches the absolute ``min_contrast`` and whose score
   without the peak factor reaches ``seed_rel`` times the best such score of the frame. The
   absolute floor keeps every clearly warm, person-shaped object; the relative floor drops
   weak clutter when a strong object is present, but (peak left out) does not hold cooler
   and farther people to the hottest one's temperature.
6. Select the best non-overlapping set of accepted candidates (an antichain of the tree): a
   candidate is kept rather than its accepted descendants when its evidence, score x area, is
   at least their sum (exact dynamic programme over the tree, bottom-up then top-down). A
   warm body therefore wins over its hot head and legs taken separately, while a large warm
   region that merely contains a person (a wall behind them) loses to it when its contrast is
   weak. Optional growth (``grow_rel`` < 1) can then add larger overlapping candidates.
7. Fill holes, then feather: the soft mask is a sigmoid of the signed distance to the mask
   boundary (``feather`` working-size pixels), upsampled bilinearly to the input size.
8. Halo: around each object the mask keeps a low level (at most ``halo_level`` < 0.5) that
   fades out over ``halo`` x the image's long side. A thermal target's warm edge (blurred by
   the optics, and drawn inside the hand-labelled masks) often lies just outside the cut, and
   IMV-F treats a pixel as background unless the mask says otherwise; the halo lets the fusion
   give those pixels part of the thermal foreground weight. With the sharper feather it raised
   the thermal target contrast kept by the fused TNO images from 0.77 to 0.83
   (``docs/thermal_mask.md``, Halo). Thresholding the soft mask at 0.5 gives back the binary
   mask: the halo never changes it.

Input: HxW (or HxWx1, or HxWx3 BGR, converted to grey) thermal image, dtype uint8, uint16
(e.g. raw 14-bit radiometric counts), any other integer type, or float (any range; NaN/inf are
treated as the coldest finite value). Larger values mean hotter ("white-hot"); set
``black_hot=True`` for the inverted palette.
Output: float32 HxW soft mask in [0, 1]. A constant or pure-noise frame gives all zeros; so
does a frame in which nothing reaches ``min_contrast``. A frame without any person but with a
clearly warm object (a lamp, an engine) still marks it, as a saliency network would.

Defaults: ``seed_rel``, ``upright`` and ``brightness_power`` are a point of
``sosmaskfuse_core.mask_eval.DEFAULT_GRID`` picked to favour night street scenes (people only)
while keeping the 20 hand-labelled TNO masks (people, vehicles, a helicopter) above 0.53 IoU;
``docs/thermal_mask.md`` gives the cross-validated figures on both sets. The upright prior
is the main trade-off: lower ``upright`` (e.g. 0.8) suits scenes where vehicles matter as much
as people.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

__all__ = ["ThermalMaskConfig", "ThermalHotObjectMasker", "thermal_hot_object_mask",
           "normalize_thermal"]


@dataclass(frozen=True)
class ThermalMaskConfig:
    """Settings of the thermal hot-object mask; every field is validated on construction.

    Sizes and areas are relative to the image so one configuration serves any resolution.
    """

    #: Long side, in pixels, of the working image (the input is downscaled to it; smaller is
    #: faster; objects below ~``min_area`` of the frame are not resolved).
    work_size: int = 160
    #: Number of grey levels at which the component tree is cut.
    levels: int = 16
    #: Levels are spaced evenly from this percentile of the normalised image to its maximum
    #: (hot objects are brighter than at least this share of the frame).
    base_percentile: float = 50.0
    #: Set for "black-hot" palettes (hot = dark); by default hot = bright ("white-hot").
    black_hot: bool = False
    #: Percentiles mapped to 0 and 1 by the robust normalisation.
    low_percentile: float = 0.5
    high_percentile: float = 99.8
    #: Width of the surround ring, as a fraction of sqrt(bbox width * bbox height).
    ring: float = 0.5
    #: Smallest and largest candidate area, as fractions of the image area.
    min_area: float = 0.0003
    max_area: float = 0.25
    #: Largest candidate bbox width / height, as fractions of the image width / height.
    max_width: float = 0.6
    max_height: float = 0.95
    #: A candidate wider than ``band_aspect`` x its height and than 30 % of the image width
    #: is a horizontal band (horizon, skyline, hot sky) and is dropped.
    band_aspect: float = 4.0
    #: Score factor for running along the image border, raised to the candidate's contact:
    #: the length it runs along the left+right edges over its height plus that along the
    #: top+bottom edges over its width (1 = no penalty).
    border_penalty: float = 0.6
    #: Upright prior: candidates less than ``upright`` times as tall as wide lose score in
    #: proportion (a person standing is ~2-4x taller than wide; 0 = no shape prior).
    upright: float = 1.2
    #: Size gain: the score is multiplied by min(area / 0.1 % of the image, 4) ** size_power
    #: (larger warm regions need less contrast; tiny specks more).
    size_power: float = 0.3
    #: Exponent of the candidate's peak brightness in the score: the highest threshold (in
    #: [0, 1]) that some part of it still reaches (hot people and engines peak near 1; warm
    #: walls, roofs and paths lower).
    brightness_power: float = 2.0
    #: Acceptance: a candidate's score must reach ``min_contrast`` (contrast in units of
    #: sqrt(0.1 x the frame's global std), times the factors above) ...
    min_contrast: float = 2.0
    #: ... and, without the peak factor, ``seed_rel`` times the best such score in the frame.
    seed_rel: float = 0.6
    #: Optional growth after the selection (1 = off): a larger candidate overlapping the
    #: selection joins it if its contrast is at least this fraction of the selected pixels' ...
    grow_rel: float = 1.0
    #: ... and its area at most this multiple of the selected pixels inside it.
    grow_area: float = 10.0
    #: Noise floor: a candidate's contrast (inside minus ring mean) must be at least this many
    #: times the estimated pixel noise (flat frames and pure noise give an empty mask).
    noise_contrast: float = 6.0
    #: Fill holes inside mask components.
    fill_holes: bool = True
    #: Soft-edge width in working-size pixels (the sigmoid's 12 %-88 % span); 0 = binary mask.
    feather: float = 0.5
    #: Halo around the objects, as a fraction of the image's long side (0 = none): the mask
    #: outside an object is at least ``halo_level`` times a blurred dilation of it by this radius.
    halo: float = 0.03
    #: Highest mask value of the halo; below 0.5, so the mask thresholded at 0.5 is unchanged.
    halo_level: float = 0.49

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"ThermalMaskConfig: {what}")

        need(isinstance(self.work_size, (int, np.integer)) and 16 <= self.work_size <= 4096,
             f"work_size must be an int in [16, 4096], got {self.work_size!r}")
        need(isinstance(self.levels, (int, np.integer)) and 2 <= self.levels <= 256,
             f"levels must be an int in [2, 256], got {self.levels!r}")
        need(0.0 <= self.base_percentile < 100.0, "base_percentile must be in [0, 100)")
        need(0.0 <= self.low_percentile < self.high_percentile <= 100.0,
             "need 0 <= low_percentile < high_percentile <= 100")
        need(0.0 <= self.ring <= 5.0, "ring must be in [0, 5]")
        need(0.0 <= self.min_area < self.max_area <= 1.0, "need 0 <= min_area < max_area <= 1")
        need(0.0 < self.max_width <= 1.0 and 0.0 < self.max_height <= 1.0,
             "max_width and max_height must be in (0, 1]")
        need(self.band_aspect > 0.0, "band_aspect must be > 0")
        need(0.0 <= self.border_penalty <= 1.0, "border_penalty must be in [0, 1]")
        need(0.0 <= self.upright <= 10.0, "upright must be in [0, 10]")
        need(0.0 <= self.size_power <= 2.0, "size_power must be in [0, 2]")
        need(0.0 <= self.brightness_power <= 10.0, "brightness_power must be in [0, 10]")
        need(0.0 < self.seed_rel <= 1.0, "seed_rel must be in (0, 1]")
        need(0.0 < self.grow_rel <= 1.0, "grow_rel must be in (0, 1]")
        need(self.grow_area >= 1.0, "grow_area must be >= 1")
        need(self.min_contrast >= 0.0, "min_contrast must be >= 0")
        need(self.noise_contrast >= 0.0, "noise_contrast must be >= 0")
        need(0.0 <= self.feather <= 50.0, "feather must be in [0, 50]")
        need(0.0 <= self.halo <= 0.5, "halo must be in [0, 0.5]")
        need(0.0 <= self.halo_level < 0.5, "halo_level must be in [0, 0.5)")

    def replace(self, **changes: object) -> "ThermalMaskConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _to_gray_float(thermal: np.ndarray, black_hot: bool = False) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 (BGR) / HxWx4 array of any numeric dtype -> HxW array that
    cv2.resize accepts (uint8, uint16 or float32), finite (non-finite pixels get the coldest
    finite value: the minimum, or the maximum for ``black_hot``)."""
    a = np.asarray(thermal)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        if a.dtype not in (np.uint8, np.uint16):
            a = a.astype(np.float32)
        a = cv2.cvtColor(a, cv2.COLOR_BGRA2GRAY if a.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    if a.ndim != 2:
        raise ValueError(f"thermal image must be HxW, HxWx1 or HxWx3, got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(f"thermal image too small: {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype in (np.uint8, np.uint16):
        return a
    a = a.astype(np.float32)
    finite = np.isfinite(a)
    if not finite.all():
        cold = (a[finite].max() if black_hot else a[finite].min()) if finite.any() else 0.0
        a = np.where(finite, a, cold).astype(np.float32)
    return a


def _percentiles(x: np.ndarray, qs: tuple[float, ...], bins: int = 1024) -> list[float]:
    """Approximate percentiles of a float32 image from a histogram (much faster than
    np.percentile; resolution (max - min) / bins)."""
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return [lo] * len(qs)
    hist = cv2.calcHist([x], [0], None, [bins], [lo, hi + (hi - lo) * 1e-6]).ravel()
    cdf = np.cumsum(hist)
    cdf /= cdf[-1]
    return [lo + (hi - lo) * (float(np.searchsorted(cdf, q / 100.0)) + 0.5) / bins for q in qs]


def normalize_thermal(thermal: np.ndarray, config: Optional[ThermalMaskConfig] = None
                      ) -> tuple[np.ndarray, float]:
    """Downscale ``thermal`` to the working size and normalise it to float32 [0, 1].

    Returns ``(small, base)``: the working image and the normalised value of
    ``config.base_percentile``. A constant image gives an all-zero image (and base 1.0).
    """
    cfg = config or ThermalMaskConfig()
    g = _to_gray_float(thermal, cfg.black_hot)
    H, W = g.shape
    s = min(1.0, cfg.work_size / max(H, W))
    if s < 1.0:
        g = cv2.resize(g, (max(2, round(W * s)), max(2, round(H * s))),
                       interpolation=cv2.INTER_AREA)
    g = g.astype(np.float32, copy=False)
    lo, hi, base = _percentiles(g, (cfg.low_percentile, cfg.high_percentile,
                                    cfg.base_percentile))
    if not hi - lo > 1e-12 * max(1.0, abs(hi)):
        return np.zeros(g.shape, np.float32), 1.0
    if cfg.black_hot:
        g = -g
        lo, hi = -hi, -lo
        base = float(np.percentile(g, cfg.base_percentile))
    small = np.clip((g - lo) * (1.0 / (hi - lo)), 0.0, 1.0).astype(np.float32)
    return small, float(np.clip((base - lo) / (hi - lo), 0.0, 1.0))


def _noise_sigma(small: np.ndarray) -> float:
    """Robust pixel-noise estimate of the working image: scaled MAD of the residual after a
    3x3 box blur (fine texture and sensor noise; larger structures barely contribute)."""
    r = (small - cv2.blur(small, (3, 3)))[::2, ::2]          # subsample: the median is costly
    return float(np.median(np.abs(r)) * 1.4826 * 1.125)   # 1.125: box-blur residual -> sigma


#: Size gain: ``min(area / (_SIZE_REF * image area), _SIZE_CAP) ** size_power``.
_SIZE_REF = 0.001
_SIZE_CAP = 4.0
#: Contrast unit: sqrt(_UNIT_RANGE * global std) of the normalised working image (a geometric
#: mean of the frame's spread and a tenth of its normalised range).
_UNIT_RANGE = 0.1


def _binary_mask(small: np.ndarray, base: float, cfg: ThermalMaskConfig) -> np.ndarray:
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
        n, lab, st, _ = cv2.connectedComponentsWithStats((small >= t).view(np.uint8),
                                                         connectivity=8, ltype=ltype)
        if n <= 1:
            break
        lab = lab.astype(np.intp)
        ar = st[:, 4].astype(np.float64)
        # One bincount gives both the intensity sum inside each component and its parent
        # label at the level below (all its pixels share one): weights = pixel + 4 * parent.
        # The component's mean is in (0, 1] (pixels >= t > 0), so sum / (4 * area) lies in
        # (parent, parent + 0.25] and its floor is the parent.
        packed = np.bincount(lab.ravel(), weights=flat if prev is None else flat + prev,
                             minlength=n)
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
    ok = ((ar >= cfg.min_area * area) & (ar <= cfg.max_area * area) & (n_ring > 0)
          & (bw <= cfg.max_width * w) & (bh <= cfg.max_height * h)
          & ~((bw > cfg.band_aspect * bh) & (bw > 0.3 * w)) & (diff >= floor))
    ok[offsets[:-1]] = False                                    # label 0 of every level
    # Border contact: the share of its own extent a candidate runs along the image edges
    # (a person cut by the frame touches it briefly; sky, road and walls run along it).
    contact = (np.minimum(np.concatenate(sides_lr) / np.maximum(bh, 1), 2.0)
               + np.minimum(np.concatenate(sides_tb) / np.maximum(bw, 1), 2.0))
    unit = float(np.sqrt(_UNIT_RANGE * float(small.std()))) + 1e-6
    g = diff / unit * cfg.border_penalty ** contact             # contrast (also for growth)
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
            np.maximum.at(peak, offsets[i - 1] + parents[i], peak[offsets[i]:offsets[i + 1]])
        c *= peak ** cfg.brightness_power
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
        child[offsets[i - 1]:a] += np.bincount(parents[i], weights=best_i,
                                               minlength=counts[i - 1])
    # ... top-down: a candidate is selected if it beats its descendants and no ancestor was.
    chosen = (q > 0) & (q >= child)
    selected = []
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


def _grow(out: np.ndarray, labs: list, offsets: np.ndarray, selected: list, g: np.ndarray,
          ok: np.ndarray, ar: np.ndarray, cfg: ThermalMaskConfig) -> np.ndarray:
    """Optional growth: a larger candidate that overlaps the selection joins it if its contrast
    is at least ``grow_rel`` times that of the selected pixels inside it and its area at most
    ``grow_area`` times their count."""
    seed_g = np.zeros(out.shape, np.float32)
    for i, (lab, sel) in enumerate(zip(labs, selected)):
        if sel.any():
            lut = np.where(sel, g[offsets[i]:offsets[i + 1]], 0.0).astype(np.float32)
            np.maximum(seed_g, np.take(lut, lab), out=seed_g)
    seeds = seed_g > 0
    seed_vals = seed_g[seeds].astype(np.float64)
    grown = out.copy()
    for i, lab in enumerate(labs):
        a, b = offsets[i], offsets[i + 1]
        labs_at = lab[seeds]
        n_seed = np.bincount(labs_at, minlength=b - a)
        mean_g = (np.bincount(labs_at, weights=seed_vals, minlength=b - a)
                  / np.maximum(n_seed, 1))
        join = (ok[a:b] & (n_seed > 0) & (g[a:b] >= cfg.grow_rel * mean_g)
                & (ar[a:b] <= cfg.grow_area * n_seed))
        if join.any():
            grown |= np.take(join.astype(np.uint8), lab)
    return grown


def _fill(out: np.ndarray, cfg: ThermalMaskConfig) -> np.ndarray:
    if cfg.fill_holes:
        contours, _ = cv2.findContours(out, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out


def _feather(binary: np.ndarray, width: float) -> np.ndarray:
    """Soft version of a {0, 1} mask: sigmoid of the signed distance to its boundary, with the
    0.5 level on the boundary and a 12 %-88 % ramp ``width`` pixels wide."""
    if width <= 0 or not binary.any() or binary.all():
        return binary.astype(np.float32)
    d_in = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - binary, cv2.DIST_L2, 3)
    signed = np.where(binary > 0, d_in - 0.5, 0.5 - d_out)
    z = np.clip(signed * (4.0 / width), -30.0, 30.0)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def _halo(binary: np.ndarray, radius: float, level: float) -> Optional[np.ndarray]:
    """``level`` x (the binary mask dilated by ``radius`` px, blurred with sigma radius / 2), or None."""
    if radius <= 0 or level <= 0:
        return None
    r = max(1, int(round(radius)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    halo = cv2.GaussianBlur(cv2.dilate(binary, disk).astype(np.float32), (0, 0), radius / 2.0)
    return level * np.minimum(halo, 1.0, out=halo)


def thermal_hot_object_mask(thermal: np.ndarray,
                            config: Optional[ThermalMaskConfig] = None) -> np.ndarray:
    """Soft salient-hot-object mask of one thermal frame (float32 HxW in [0, 1]).

    See the module docstring for the method and the accepted input types.
    """
    cfg = config or ThermalMaskConfig()
    g = np.asarray(thermal)
    H, W = g.shape[:2]
    small, base = normalize_thermal(g, cfg)
    binary = _binary_mask(small, base, cfg)
    if not binary.any():
        return np.zeros((H, W), np.float32)
    soft = _feather(binary, cfg.feather)
    halo = _halo(binary, cfg.halo * max(small.shape), cfg.halo_level)
    if soft.shape != (H, W):
        soft = cv2.resize(soft, (W, H), interpolation=cv2.INTER_LINEAR)
        if halo is not None:
            halo = cv2.resize(halo, (W, H), interpolation=cv2.INTER_LINEAR)
    if halo is not None:
        # upsampled separately, so the halo (< 0.5 everywhere) cannot move the 0.5 level
        soft = np.maximum(soft, halo, out=soft)
    return np.clip(soft, 0.0, 1.0, out=soft)


class ThermalHotObjectMasker:
    """Callable wrapper: ``ThermalHotObjectMasker(config)(thermal) -> soft mask``.

    Holds one validated :class:`ThermalMaskConfig`; stateless between frames, so one instance
    may be shared by a ROS node callback.
    """

    def __init__(self, config: Optional[ThermalMaskConfig] = None) -> None:
        if config is not None and not isinstance(config, ThermalMaskConfig):
            raise TypeError("config must be a ThermalMaskConfig")
        self.config = config or ThermalMaskConfig()

    def __call__(self, thermal: np.ndarray) -> np.ndarray:
        return thermal_hot_object_mask(thermal, self.config)

    def __repr__(self) -> str:
        return f"ThermalHotObjectMasker({self.config!r})"
