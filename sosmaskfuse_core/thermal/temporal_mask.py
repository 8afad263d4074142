"""Temporal smoothing of a video's salient-object mask: an EMA that lets moving targets through.

A per-frame mask (SOS network or classical thermal mask) jitters from frame to frame, and
IMV-F turns every jitter into a change of the fused image. `MaskSmoother` keeps one state
(the last smoothed probability and the last thermal frame) and blends each new probability
into it:

    a(x)  = alpha + (1 - alpha) * clamp(|blur(ir_t - ir_{t-1})|(x) / motion_scale, 0, 1)
    out_t = a * p_t + (1 - a) * out_{t-1}

so static regions are averaged over ~1/alpha frames while pixels whose thermal value changed
(a target walking in or out) follow the new mask at once, without trails. Without a thermal
frame, a = alpha everywhere. The state resets itself when the frame size changes or when the
whole thermal frame changed by more than `cut_change` gray levels on average (a scene cut or
a camera switch), and on `reset()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

Array = Union[np.ndarray, torch.Tensor]


@dataclass(frozen=True)
class MaskSmootherConfig:
    """The smoother's constants.

    alpha: weight of the new frame in static regions (1 = no smoothing).
    motion_scale: thermal change (gray levels, after a 3x3 box blur) at which a pixel follows
        the new mask fully; 0 disables the motion cue.
    cut_change: mean absolute thermal change (gray levels) that resets the state.
    """

    alpha: float = 0.4
    motion_scale: float = 12.0
    cut_change: float = 40.0

    @classmethod
    def from_setting(cls, mask_smoothing: float) -> MaskSmootherConfig:
        """The config of the `mask_smoothing` setting (the past's weight: alpha = 1 - it)."""
        return cls(alpha=1.0 - float(mask_smoothing))

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"MaskSmootherConfig: alpha {self.alpha} must lie in (0, 1]")
        if self.motion_scale < 0.0:
            raise ValueError(f"MaskSmootherConfig: motion_scale {self.motion_scale} must be >= 0")
        if not self.cut_change > 0.0:
            raise ValueError(f"MaskSmootherConfig: cut_change {self.cut_change} must be > 0")


def _as_tensor(x: Array, what: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"{what}: expected a NumPy array or a torch tensor, got {type(x).__name__}"
        )
    if t.ndim != 2:
        raise ValueError(f"{what}: expected an H x W image, got shape {tuple(t.shape)}")
    t = t.float()
    if not torch.isfinite(t).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    return t


class MaskSmoother:
    """Stateful EMA of one stream's mask probability: `update(prob, thermal) -> prob`, `reset()`.

    One instance per video stream; not thread-safe (one stream is one sequence of frames).
    """

    def __init__(self, config: MaskSmootherConfig | None = None) -> None:
        self.config = config or MaskSmootherConfig()
        self._prob: torch.Tensor | None = None
        self._thermal: torch.Tensor | None = None

    @property
    def state(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(last smoothed probability, last thermal frame), or Nones after a reset."""
        return self._prob, self._thermal

    def reset(self) -> None:
        """Forget the past: the next update returns its probability unchanged."""
        self._prob = None
        self._thermal = None

    def update(self, prob: Array, thermal: Array | None = None) -> Array:
        """The smoothed probability (H x W, same kind as `prob`) after this frame.

        prob: H x W in [0, 1]; thermal: the H x W gray thermal frame the mask came from
        (enables the motion cue and the scene-cut reset), same size as prob. Both are checked
        (finite, two-dimensional, the same size).
        """
        p = _as_tensor(prob, "mask probability").clamp(0.0, 1.0)
        ir = None if thermal is None else _as_tensor(thermal, "thermal frame").to(p.device)
        if ir is not None and ir.shape != p.shape:
            raise ValueError(
                f"thermal frame is {tuple(ir.shape)} but the mask is {tuple(p.shape)}"
            )
        out = self._step(p, ir)
        if isinstance(prob, np.ndarray):
            return out.cpu().numpy().astype(np.float32)
        return out.to(prob.dtype) if prob.is_floating_point() else out

    def update_batch(self, probs: torch.Tensor, thermals: torch.Tensor) -> torch.Tensor:
        """`update` over N consecutive frames of the stream, in order (N x 1 x H x W each).

        For the pipeline's own tensors (finite by construction): nothing here waits for the
        device, so on a GPU the smoothing runs between the SOS network and the autoencoder
        without a host round trip.
        """
        if probs.ndim != 4 or probs.shape[1] != 1 or thermals.shape != probs.shape:
            raise ValueError(
                f"expected N x 1 x H x W probabilities and thermal frames of one shape, got "
                f"{tuple(probs.shape)} and {tuple(thermals.shape)}"
            )
        steps = [
            self._step(p[0].float().clamp(0.0, 1.0), t[0].float()) for p, t in zip(probs, thermals)
        ]
        return torch.stack(steps)[:, None]

    def _step(self, p: torch.Tensor, ir: torch.Tensor | None) -> torch.Tensor:
        """One frame: the blended probability, kept as the new state (no host synchronisation)."""
        if self._prob is not None and (
            self._prob.shape != p.shape
            or self._prob.device != p.device
            or (ir is None) != (self._thermal is None)
        ):
            self.reset()
        if self._prob is None:
            out = p.clone()
        elif ir is None:
            out = self.config.alpha * p + (1.0 - self.config.alpha) * self._prob
        else:
            assert self._thermal is not None
            change = (ir - self._thermal).abs()
            a = torch.full_like(p, self.config.alpha)
            if self.config.motion_scale > 0:
                local = F.avg_pool2d(change[None, None], 3, 1, 1, count_include_pad=False)[0, 0]
                a = a + (1.0 - a) * (local / self.config.motion_scale).clamp(0.0, 1.0)
            cut = change.mean() > self.config.cut_change  # a scene cut starts afresh
            out = torch.where(cut, p, a * p + (1.0 - a) * self._prob)
        self._prob, self._thermal = out, ir
        return out
