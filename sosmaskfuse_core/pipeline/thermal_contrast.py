"""Thermal targets that stay salient whatever the gains: the `imvf-contrast` fusion mode's maths.

The paper's IMV-F mixes *absolute* gray levels inside the mask (mu * ir + (1 - mu) * vis, the
autoencoder being close to linear), so a dim thermal target next to a bright visible scene
ends up darker than its visible-dominated surround. This module carries the target's thermal
*contrast against its own surround* into the fused image instead, placed on the fused image's
local background, and normalises that contrast for the thermal camera's gain and offset.

All functions take N x C x H x W float tensors (gray levels 0..255, masks in [0, 1]) and run
on whatever device the tensors are on; the cost is a few blurs on a grid ~sigma/3 coarser than
the image. Formulas (per pixel; m the soft mask, w = 1 - m, G a Gaussian of std sigma):

    P   = mu * ir + (1 - mu) * vis          the paper's foreground composite (image domain)
    BG  = fused - m * P                      the decoded background term (linear autoencoder)
    L_x = (G * (w x) + r <x>_w) / (G * w + r),  r = max(0, e G * 1 - G * w)
                                            local background mean of x, target pixels excluded;
                                            e = `fallback`, <x>_w the global background mean
    k   = clamp(255 / (p_high(ir) - p_low(ir)), 1, max_gain)   robust thermal gain
                                            (`thermal.stretch.ThermalStretch`)
    d   = thermal_weight * k * (ir - L_ir) + (1 - mu) * (vis - G_2px * vis)
    d'  = h tanh(d / h), h = 255 - L_F (d >= 0) or L_F (d < 0)  soft headroom, no clipping
    out = BG + m * (L_F + d')               with L_F = L of the background BG / w

Outside the mask (m = 0) the output is the paper's. Wherever m > 0 the foreground composite
has the same local level as the background it is blended with, so a soft, too large or too
small mask blends two images of equal local mean: no halo and no dark or bright ring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sosmaskfuse_core.thermal.stretch import ThermalStretch

__all__ = ["ContrastCarryConfig", "carry_thermal_contrast", "local_background"]


@dataclass(frozen=True)
class ContrastCarryConfig:
    """Settings of `carry_thermal_contrast` (the `imvf-contrast` mode).

    sigma: scale of the local background, as a fraction of the image's long side.
    thermal_weight: share of the (normalised) thermal contrast the target keeps (1 = all).
    detail_sigma: the visible image's fine detail (vis - Gaussian of this std, pixels) is kept
        inside targets with weight 1 - mu, as IMV-F keeps the visible there; 0 = none.
    saturate: compress the target contrast softly into the headroom left by its background
        (otherwise it is clipped at the output stage).
    fallback: weight of the global background mean where a target hides its whole surround.
    paper_range: with output_scaling `minmax`, stretch the result by the min and max of the
        paper's decoder output: the carry then changes the targets, not the
        whole image's stretch (a per-image minmax would re-stretch everything once the paper's
        dark targets are gone, amplifying the visible edges of low-contrast scenes).
    """

    sigma: float = 0.05
    thermal_weight: float = 1.0
    detail_sigma: float = 2.0
    saturate: bool = True
    fallback: float = 0.05
    paper_range: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.sigma <= 1.0:
            raise ValueError(f"ContrastCarryConfig: sigma {self.sigma} must lie in (0, 1]")
        if not 0.0 <= self.thermal_weight <= 4.0:
            raise ValueError(
                f"ContrastCarryConfig: thermal_weight {self.thermal_weight} must lie in [0, 4]"
            )
        if not 0.0 <= self.detail_sigma <= 20.0:
            raise ValueError(
                f"ContrastCarryConfig: detail_sigma {self.detail_sigma} must lie in [0, 20]"
            )
        if not 0.0 < self.fallback <= 1.0:
            raise ValueError(f"ContrastCarryConfig: fallback {self.fallback} must lie in (0, 1]")


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius 3 sigma) with zero padding."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(
        F.pad(x, (radius, radius, 0, 0)), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c
    )
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius)), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c
    )


def _fine_detail(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The image minus its Gaussian blur (edges replicated)."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    blurred = _gaussian_blur(F.pad(x, (r, r, r, r), mode="replicate"), sigma)[..., r:-r, r:-r]
    return x - blurred


def local_background(
    weighted: torch.Tensor, weight: torch.Tensor, sigma: float, fallback: float = 0.05
) -> torch.Tensor:
    """Local mean of images over their background: normalised convolution G*(w x) / G*w.

    weighted: N x C x H x W, the images already multiplied by the weight; weight: N x 1 x H x W
    in [0, 1] (1 = background). Where the weight vanishes over a whole neighbourhood (a target
    larger than the blur), the estimate falls back to the image's global background mean with
    weight `fallback` (relative to full support); with no background at all, to its plain mean.
    Computed on a grid downsampled by ~sigma/3 (area), blurred, upsampled bilinearly.
    """
    h, w = weighted.shape[-2:]
    factor = max(1, int(sigma // 3))
    wsum = weight.sum(dim=(2, 3), keepdim=True)
    global_mean = torch.where(
        wsum >= 1.0,
        weighted.sum(dim=(2, 3), keepdim=True) / wsum.clamp(min=1.0),
        weighted.mean(dim=(2, 3), keepdim=True),
    )
    stack = torch.cat([weighted, weight, torch.ones_like(weight)], 1)
    if factor > 1:
        stack = F.interpolate(
            stack, size=(max(1, round(h / factor)), max(1, round(w / factor))), mode="area"
        )
    blurred = _gaussian_blur(stack, sigma / factor)
    c = weighted.shape[1]
    num, den, support = blurred[:, :c], blurred[:, c : c + 1], blurred[:, c + 1 :]
    # where the background covers less than `fallback` of the blur's support, the missing weight
    # goes to the global background mean (no bias wherever there is enough background)
    deficit = (fallback * support - den).clamp(min=0.0)
    out = (num + deficit * global_mean) / (den + deficit).clamp(min=1e-6)
    if factor > 1:
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out


def carry_thermal_contrast(
    fused: torch.Tensor,
    ir: torch.Tensor,
    vis: torch.Tensor,
    mask: torch.Tensor,
    mu: float = 0.8,
    config: ContrastCarryConfig | None = None,
    gain: torch.Tensor | None = None,
    stretch: ThermalStretch | None = None,
) -> torch.Tensor:
    """Rebuild IMV-F's masked foreground as thermal contrast on the fused local background.

    fused: the paper's decoder output (N x 1 x H x W, gray levels) for these ir, vis, mask and
    mu; ir, vis: the fusion's inputs (N x 1 x H x W, 0..255); mask: the soft mask it used;
    gain: the thermal frames' gain (N x 1 x 1 x 1), which scales their contrast: the
    pipeline passes the one its `thermal_stretch` computed for the frame; without it, the
    gain of `stretch` (default `ThermalStretch()`).
    Returns the new decoder-scale image (before output scaling). See the module docstring.
    """
    cfg = config or ContrastCarryConfig()
    fused, ir, vis, mask = (t.float() for t in (fused, ir, vis, mask))
    sigma = cfg.sigma * max(ir.shape[-2:])
    background = fused - mask * (mu * ir + (1.0 - mu) * vis)
    weight = 1.0 - mask
    means = local_background(torch.cat([background, weight * ir], 1), weight, sigma, cfg.fallback)
    level, ir_level = means[:, :1], means[:, 1:]
    if gain is None:
        gain = (stretch or ThermalStretch()).limits(ir)[1]
    contrast = cfg.thermal_weight * gain * (ir - ir_level)
    if cfg.detail_sigma > 0 and mu < 1.0:
        contrast = contrast + (1.0 - mu) * _fine_detail(vis, cfg.detail_sigma)
    if cfg.saturate:
        room = torch.where(contrast >= 0, 255.0 - level, level).clamp(min=1.0)
        contrast = room * torch.tanh(contrast / room)
    return background + mask * (level + contrast)
