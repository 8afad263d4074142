"""SOS training masks and loss-weight maps from object boxes and the classical mask's agreement.

Each recipe returns ``Label(mask, weight)``: ``mask`` uint8 {0, 255} (salient = 255) and
``weight`` float32 in [0, 1] (0 = ignore the pixel in the loss, 1 = full weight):

* :func:`box_label` (HIT-UAV boxes): inside each object box, the part of the box that differs
  from the ring of pixels just outside it (hotter for people and bicycles; hotter *or* colder
  for vehicles, whose roofs are often cold), closed and hole-filled. The transition pixels of
  the box get a low weight, ``DontCare`` boxes weight 0; the rest of the image is confident
  background (the boxes list every person and vehicle).
* :func:`image_label` (single frames): the classical mask's agreement over several of its
  configurations; pixels where the variants disagree, and a band around every object, get a
  low weight; large, wide or border-running objects are ignored rather than taught, and warm
  pixels the mask left out are weak background (it misses people it cannot separate).

Videos of a static camera have their own recipe, :mod:`.video_labels`. Only NumPy and OpenCV;
no file I/O (:mod:`.sources` reads the data sets and writes the files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from sosmaskfuse_core.formats.voc_boxes import Box
from sosmaskfuse_core.thermal.hot_object_mask import thermal_hot_object_mask
from sosmaskfuse_core.thermal.mask_config import ThermalMaskConfig

__all__ = [
    "Box",
    "Label",
    "BoxLabelConfig",
    "ImageLabelConfig",
    "box_label",
    "image_label",
    "classical_agreement",
    "object_like",
]

#: Box classes that are people-like (hot part inside the box) and vehicle-like (hot or cold).
PERSON_CLASSES = ("person", "bicycle", "people", "pedestrian", "cyclist")
VEHICLE_CLASSES = ("car", "othervehicle", "vehicle", "truck", "bus", "motorcycle")
IGNORE_CLASSES = ("dontcare", "ignore")


@dataclass
class Label:
    """A training mask (uint8 {0, 255}) and its per-pixel loss weight (float32 in [0, 1])."""

    mask: np.ndarray
    weight: np.ndarray
    info: dict = field(default_factory=dict)

    def weight_u8(self) -> np.ndarray:
        return np.round(np.clip(self.weight, 0.0, 1.0) * 255.0).astype(np.uint8)


def _gray_float(image: np.ndarray) -> np.ndarray:
    g = np.asarray(image)
    if g.ndim == 3:
        g = cv2.cvtColor(g, cv2.COLOR_BGR2GRAY) if g.shape[2] == 3 else g[:, :, 0]
    return g.astype(np.float32)


def _fill_holes(binary: np.ndarray) -> np.ndarray:
    """Fill the holes of a bool mask (regions not reachable from the border)."""
    if not binary.any():
        return binary
    h, w = binary.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = binary
    flood = pad.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    return binary | (flood[1:-1, 1:-1] == 0)


def _keep_large_components(binary: np.ndarray, rel: float, min_area: int = 1) -> np.ndarray:
    """Components of at least ``rel`` x the largest's area (and ``min_area`` pixels)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return binary
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.nonzero((areas >= rel * areas.max()) & (areas >= min_area))[0] + 1
    return np.isin(labels, keep)


def _convex_hull(binary: np.ndarray) -> np.ndarray:
    """The filled convex hull of all foreground pixels (bool)."""
    pts = cv2.findNonZero(binary.astype(np.uint8))
    out = np.zeros(binary.shape, np.uint8)
    if pts is not None:
        cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    return (out > 0) | binary


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


# --- boxes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoxLabelConfig:
    """How a box becomes a mask (see :func:`box_label`)."""

    ring: int = 3  # px: width of the ring outside the box that gives the local background level
    k_sigma: float = 3.0  # a pixel differs from the background by > k x its robust spread ...
    rel_peak: float = 0.3  # ... and by > this fraction of the box's extreme difference
    min_fill: float = 0.1  # a derived mask under this fraction of the box (a third of it for
    # bicycles, whose rider fills little of the box) falls back to an ellipse
    fallback_weight: float = 0.3  # weight of the fallback ellipse and of a box's transition pixels
    dontcare_margin: int = 2  # px added around DontCare boxes (weight 0)

    def __post_init__(self) -> None:
        if self.ring < 1 or self.k_sigma < 0 or not 0 <= self.rel_peak < 1:
            raise ValueError("BoxLabelConfig: ring >= 1, k_sigma >= 0, 0 <= rel_peak < 1")
        if not 0 <= self.min_fill < 1 or not 0 <= self.fallback_weight <= 1:
            raise ValueError("BoxLabelConfig: 0 <= min_fill < 1, 0 <= fallback_weight <= 1")


