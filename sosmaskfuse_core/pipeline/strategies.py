"""Weight-free fusion strategies: IMV-F (the paper) and the mask-free SCA and addition baselines.

All functions take encoder feature maps N x C x H x W of one level and return the fused
map of the same shape. They are applied level by level (docs/algorithm.md, IMV-F);
`fusion_modes` says which mode runs which.

Everything is per pixel except SCA's channel weights, which use each channel's spatial mean
over the whole image. A caller that fuses the image in parts (`pipeline.bands`) computes
those means once over the whole image and passes them in (`channel_means`); without them
each call takes the means of the maps it is given, as the formula does.
"""

from __future__ import annotations

import torch

EPS = 1e-5


def spatial_channel_attention(
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = EPS,
    channel_means: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """SCA of two feature maps: (3 * channel-weighted + spatial-softmax-weighted) / 4.

    channel: p = spatial mean per channel, w_x = p_x / (p_x + p_y + eps);
    spatial: s = channel mean per pixel, v_x = exp(s_x) / (exp(s_x) + exp(s_y) + eps).
    `channel_means` = (p_x, p_y), N x C x 1 x 1, when x and y are parts of larger maps whose
    means they are; None takes the means of x and y. The arithmetic is the formula's,
    operation for operation; intermediate maps are updated in place, so a level costs a few
    full-size buffers instead of a dozen.
    """
    if channel_means is None:
        px = x.mean(dim=(2, 3), keepdim=True)
        py = y.mean(dim=(2, 3), keepdim=True)
    else:
        px, py = channel_means
    denom = px + py + eps
    channel = (px / denom) * x
    channel += (py / denom) * y
    ex = torch.exp(x.mean(dim=1, keepdim=True))
    ey = torch.exp(y.mean(dim=1, keepdim=True))
    denom = ex + ey + eps
    spatial = (ex / denom) * x
    spatial += (ey / denom) * y
    return channel.mul_(3.0).add_(spatial).div_(4.0)


def imvf(
    ir_fg: torch.Tensor,
    ir_bg: torch.Tensor,
    vis_fg: torch.Tensor,
    vis_bg: torch.Tensor,
    mu: float = 0.8,
    eps: float = EPS,
    bg_channel_means: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """IMV-F: foreground mu-weighted, background SCA blended with the visible background.

    F = (mu * A + (1 - mu) * C) + 0.6 * (W * S + (1 - W) * D) + 0.4 * D,
    S = SCA(B, D), W = S / (S + D + eps); A, B, C, D = ir_fg, ir_bg, vis_fg, vis_bg.
    Evaluated in this order, in fp32; only fresh intermediates are updated in place (safe for
    autograd too). `bg_channel_means`: SCA's `channel_means` of B and D.
    """
    s = spatial_channel_attention(ir_bg, vis_bg, eps, bg_channel_means)
    w = s + vis_bg
    w += eps
    w = s / w  # W = S / (S + D + eps)
    background = w * s
    background += (1.0 - w).mul_(vis_bg)
    out = mu * ir_fg
    out += (1.0 - mu) * vis_fg
    out += background.mul_(0.6)
    out += 0.4 * vis_bg
    return out


def addition(ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    """Mean of the two feature maps.

    DenseFuse's addition, halved to keep the decoder's input scale.
    """
    return 0.5 * (ir + vis)
