"""SOS training batches from several folders: source weights, loss-weight maps, zoom, flips.

A batch is a pure function of (the sources, the settings, seed, step), so `--resume` replays
a run exactly. Each of its samples picks a source with probability proportional to the
source's weight, then an image of that source uniformly at random, then a random view of it:

* the whole frame resized to the network size (what the pipeline feeds the network), then
  zoomed by s (log-uniform in `scale_range`; s > 1 crops a part of the frame, s < 1 shrinks it
  and pads with reflected pixels whose loss weight is 0), with the aspect ratio changed by up to
  `aspect_jitter` (log-uniform) and a random position;
* flipped left-right with probability one half (`flip`).

The thermal image, the mask and the weight map (an image whose value / 255 is the pixel's
loss weight; all ones where a folder has none) get the same affine warp, bilinear as the
pipeline's resize.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from sosmaskfuse_core.pipeline.preprocessing import sos_input

__all__ = ["ViewConfig", "view_matrix", "warp_sample", "batch_plan", "sample_batch"]


@dataclass(frozen=True)
class ViewConfig:
    """How each training view is cut from its frame (see the module docstring)."""

    size: tuple[int, int]  # network input, width x height
    scale_range: tuple[float, float] | None = None  # None: always the whole frame (s = 1)
    aspect_jitter: float = 0.0  # the aspect ratio is multiplied by up to (1 + aspect_jitter)^+-1
    flip: bool = True

    def __post_init__(self) -> None:
        if self.scale_range is not None:
            lo, hi = self.scale_range
            if not 0 < lo <= hi:
                raise ValueError(f"scale range {self.scale_range}: expected 0 < low <= high")
        if self.aspect_jitter < 0:
            raise ValueError("aspect jitter must be >= 0")


def view_matrix(
    frame_wh: tuple[int, int], cfg: ViewConfig, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """The 2 x 3 matrix mapping output pixels to frame pixels (cv2.WARP_INVERSE_MAP) and the flip.

    Draws, in this order: the zoom, the aspect change, the position and the flip.
    """
    fw, fh = frame_wh
    ow, oh = cfg.size
    s = 1.0
    if cfg.scale_range is not None:
        lo, hi = cfg.scale_range
        s = math.exp(rng.uniform(math.log(lo), math.log(hi))) if hi > lo else lo
    a = 1.0
    if cfg.aspect_jitter > 0:
        j = math.log1p(cfg.aspect_jitter)
        a = math.exp(rng.uniform(-j, j))
    cw, ch = fw / (s * math.sqrt(a)), fh * math.sqrt(a) / s  # the window of the frame shown
    x0 = rng.uniform(min(0.0, fw - cw), max(0.0, fw - cw))
    y0 = rng.uniform(min(0.0, fh - ch), max(0.0, fh - ch))
    flip = bool(cfg.flip and rng.random() < 0.5)
    kx, ky = cw / ow, ch / oh
    if flip:  # output column u shows frame column of u' = ow - 1 - u
        m = np.array([[-kx, 0.0, x0 + (ow - 0.5) * kx - 0.5], [0.0, ky, y0 + 0.5 * ky - 0.5]])
    else:
        m = np.array([[kx, 0.0, x0 + 0.5 * kx - 0.5], [0.0, ky, y0 + 0.5 * ky - 0.5]])
    return m, flip


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    return image


def warp_sample(
    thermal: np.ndarray,
    mask: np.ndarray,
    weight: np.ndarray | None,
    cfg: ViewConfig,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(network input 1 x H x W, soft target 1 x H x W, loss weight 1 x H x W) of one random view.

    `thermal` is uint8 H x W (x 1 or x 3 BGR), `mask` uint8 H x W (x C, averaged), `weight`
    uint8 H x W or None (all ones). The mask and weight may be of another size than the
    thermal image: they are scaled to it first.
    """
    th = _gray(np.asarray(thermal))
    fh, fw = th.shape[:2]
    m, _ = view_matrix((fw, fh), cfg, rng)
    ow, oh = cfg.size
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    view = cv2.warpAffine(th, m, (ow, oh), flags=flags, borderMode=cv2.BORDER_REFLECT_101)
    mk: np.ndarray = np.asarray(mask, np.float32)
    if mk.ndim == 3:
        mk = mk.mean(axis=2)
    if mk.shape != (fh, fw):
        mk = cv2.resize(mk, (fw, fh), interpolation=cv2.INTER_LINEAR)
    target = cv2.warpAffine(
        mk / 255.0, m, (ow, oh), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )
    if weight is None:
        wt: np.ndarray = np.ones((fh, fw), np.float32)
    else:
        wt = _gray(np.asarray(weight)).astype(np.float32) / 255
    if wt.shape != (fh, fw):
        wt = cv2.resize(wt, (fw, fh), interpolation=cv2.INTER_LINEAR)
    # padding outside the frame carries no label: weight 0 there (ones, warped with a 0 border)
    w = cv2.warpAffine(
        wt,
        m,
        (ow, oh),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    t = torch.from_numpy(np.ascontiguousarray(view if view.ndim == 3 else view[:, :, None]))
    x = sos_input(t.permute(2, 0, 1)[None], None)[0]
    y = torch.from_numpy(np.clip(target, 0.0, 1.0)).float()[None]
    return x, y, torch.from_numpy(w).float()[None]


def batch_plan(
    sizes: Sequence[int], weights: Sequence[float], batch_size: int, seed: int, step: int
) -> list[tuple[int, int, int]]:
    """(source, image index, view seed) of each sample of batch `step`; a pure function."""
    if len(sizes) != len(weights) or not sizes:
        raise ValueError("one weight per source")
    w = np.array([wt if n > 0 else 0.0 for wt, n in zip(weights, sizes)], np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(
            f"source weights {list(weights)}: need non-negative weights of non-empty sources"
        )
    rng = np.random.default_rng([seed, step, 7])
    p = w / w.sum()
    plan = []
    for _ in range(batch_size):
        src = int(rng.choice(len(sizes), p=p))
        plan.append((src, int(rng.integers(sizes[src])), int(rng.integers(2**31))))
    return plan


def sample_batch(
    sources: Sequence[Sequence],
    weights: Sequence[float],
    cfg: ViewConfig,
    batch_size: int,
    seed: int,
    step: int,
    views: Sequence[ViewConfig] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch `step`: B x 1 x H x W inputs, targets and loss weights.

    `sources` are lists of samples with `.thermal`, `.mask` and `.weight` (None = all ones)
    arrays; `views` optionally gives each source its own ViewConfig (e.g. a larger zoom for
    drone images), default `cfg` for all.
    """
    plan = batch_plan([len(s) for s in sources], weights, batch_size, seed, step)
    xs, ys, ws = [], [], []
    for src, idx, view_seed in plan:
        sample = sources[src][idx]
        view = views[src] if views is not None else cfg
        x, y, w = warp_sample(
            sample.thermal,
            sample.mask,
            getattr(sample, "weight", None),
            view,
            np.random.default_rng(view_seed),
        )
        xs.append(x)
        ys.append(y)
        ws.append(w)
    return torch.stack(xs), torch.stack(ys), torch.stack(ws)
