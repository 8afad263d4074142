"""Flicker of a fused video: how much the output changes between frames where its inputs do not.

`FlickerMeter` takes the frames of one stream in order (fused, thermal, visible, optionally the
mask) and accumulates, over every pair of consecutive frames t-1, t:

* `fused_change`: mean |F_t - F_{t-1}| (gray levels), and the same for each input;
* `ratio`: fused_change / the larger of the two inputs' mean change (1 = the output moves
  no more than its busiest input);
* `static_flicker` (over a `static_share` of the pixels): mean |F_t - F_{t-1}| over the
  pixels where neither input changed by more than `still` gray levels (after a 3x3 box blur,
  which keeps sensor noise out of the decision): output changes no motion explains, e.g. a
  per-frame stretch or a jittering mask;
* `mask_change`: mean |m_t - m_{t-1}| of the fusion mask, when given.

Frames are H x W arrays (uint8 gray levels, the mask in [0, 1]); a change of frame size
restarts the pairing (the first frame of a new size only starts a new pair).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class FlickerTotals:
    """Sums over frame pairs (see `FlickerMeter.summary` for the means)."""

    pairs: int = 0
    fused: float = 0.0
    ir: float = 0.0
    vis: float = 0.0
    static: float = 0.0
    static_pixels: float = 0.0
    pixels: float = 0.0
    mask: float = 0.0
    mask_pairs: int = 0


@dataclass
class FlickerMeter:
    """Accumulates the flicker of one stream; call `add` per frame, then `summary()`."""

    still: float = 2.0
    totals: FlickerTotals = field(default_factory=FlickerTotals)
    _prev: tuple | None = None

    def add(
        self, fused: np.ndarray, ir: np.ndarray, vis: np.ndarray, mask: np.ndarray | None = None
    ) -> None:
        frames = tuple(np.asarray(x, np.float32) for x in (fused, ir, vis))
        shapes = {f.shape for f in frames}
        if len(shapes) != 1 or frames[0].ndim != 2:
            raise ValueError(
                f"fused, thermal and visible frames must be H x W of one size, got "
                f"{[f.shape for f in frames]}"
            )
        m = None if mask is None else np.asarray(mask, np.float32)
        if m is not None and m.shape != frames[0].shape:
            raise ValueError(f"mask is {m.shape}, frames are {frames[0].shape}")
        prev, self._prev = self._prev, (frames, m)
        if prev is None or prev[0][0].shape != frames[0].shape:
            return
        (pf, pa, pb), pm = prev
        f, a, b = frames
        t = self.totals
        df, da, db = np.abs(f - pf), np.abs(a - pa), np.abs(b - pb)
        t.pairs += 1
        t.fused += float(df.mean())
        t.ir += float(da.mean())
        t.vis += float(db.mean())
        still = (cv2.blur(da, (3, 3)) <= self.still) & (cv2.blur(db, (3, 3)) <= self.still)
        t.static += float(df[still].sum())
        t.static_pixels += float(still.sum())
        t.pixels += float(still.size)
        if m is not None and pm is not None:
            t.mask += float(np.abs(m - pm).mean())
            t.mask_pairs += 1

    def reset(self) -> None:
        """Start a new stream (the next frame pairs with nothing); the totals are kept."""
        self._prev = None

    def summary(self) -> dict[str, float]:
        """Means over all pairs so far (NaN where there is nothing to average)."""
        t = self.totals
        n = t.pairs if t.pairs else float("nan")
        busiest = max(t.ir, t.vis) / n
        return {
            "pairs": float(t.pairs),
            "fused_change": t.fused / n,
            "ir_change": t.ir / n,
            "vis_change": t.vis / n,
            "ratio": (t.fused / n) / busiest if busiest > 0 else float("nan"),
            "static_flicker": t.static / t.static_pixels if t.static_pixels else float("nan"),
            "static_share": t.static_pixels / t.pixels if t.pixels else float("nan"),
            "mask_change": t.mask / t.mask_pairs if t.mask_pairs else float("nan"),
        }
