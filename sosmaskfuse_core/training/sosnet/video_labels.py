"""SOS training masks and loss-weight maps of a static thermal camera's video, from motion.

:func:`video_labels`: moving objects by background subtraction against the video's temporal
median (fitted to each frame's gain and offset), kept only where they persist over
neighbouring frames and have a warm part (so "ghosts" where a stationary object left are
dropped), joined with the classical hot-object mask's object-like components where they
touch. Hot objects that do not move are uncertain: person-like ones are ignored, large, wide
or border-running ones (warm walls, buildings) are weak background. Frames the camera moved
in are skipped. The result is a :class:`~.pseudo_labels.Label` per labelled frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .pseudo_labels import (
    Label,
    _components,
    _disk,
    _fill_holes,
    _gray_float,
    classical_agreement,
    object_like,
)

__all__ = ["VideoLabelConfig", "median_background", "motion_foreground", "video_labels"]


@dataclass(frozen=True)
class VideoLabelConfig:
    """Pseudo-labels of a static camera's video (see :func:`video_labels`)."""

    label_every: int = 15  # frames between two labelled frames
    neighbour: int = 3  # frames before and after used for temporal consistency
    median_frames: int = 61  # frames (spread over the video) in the temporal median
    diff_floor: float = 12.0  # grey levels: the smallest difference from the background
    diff_sigma: float = 4.0  # ... or this many robust sigmas of the frame's residual
    min_area: float = 0.0004  # smallest moving object, fraction of the frame
    max_area: float = 0.25  # largest moving object, fraction of the frame
    warm_fraction: float = 0.15  # share of a moving object warmer than the background
    change_gap: int = 10  # a moving object differs from the frames this far before or after ...
    changed_fraction: float = 0.1  # ... on at least this share of its pixels
    change_reach: int = 8  # px: moving pixels further than this from a changed pixel are dropped
    max_sigma_ratio: float = 2.5  # skip frames whose residual spread is this x the video's median
    max_moving: float = 0.3  # ... or whose moving share is above this (the camera moved)
    band: int = 2  # px around each object with weight `band_weight`
    band_weight: float = 0.3
    static_person_weight: float = 0.0  # weight of hot, object-like but static classical detections
    static_large_weight: float = 0.3  # background weight of static large/wide/border detections


def median_background(frames: Sequence[np.ndarray], count: int) -> np.ndarray:
    """Temporal median (float32) of ``count`` frames spread evenly over ``frames``."""
    n = len(frames)
    if n == 0:
        raise ValueError("no frames")
    idx = np.unique(np.linspace(0, n - 1, min(n, max(1, count))).round().astype(int))
    return np.median(np.stack([_gray_float(frames[i]) for i in idx]), axis=0).astype(np.float32)


def _fit_background(frame: np.ndarray, bg: np.ndarray, sub: int = 4) -> tuple[np.ndarray, float]:
    """The residual frame - (a bg + c) and its robust sigma, a and c fitted by least squares.

    The fit runs twice, the second time without the pixels whose residual is beyond 3 sigma;
    the fit and sigma use every ``sub``-th pixel of every ``sub``-th row.
    """
    x = bg[::sub, ::sub].ravel().astype(np.float64)
    y = frame[::sub, ::sub].ravel().astype(np.float64)
    use = np.ones(x.shape, bool)
    a, c = 1.0, 0.0
    for _ in range(2):
        xs, ys = x[use], y[use]
        if xs.size < 16 or xs.std() < 1e-6:
            break
        xm, ym = xs.mean(), ys.mean()
        a = float(((xs - xm) * (ys - ym)).sum() / ((xs - xm) ** 2).sum())
        c = float(ym - a * xm)
        res = y - (a * x + c)
        sigma = 1.4826 * np.median(np.abs(res - np.median(res))) + 1e-6
        use = np.abs(res) < 3 * sigma
    small = y - (a * x + c)
    sigma = 1.4826 * float(np.median(np.abs(small - np.median(small))))
    res = frame.astype(np.float32) - (np.float32(a) * bg.astype(np.float32) + np.float32(c))
    return res, sigma


