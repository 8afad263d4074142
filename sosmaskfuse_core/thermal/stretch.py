"""The gain and offset normaliser of 8-bit thermal frames: a robust percentile stretch in torch.

A thermal camera's gain and offset change a target's gray levels, not what it is. `ThermalStretch`
maps each frame's robust range (percentiles) to 0..255 with a bounded gain, so what sees the
stretched frame (the SOS network, `mask_input_stretch`) and what is scaled by its gain (the
`imvf-contrast` carry) do not depend on the camera's settings. `limits` is computed once per
frame and shared by both. Everything runs on the tensors' device without a host round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["StretchLimits", "ThermalStretch", "percentile_levels"]

#: Per image (N x 1 x 1 x 1 each): the level mapped to 0, and the gain.
StretchLimits = tuple[torch.Tensor, torch.Tensor]


def percentile_levels(x: torch.Tensor, percents: tuple[float, ...]) -> torch.Tensor:
    """Per-image percentiles (N x len(percents)) of gray levels 0..255, from a 256-bin histogram.

    For each percent q: the smallest level v (levels rounded to integers) with at least q % of
    the image's pixels at or below v (0 % gives the minimum, 100 % the maximum). The histogram
    is a scatter-add into a fixed 256 bins (unlike `bincount`, no host synchronisation on CUDA).
    """
    n = x.shape[0]
    levels = x.reshape(n, -1).float().round().clamp(0, 255).long()
    hist = torch.zeros((n, 256), dtype=torch.float64, device=x.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    cdf = hist.cumsum(1) / levels.shape[1]
    q = torch.tensor(percents, dtype=torch.float64, device=x.device).view(1, -1) / 100.0
    idx = torch.searchsorted(cdf.contiguous(), (q - 1e-9).expand(n, -1).contiguous())
    return idx.clamp(0, 255).float()


@dataclass(frozen=True)
class ThermalStretch:
    """Robust percentile stretch of 8-bit thermal frames: the gain and offset normaliser.

    low_percent / high_percent: the levels mapped to 0 and 255.
    max_gain: the largest gain (a nearly flat frame is not blown up into noise); the gain is
        never below 1 (a frame that already spans 0..255 is left alone).
    """

    low_percent: float = 0.5
    high_percent: float = 99.5
    max_gain: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_percent < self.high_percent <= 100.0:
            raise ValueError(
                f"ThermalStretch: need 0 <= low_percent < high_percent <= 100, got "
                f"{self.low_percent} and {self.high_percent}"
            )
        if not 1.0 <= self.max_gain <= 255.0:
            raise ValueError(f"ThermalStretch: max_gain {self.max_gain} must lie in [1, 255]")

    def limits(self, ir: torch.Tensor) -> StretchLimits:
        """Per image (N x 1 x 1 x 1): the level mapped to 0 and the gain (in [1, max_gain])."""
        levels = percentile_levels(ir, (self.low_percent, self.high_percent))
        lo, hi = levels[:, 0], levels[:, 1]
        gain = (255.0 / (hi - lo).clamp(min=1.0)).clamp(1.0, self.max_gain)
        span = 255.0 / gain
        # a span widened by the gain limit is centred on the percentile interval, inside 0..255
        lo = torch.minimum((0.5 * (lo + hi) - 0.5 * span).clamp(min=0.0), 255.0 - span)
        return lo.view(-1, 1, 1, 1), gain.view(-1, 1, 1, 1)

    def __call__(self, ir: torch.Tensor, limits: StretchLimits | None = None) -> torch.Tensor:
        """The stretched frames, float 0..255 (clipped); `limits` if already computed."""
        lo, gain = limits if limits is not None else self.limits(ir)
        return ((ir.float() - lo) * gain).clamp(0.0, 255.0)
