"""Soft mask of salient hot objects (people, vehicles) computed from a thermal image alone.

This module's one job is ``mask_source=thermal``: a classical, network-free stand-in for the
SOSMaskFuse salient-object-segmentation (SOS) network. It turns one infrared frame into a soft
mask in [0, 1] that is high on hot objects that stand out from their *local* surround, and low
on the background. It uses NumPy and OpenCV only (no torch, no ROS) and runs in a few
milliseconds per 640x512 frame.

Method (a small component tree on the thermal image)
----------------------------------------------------
1. Downscale to a working size (``work_size`` px on the long side) and normalise robustly to
   [0, 1] between two percentiles (so a few saturated pixels or a uint16 offset do not matter).
2. Threshold at ``levels`` grey levels between the ``base_percentile`` and the maximum. Every
   connected component at every level is a candidate object; together they form a component
   tree (hot cores nested inside warm bodies nested inside larger warm regions).
3. Score each candidate by its *local contrast*: mean inside minus mean in a ring around its
   bounding box (ring width ``ring`` x sqrt(bbox area), computed in O(1) with an integral
   image), divided by the global standard deviation. Candidates touching the image border are
   down-weighted (``border_penalty`` per side: sky, road and walls run off the frame); tiny,
   huge, very wide or very tall, and wide-thin "band" components (a hot horizon, skyline or sky
   band) are dropped. This is what rejects globally bright but locally flat areas that fool
   global Otsu.
4. Hysteresis over the tree: *seeds* are candidates whose score (contrast, optionally times
   ``mean ** brightness_power``; 0 by default) is at least ``seed_rel`` times the best in the
   frame; a looser candidate that overlaps seeds joins the mask if its contrast is at least
   ``grow_rel`` times theirs and its area at most ``grow_area`` times theirs. Seeds find the
   most salient hot objects; growing recovers their cooler parts (legs, clothing, car
   bodies) without admitting unrelated warm clutter. Every candidate must also beat the pixel
   noise (``noise_contrast``) and a fraction of the global spread (``min_contrast``), so flat
   or pure-noise frames give an empty mask.
5. Fill holes, then feather: the soft mask is a sigmoid of the signed distance to the mask
   boundary (``feather`` working-size pixels), upsampled bilinearly to the input size.
   Thresholding the soft mask at 0.5 gives back the binary mask.

Input: HxW (or HxWx1, or HxWx3 BGR, converted to grey) thermal image, dtype uint8, uint16
(e.g. raw 14-bit radiometric counts), any other integer type, or float (any range; NaN/inf are
treated as the coldest finite value). Larger values mean hotter ("white-hot"); set
``black_hot=True`` for the inverted palette.
Output: float32 HxW soft mask in [0, 1]. A constant or pure-noise frame gives all zeros. The
selection is relative to the frame, so a frame without any person or vehicle still marks its
most salient warm structure (a lit window, a lamp), as a saliency network would.

Defaults: ``seed_rel``, ``grow_rel``, ``grow_area`` and ``border_penalty`` are the grid point
that leave-one-out cross-validation on the 20 hand-labelled TNO masks selects
(``sosmaskfuse_core.mask_eval.cross_validate`` with its ``DEFAULT_GRID``); ``brightness_power``
is fixed at 0 by design: TNO alone prefers 2 (hotter objects only), but that drops the cooler
of several people in night street scenes and synthetic multi-object scenes.
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
    levels: int = 12
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
    #: Score factor per image side a candidate touches (1 = no penalty).
    border_penalty: float = 0.6
    #: Exponent of the candidate's mean brightness (in [0, 1]) in the seed score.
    brightness_power: float = 0.0
    #: Seeds score at least this fraction of the frame's best seed score.
    seed_rel: float = 0.7
    #: A looser candidate overlapping seeds joins the mask if its contrast is at least this
    #: fraction of theirs (1 = no growth) ...
    grow_rel: float = 0.4
    #: ... and its area at most this multiple of the seed area inside it.
    grow_area: float = 10.0
    #: Floors on a candidate's contrast (inside minus ring mean): in global standard
    #: deviations of the frame, and in multiples of the estimated pixel noise. Frames with
    #: nothing above both (flat frames, pure noise) give an empty mask.
    min_contrast: float = 1.0
    noise_contrast: float = 6.0
    #: Fill holes inside mask components.
    fill_holes: bool = True
    #: Soft-edge width in working-size pixels (the sigmoid's 12 %-88 % span); 0 = binary mask.
    feather: float = 1.5

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
        need(0.0 <= self.brightness_power <= 10.0, "brightness_power must be in [0, 10]")
        need(0.0 < self.seed_rel <= 1.0, "seed_rel must be in (0, 1]")
        need(0.0 < self.grow_rel <= 1.0, "grow_rel must be in (0, 1]")
        need(self.grow_area >= 1.0, "grow_area must be >= 1")
        need(self.min_contrast >= 0.0, "min_contrast must be >= 0")
        need(self.noise_contrast >= 0.0, "noise_contrast must be >= 0")
        need(0.0 <= self.feather <= 50.0, "feather must be in [0, 50]")

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


def _binary_mask(small: np.ndarray, base: float, cfg: ThermalMaskConfig) -> np.ndarray:
    """The hysteresis-selected candidates on the working image, as uint8 {0, 1}."""
    h, w = small.shape
    out = np.zeros((h, w), np.uint8)
    if base >= 1.0:
        return out
    area = float(h * w)
    integral = cv2.integral(small, sdepth=cv2.CV_64F)
    gstd = float(small.std()) + 1e-3
    # Candidates must beat the pixel noise by this much (normalised units), whatever the
    # frame's global contrast: this keeps pure noise and flat frames empty.
    floor = max(cfg.min_contrast * gstd, cfg.noise_contrast * _noise_sigma(small), 1e-3)
    weights = small.ravel().astype(np.float64)
    # 16-bit labels are several times faster in OpenCV; they suffice while the label count
    # (at most ceil(h / 2) * ceil(w / 2) + 1 with 8-connectivity) fits.
    ltype = cv2.CV_16U if ((h + 1) // 2) * ((w + 1) // 2) < 65535 else cv2.CV_32S
    # Per level: labels, number of labels, and for the candidates kept by the filters their
    # label ids, contrast, seed score and area.
    per_level = []
    for t in np.linspace(base, 1.0, cfg.levels + 2)[1:-1]:
        n, lab, st, _ = cv2.connectedComponentsWithStats((small >= t).view(np.uint8),
                                                         connectivity=8, ltype=ltype)
        if n <= 1:
            continue
        x, y, bw, bh, ar = (st[1:, k].astype(np.int64) for k in range(5))
        ok = ((ar >= cfg.min_area * area) & (ar <= cfg.max_area * area)
              & (bw <= cfg.max_width * w) & (bh <= cfg.max_height * h)
              & ~((bw > cfg.band_aspect * bh) & (bw > 0.3 * w)))
        if not ok.any():
            continue
        lab = lab.astype(np.intp)           # once, instead of inside every bincount / take
        s_in = np.bincount(lab.ravel(), weights=weights, minlength=n)[1:]
        m = (cfg.ring * np.sqrt(bw * bh)).astype(np.int64) + 2
        x0, y0 = np.maximum(0, x - m), np.maximum(0, y - m)
        x1, y1 = np.minimum(w, x + bw + m), np.minimum(h, y + bh + m)
        s_box = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        n_ring = (x1 - x0) * (y1 - y0) - ar
        ok &= n_ring > 0
        mean_in = s_in / ar
        diff = mean_in - (s_box - s_in) / np.maximum(n_ring, 1)
        ok &= diff >= floor
        sides = (x == 0).astype(np.int64) + (y == 0) + (x + bw == w) + (y + bh == h)
        contrast = diff / gstd * cfg.border_penalty ** sides
        idx = np.nonzero(ok)[0]
        if idx.size == 0:
            continue
        c = contrast[idx]
        seed_score = c * np.maximum(mean_in[idx], 1e-6) ** cfg.brightness_power
        per_level.append((lab, n, idx + 1, c, seed_score, ar[idx]))
    if not per_level:
        return out
    best_seed = max(float(lv[4].max()) for lv in per_level)
    # Seeds: paint every level's seed components through a label lookup table, and remember
    # each seed pixel's seed contrast (the largest over the levels).
    seed_c = np.zeros((h, w), np.float32)
    for lab, n, ids, c, seed_score, ar in per_level:
        is_seed = seed_score >= cfg.seed_rel * best_seed
        if is_seed.any():
            lut = np.zeros(n, np.float32)
            lut[ids[is_seed]] = c[is_seed]
            np.maximum(seed_c, np.take(lut, lab), out=seed_c)
    seed_pixels = seed_c > 0
    out[seed_pixels] = 1
    if cfg.grow_rel >= 1.0 or not seed_pixels.any():
        return _fill(out, cfg)
    # Growth: a looser candidate joins if it overlaps seeds, keeps at least grow_rel of their
    # (mean) contrast, and is at most grow_area times their area inside it.
    lab_seed_c = seed_c[seed_pixels].astype(np.float64)
    min_seed_c = float(lab_seed_c.min())
    for lab, n, ids, c, seed_score, ar in per_level:
        if not (c >= cfg.grow_rel * min_seed_c).any():
            continue                    # nothing at this level could join any seed
        labs_at_seeds = lab[seed_pixels]
        n_seed = np.bincount(labs_at_seeds, minlength=n)[ids]
        sum_seed_c = np.bincount(labs_at_seeds, weights=lab_seed_c, minlength=n)[ids]
        mean_seed_c = sum_seed_c / np.maximum(n_seed, 1)
        join = ((n_seed > 0) & (c >= cfg.grow_rel * mean_seed_c)
                & (ar <= cfg.grow_area * n_seed))
        if join.any():
            lut = np.zeros(n, np.uint8)
            lut[ids[join]] = 1
            out |= np.take(lut, lab)
    return _fill(out, cfg)


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
    if soft.shape != (H, W):
        soft = cv2.resize(soft, (W, H), interpolation=cv2.INTER_LINEAR)
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