def _clip_box(box: Box, w: int, h: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
    x1, y1 = min(w - 1, int(box.x1)), min(h - 1, int(box.y1))
    return (x0, y0, x1, y1) if x1 >= x0 and y1 >= y0 else None


def _ellipse(h: int, w: int) -> np.ndarray:
    """The ellipse inscribed in an h x w box (bool)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    return ((yy - cy) / max(h / 2.0, 0.5)) ** 2 + ((xx - cx) / max(w / 2.0, 0.5)) ** 2 <= 1.0


def box_label(
    image: np.ndarray, boxes: Sequence[Box], config: BoxLabelConfig | None = None
) -> Label:
    """Mask and weight of one image from its object boxes (see the module docstring).

    For each box, the background level b and spread s are the median and 1.4826 x MAD of a
    ``ring``-pixel band just outside it (other boxes excluded). A box pixel belongs to the
    object when its difference d from b is beyond max(k_sigma x s, rel_peak x the box's
    largest such difference): d > 0 for people and bicycles; for vehicles also -d beyond the
    same bound taken over the cold side. The largest
    pieces are closed and hole-filled (people) or replaced by their convex hull (vehicles: a
    hot bonnet and a cold roof make one car). Box pixels that are neither clearly object nor at the
    background level get ``fallback_weight``; a box without such a part gets an inscribed
    ellipse at ``fallback_weight``, and so does a box whose ring is mostly covered by other boxes
    (a parking row). Unknown classes are treated like vehicles.
    """
    cfg = config or BoxLabelConfig()
    g = _gray_float(image)
    h, w = g.shape
    mask = np.zeros((h, w), bool)
    weight = np.ones((h, w), np.float32)
    inside_any = np.zeros((h, w), bool)
    clipped = []
    for box in boxes:
        c = _clip_box(box, w, h)
        clipped.append(c)
        if c is not None:
            inside_any[c[1] : c[3] + 1, c[0] : c[2] + 1] = True
    fallbacks = 0
    for box, c in zip(boxes, clipped):
        if c is None:
            continue
        x0, y0, x1, y1 = c
        kind = box.label.strip().lower()
        if kind in IGNORE_CLASSES:
            m = cfg.dontcare_margin
            weight[max(0, y0 - m) : y1 + m + 1, max(0, x0 - m) : x1 + m + 1] = 0.0
            continue
        r = cfg.ring
        ry0, ry1, rx0, rx1 = max(0, y0 - r), min(h, y1 + r + 1), max(0, x0 - r), min(w, x1 + r + 1)
        ring = ~inside_any[ry0:ry1, rx0:rx1]
        values = g[ry0:ry1, rx0:rx1][ring]
        bh, bw = y1 - y0 + 1, x1 - x0 + 1
        if values.size < 0.25 * (ring.size - bh * bw) or values.size < 4:
            # boxes packed together (a parking row): no background level to compare with
            sub = mask[y0 : y1 + 1, x0 : x1 + 1]
            np.logical_or(sub, _ellipse(bh, bw), out=sub)
            wsub = weight[y0 : y1 + 1, x0 : x1 + 1]
            np.minimum(wsub, cfg.fallback_weight, out=wsub)
            fallbacks += 1
            continue
        b = float(np.median(values))
        s = 1.4826 * float(np.median(np.abs(values - b))) + 1.0
        d = g[y0 : y1 + 1, x0 : x1 + 1] - b
        vehicle = kind not in PERSON_CLASSES
        thr = max(cfg.k_sigma * s, cfg.rel_peak * float(d.max(initial=0.0)))
        obj = d > thr
        if vehicle:  # the cold side on its own scale: a hot bonnet must not hide a cold roof
            thr_cold = max(cfg.k_sigma * s, cfg.rel_peak * float((-d).max(initial=0.0)))
            obj |= -d > thr_cold
            thr = min(thr, thr_cold)
            d = np.abs(d)
        if obj.any():
            obj = (
                cv2.morphologyEx(obj.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
                > 0
            )
            obj = _keep_large_components(obj, 0.2)
            obj = _convex_hull(obj) if vehicle else _fill_holes(obj)
        sure = obj | (d <= max(s, 0.5 * thr))
        box_w = np.where(sure, 1.0, cfg.fallback_weight).astype(np.float32)
        min_fill = cfg.min_fill if kind == "person" or vehicle else cfg.min_fill / 3
        if obj.sum() < min_fill * bh * bw:
            obj = _ellipse(bh, bw)
            box_w = np.full((bh, bw), cfg.fallback_weight, np.float32)
            fallbacks += 1
        sub = mask[y0 : y1 + 1, x0 : x1 + 1]
        sub |= obj
        wsub = weight[y0 : y1 + 1, x0 : x1 + 1]
        np.minimum(wsub, box_w, out=wsub)
    # an object pixel of one box stays object even where an overlapping box called it background
    return Label(
        np.where(mask, 255, 0).astype(np.uint8),
        weight,
        {"boxes": len(boxes), "fallbacks": fallbacks},
    )


# --- the classical mask's agreement ------------------------------------------------------------

#: Variants of the classical mask whose agreement gives a pseudo-label's confidence: the
#: defaults, the "any hot object" setting (no shape prior) and a finer working size.
AGREEMENT_VARIANTS: tuple[dict, ...] = (
    {},
    {"upright": 0.8, "brightness_power": 1.0},
    {"work_size": 240},
)


def classical_agreement(
    image: np.ndarray, variants: Sequence[dict] = AGREEMENT_VARIANTS
) -> np.ndarray:
    """Fraction (float32 H x W in [0, 1]) of the classical-mask variants that mark each pixel."""
    g = np.asarray(image)
    votes = np.zeros(g.shape[:2], np.float32)
    for changes in variants:
        cfg = ThermalMaskConfig(halo=0.0).replace(**changes)
        votes += thermal_hot_object_mask(g, cfg) >= 0.5
    return votes / max(1, len(variants))


def object_like(
    component: np.ndarray,
    max_area: float = 0.04,
    max_aspect: float = 3.5,
    border_run: float = 0.3,
    upright_area: float = 0.2,
    upright: float = 1.3,
) -> bool:
    """Whether a component (bool H x W) could be a person or a vehicle rather than a wall.

    It is when it covers at most ``max_area`` of the frame (or, when it is at least
    ``upright`` times as tall as wide, as a person close to the camera is, ``upright_area``),
    is at most ``max_aspect`` times as wide as tall (a car from the side is about 2.5 times),
    and runs along the image border for less than ``border_run`` of its bounding box's
    perimeter.
    """
    h, w = component.shape
    ys, xs = np.nonzero(component)
    if ys.size == 0:
        return False
    bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    limit = upright_area if bh >= upright * bw else max_area
    if ys.size > limit * h * w or bw > max_aspect * bh:
        return False
    run = component[0].sum() + component[-1].sum() + component[:, 0].sum() + component[:, -1].sum()
    return run < border_run * 2 * (bh + bw)


def _components(binary: np.ndarray) -> tuple[int, np.ndarray]:
    n, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    return n, labels


@dataclass(frozen=True)
class ImageLabelConfig:
    """Single-frame pseudo-labels from the classical mask's agreement (see :func:`image_label`)."""

    agree: float = 0.66  # label salient where at least this fraction of the variants agree
    band: int = 2  # px around each object (at full resolution) given weight `band_weight`
    band_weight: float = 0.3
    unsure_weight: float = 0.0  # pixels marked by some variants but below `agree`
    large_weight: float = 0.0  # objects that are not object_like: ignored by default
    warm_percentile: float = 90.0  # unmarked pixels warmer than this percentile of the frame ...
    warm_weight: float = 0.3  # ... are weak background (the classical mask misses some people)


def image_label(
    image: np.ndarray, config: ImageLabelConfig | None = None, agreement: np.ndarray | None = None
) -> Label:
    """Pseudo-label of one thermal frame from the classical mask (see the module docstring)."""
    cfg = config or ImageLabelConfig()
    a = classical_agreement(image) if agreement is None else agreement
    sure = a >= cfg.agree - 1e-6
    some = a > 0
    weight = np.ones(a.shape, np.float32)
    g = _gray_float(image)
    warm = g > np.percentile(g, cfg.warm_percentile)
    weight[some & ~sure] = cfg.unsure_weight
    mask = np.zeros(a.shape, bool)
    n, labels = _components(sure)
    dropped = 0
    for k in range(1, n):
        comp = labels == k
        if object_like(comp):
            mask |= comp
        else:
            weight[comp] = np.minimum(weight[comp], cfg.large_weight)
            dropped += 1
    weight[warm & ~mask] = np.minimum(weight[warm & ~mask], cfg.warm_weight)
    if mask.any() and cfg.band > 0:
        ring = cv2.dilate(mask.astype(np.uint8), _disk(cfg.band)) > 0
        ring &= ~(cv2.erode(mask.astype(np.uint8), _disk(cfg.band)) > 0)
        weight[ring] = np.minimum(weight[ring], cfg.band_weight)
    return Label(
        np.where(mask, 255, 0).astype(np.uint8),
        weight,
        {"objects": n - 1 - dropped, "not_object_like": dropped},
    )