def motion_foreground(
    frame: np.ndarray, bg: np.ndarray, cfg: VideoLabelConfig
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Moving objects of one frame against the background.

    Returns (cleaned moving-object mask, signed residual, share of pixels beyond the threshold
    before any cleaning, the residual's robust sigma).
    """
    g = _gray_float(frame)
    res, sigma = _fit_background(g, bg)
    thr = max(cfg.diff_floor, cfg.diff_sigma * sigma)
    fg = np.abs(res) > thr
    raw = float(fg.mean())
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
    h, w = fg.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    for k in range(1, n):
        area = stats[k, cv2.CC_STAT_AREA]
        if cfg.min_area * h * w <= area <= cfg.max_area * h * w:
            warm = np.count_nonzero(res[labels == k] > thr)
            keep[k] = warm >= cfg.warm_fraction * area
    return _fill_holes(keep[labels]), res, raw, sigma


def _frame_change(frames: Sequence[np.ndarray], t: int, cfg: VideoLabelConfig) -> np.ndarray:
    """Pixels of frame t that differ from frame t - gap or t + gap by more than the threshold.

    Each of the two frames is fitted to frame t's gain and offset first; the threshold is the
    background subtraction's.
    """
    g = _gray_float(frames[t])
    out = np.zeros(g.shape, bool)
    for u in (t - cfg.change_gap, t + cfg.change_gap):
        if 0 <= u < len(frames) and u != t:
            res, sigma = _fit_background(g, _gray_float(frames[u]))
            out |= np.abs(res) > max(cfg.diff_floor, cfg.diff_sigma * sigma)
    return out


def video_labels(
    frames: Sequence[np.ndarray], config: VideoLabelConfig | None = None, agreement=None
) -> dict[int, Label]:
    """Pseudo-labels ``{frame index: Label}`` of every ``label_every``-th frame of a static video.

    ``frames`` is a sequence of gray (or BGR) frames of one size; ``agreement(frame)`` returns
    the classical mask's vote (default :func:`classical_agreement`). A frame is labelled when
    its moving part is at most ``max_moving`` of the image and its residual spread at most
    ``max_sigma_ratio`` times the video's median (otherwise the camera or the gain moved and
    the frame is skipped; ``Label.info`` of the kept frames says what was found).
    """
    cfg = config or VideoLabelConfig()
    agreement = agreement or classical_agreement
    n = len(frames)
    if n < 2 * cfg.neighbour + 1:
        raise ValueError(
            f"a video of {n} frames is too short for {cfg.neighbour} neighbours a side"
        )
    bg = median_background(frames, cfg.median_frames)
    cache: dict[int, tuple[np.ndarray, float, float]] = {}

    def moving_of(i: int) -> tuple[np.ndarray, float, float]:
        if i not in cache:
            fg, _, raw, sigma = motion_foreground(frames[i], bg, cfg)
            cache[i] = (fg, raw, sigma)
        return cache[i]

    def fg_of(i: int) -> np.ndarray:
        return moving_of(i)[0]

    candidates = range(cfg.neighbour, n - cfg.neighbour, cfg.label_every)
    # the residual's spread over the video: a frame far above it no longer fits the background
    typical = float(
        np.median([_fit_background(_gray_float(frames[t]), bg)[1] for t in candidates])
    )
    out: dict[int, Label] = {}
    for t in candidates:
        fg, raw, sigma = moving_of(t)
        h, w = fg.shape
        if raw > cfg.max_moving or sigma > cfg.max_sigma_ratio * max(typical, 1.0):
            continue
        near = fg_of(t - cfg.neighbour) | fg_of(t + cfg.neighbour)
        near = cv2.dilate(near.astype(np.uint8), _disk(3)) > 0
        changed = _frame_change(frames, t, cfg)
        # a static region merged with moving people through touching pixels is cut off by
        # keeping only what lies near pixels that changed
        fg &= cv2.dilate(changed.astype(np.uint8), _disk(cfg.change_reach)) > 0
        fg = _fill_holes(fg)
        num, labels = _components(fg)
        moving = np.zeros((h, w), bool)
        unsure = np.zeros((h, w), bool)
        for k in range(1, num):
            comp = labels == k
            persists = (comp & near).sum() >= 0.3 * comp.sum()
            moved = (comp & changed).sum() >= cfg.changed_fraction * comp.sum()
            if persists and moved:
                moving |= comp
            else:  # flicker, or a static difference from the background (gain, a ghost)
                unsure |= comp
        votes = agreement(frames[t])
        hot = votes >= 0.5
        weight = np.ones((h, w), np.float32)
        mask = moving.copy()
        nh, hl = _components(hot)
        for k in range(1, nh):
            comp = hl == k
            if (comp & moving).any() and object_like(comp):
                mask |= comp  # the hot part of a moving object (not a warm wall it passes)
        static_people = static_large = 0
        ns, sl = _components((votes > 0) & ~mask | unsure & ~mask)
        for k in range(1, ns):
            comp = sl == k
            if object_like(comp):  # a standing person, a parked car, a lamp: not taught either way
                weight[comp] = cfg.static_person_weight
                static_people += 1
            else:  # a warm wall or building block: weak background
                weight[comp] = cfg.static_large_weight
                static_large += 1
        mask = _fill_holes(mask)
        if mask.any() and cfg.band > 0:
            ring = cv2.dilate(mask.astype(np.uint8), _disk(cfg.band)) > 0
            ring &= ~(cv2.erode(mask.astype(np.uint8), _disk(cfg.band)) > 0)
            weight[ring] = np.minimum(weight[ring], cfg.band_weight)
        for s in list(cache):  # keep the cache small
            if s < t - cfg.neighbour:
                del cache[s]
        out[t] = Label(
            np.where(mask, 255, 0).astype(np.uint8),
            weight,
            {
                "moving_fraction": float(moving.mean()),
                "static_person_like": static_people,
                "static_large": static_large,
            },
        )
    return out
