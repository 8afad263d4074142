"""Pre- and post-processing of SOSMaskFuse, exactly as the reference does it (docs/algorithm.md).

Everything here works on torch tensors so the same code runs on the CPU and on the GPU:
images are N x C x H x W; 3-channel images are in OpenCV's B, G, R channel order.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from sosmaskfuse_core.formats.image_codec import LUMA_WEIGHTS_BGR

log = logging.getLogger(__name__)

# SOS input normalisation, channel order B, G, R (section 1).
SOS_MEAN_BGR = (0.341 * 255, 0.360 * 255, 0.753 * 255)
SOS_STD_BGR = (0.208 * 255, 0.269 * 255, 0.241 * 255)
SOS_GRAY_WEIGHTS_BGR = (0.11, 0.59, 0.30)
PAPER_SOS_SIZE = (640, 480)  # width, height


def luma_u8(image: torch.Tensor) -> torch.Tensor:
    """8-bit gray of an N x C x H x W uint8 image.

    1 channel passes; 3 (BGR) or 4 (BGRA) channels become PIL-style luma.
    """
    if image.shape[1] == 1:
        return image
    if image.shape[1] not in (3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels, got {image.shape[1]}")
    b, g, r = (image[:, c : c + 1].to(torch.int32) for c in range(3))
    wb, wg, wr = LUMA_WEIGHTS_BGR
    return ((b * wb + g * wg + r * wr + 0x8000) >> 16).to(torch.uint8)


def resize_bilinear(x: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize, half-pixel centres, no antialiasing (OpenCV INTER_LINEAR on float)."""
    if tuple(x.shape[-2:]) == tuple(size_hw):
        return x
    return F.interpolate(x, size=size_hw, mode="bilinear", align_corners=False)


def sos_input(
    thermal_u8: torch.Tensor, size_wh: tuple[int, int] | None = PAPER_SOS_SIZE
) -> torch.Tensor:
    """The SOS network's input: normalise B, G, R, resize, collapse 0.11 B + 0.59 G + 0.30 R.

    `thermal_u8` is N x 1 x H x W (a gray image stands for three equal channels, as OpenCV's
    imread gives it) or N x 3 x H x W BGR. Normalisation and the channel collapse are affine,
    and bilinear weights sum to one, so collapsing before resizing equals the reference's
    order (normalise, resize, collapse) up to float rounding, at a third of the resize work.
    The work is done in float64: OpenCV computes the resize's source coordinates in double
    precision, and torch's float32 coordinates would differ by up to ~1e-4 on large frames.
    """
    x = thermal_u8.double()
    dev = x.device
    mean = torch.tensor(SOS_MEAN_BGR, device=dev, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(SOS_STD_BGR, device=dev, dtype=x.dtype).view(1, 3, 1, 1)
    w = torch.tensor(SOS_GRAY_WEIGHTS_BGR, device=dev, dtype=x.dtype).view(1, 3, 1, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] == 4:
        x = x[:, :3]
    g = ((x - mean) / std * w).sum(dim=1, keepdim=True)
    if size_wh is not None:
        g = resize_bilinear(g, (size_wh[1], size_wh[0]))
    return g.float()


def logit_to_probability(logit: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Sigmoid of the SOS logit upsampled to the image size (bilinear, align_corners=True)."""
    if tuple(logit.shape[-2:]) != tuple(size_hw):
        logit = F.interpolate(logit.float(), size=size_hw, mode="bilinear", align_corners=True)
    return torch.sigmoid(logit.float())


def quantize_mask(prob: torch.Tensor) -> torch.Tensor:
    """The reference's 8-bit mask: round(255 * p) saturated to 0..255, as uint8."""
    return torch.round(prob * 255.0).clamp_(0, 255).to(torch.uint8)


def minmax_to_u8(out: torch.Tensor, limits_of: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image min-max stretch with a truncating cast: floor(255 (x - min) / (max - min)).

    min and max are those of `limits_of` (N x C x H x W like `out`) when given, else of `out`
    (then clipped to 0..255). A constant image (where the reference divides by zero) becomes
    all zeros, with a warning.
    """
    flat = (out if limits_of is None else limits_of).float().flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    span = hi - lo
    constant = span <= 0
    if bool(constant.any()):
        log.warning(
            "fused output is constant (%d of %d images): written as zeros",
            int(constant.sum()),
            out.shape[0],
        )
    scaled = 255.0 * (out.float() - lo) / torch.where(constant, torch.ones_like(span), span)
    scaled = torch.where(constant, torch.zeros_like(scaled), scaled)
    return torch.floor(scaled).clamp_(0, 255).to(torch.uint8)


def clip_to_u8(out: torch.Tensor) -> torch.Tensor:
    """Round and clip decoder gray levels to 0..255 (no per-frame stretch: stable on video)."""
    return torch.round(out.float()).clamp_(0, 255).to(torch.uint8)


def fusion_mask(prob: torch.Tensor, threshold: float | None, quantize: bool) -> torch.Tensor:
    """The mask the fusion uses: thresholded, 8-bit quantised (the reference's) or soft."""
    if threshold is not None:
        return (prob >= threshold).float()
    if quantize:
        return quantize_mask(prob).float() / 255.0
    return prob.float().clamp(0.0, 1.0)


def with_chroma(
    fused: torch.Tensor, visible: torch.Tensor, visible_y: torch.Tensor
) -> torch.Tensor:
    """BGR image whose luma is `fused` and whose chroma (B-Y, G-Y, R-Y) is the visible image's."""
    return (
        (visible[:, :3].float() + (fused.float() - visible_y.float()))
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
    )
