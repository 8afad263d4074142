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
``sosmaskfuse_core.evaluation.mask_quality.DEFAULT_GRID`` picked to favour night street scenes
(people only) while keeping the 20 hand-labelled TNO masks (people, vehicles, a helicopter)
above 0.53 IoU; ``docs/thermal_mask.md`` gives the cross-validated figures on both sets. The
upright prior is the main trade-off: lower ``upright`` (e.g. 0.8) suits scenes where vehicles
matter as much as people.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .component_tree import select_objects
from .mask_config import ThermalMaskConfig

__all__ = [
    "ThermalMaskConfig",
    "ThermalHotObjectMasker",
    "thermal_hot_object_mask",
    "normalize_thermal",
]


def _to_gray_float(thermal: np.ndarray, black_hot: bool = False) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 (BGR) / HxWx4 array of any numeric dtype -> HxW array for cv2.resize.

    The result is uint8, uint16 or float32, which cv2.resize accepts, and finite (non-finite
    pixels get the coldest finite value: the minimum, or the maximum for ``black_hot``).
    """
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
    """Approximate percentiles of a float32 image from a histogram.

    Much faster than np.percentile; the resolution is (max - min) / bins.
    """
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return [lo] * len(qs)
    hist = cv2.calcHist([x], [0], None, [bins], [lo, hi + (hi - lo) * 1e-6]).ravel()
    cdf: np.ndarray = np.cumsum(hist)
    cdf /= cdf[-1]
    return [lo + (hi - lo) * (float(np.searchsorted(cdf, q / 100.0)) + 0.5) / bins for q in qs]


def normalize_thermal(
    thermal: np.ndarray, config: Optional[ThermalMaskConfig] = None
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
        g = cv2.resize(
            g, (max(2, round(W * s)), max(2, round(H * s))), interpolation=cv2.INTER_AREA
        )
    g = g.astype(np.float32, copy=False)
    lo, hi, base = _percentiles(g, (cfg.low_percentile, cfg.high_percentile, cfg.base_percentile))
    if not hi - lo > 1e-12 * max(1.0, abs(hi)):
        return np.zeros(g.shape, np.float32), 1.0
    if cfg.black_hot:
        g = -g
        lo, hi = -hi, -lo
        base = float(np.percentile(g, cfg.base_percentile))
    small = np.clip((g - lo) * (1.0 / (hi - lo)), 0.0, 1.0).astype(np.float32)
    return small, float(np.clip((base - lo) / (hi - lo), 0.0, 1.0))


def _feather(binary: np.ndarray, width: float) -> np.ndarray:
    """Soft version of a {0, 1} mask: sigmoid of the signed distance to its boundary.

    The 0.5 level lies on the boundary and the 12 %-88 % ramp is ``width`` pixels wide.
    """
    if width <= 0 or not binary.any() or binary.all():
        return binary.astype(np.float32)
    d_in = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - binary, cv2.DIST_L2, 3)
    signed = np.where(binary > 0, d_in - 0.5, 0.5 - d_out)
    z = np.clip(signed * (4.0 / width), -30.0, 30.0)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def _halo(binary: np.ndarray, radius: float, level: float) -> Optional[np.ndarray]:
    """``level`` x (the binary mask dilated by ``radius`` px and blurred), or None.

    The blur's sigma is radius / 2.
    """
    if radius <= 0 or level <= 0:
        return None
    r = max(1, int(round(radius)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    halo = cv2.GaussianBlur(cv2.dilate(binary, disk).astype(np.float32), (0, 0), radius / 2.0)
    return level * np.minimum(halo, 1.0, out=halo)


def thermal_hot_object_mask(
    thermal: np.ndarray, config: Optional[ThermalMaskConfig] = None
) -> np.ndarray:
    """Soft salient-hot-object mask of one thermal frame (float32 HxW in [0, 1]).

    See the module docstring for the method and the accepted input types.
    """
    cfg = config or ThermalMaskConfig()
    g = np.asarray(thermal)
    H, W = g.shape[:2]
    small, base = normalize_thermal(g, cfg)
    binary = select_objects(small, base, cfg)
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
