"""What the quality table fuses and how it scores it: conditions, mask sources, target contrast.

* Conditions (`degrade`): `as-is`, or `dim`: the thermal image at 0.3 x its gray levels and the
  visible image brightened to 0.5 * vis + 128 (a dim 8-bit thermal camera next to a bright
  visible one; the gains the shipped defaults must survive). Metrics are computed against the
  images the fusion was given.
* Mask sources (`mask_variant`): the hand-drawn masks as they are, dilated or eroded by a
  radius (a mask a bit too big or too small); the classical thermal mask and the SOS network
  come from the pipeline.
* Target contrast kept (`target_contrast`): the formula of ../shared/tools/target_contrast.py,
  in process: TCR = (mean F in target - mean F in a ring) / (same for the IR image); the ring
  is the target dilated by `ring` pixels minus the target.
"""

from __future__ import annotations

import cv2
import numpy as np

CONDITIONS = ("as-is", "dim")
MASK_VARIANTS = ("hand", "hand-dilated", "hand-eroded")
DIM_IR_GAIN = 0.3
BRIGHT_VIS_GAIN, BRIGHT_VIS_OFFSET = 0.5, 128.0


def degrade(ir: np.ndarray, vis: np.ndarray, condition: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 gray pair under `condition` (clipped to 0..255, rounded)."""
    if condition == "as-is":
        return ir, vis
    if condition == "dim":
        dim = np.clip(np.round(ir.astype(np.float32) * DIM_IR_GAIN), 0, 255).astype(np.uint8)
        bright = np.clip(
            np.round(vis.astype(np.float32) * BRIGHT_VIS_GAIN + BRIGHT_VIS_OFFSET), 0, 255
        ).astype(np.uint8)
        return dim, bright
    raise ValueError(f"condition {condition!r}: expected one of {', '.join(CONDITIONS)}")


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def mask_variant(mask: np.ndarray, variant: str, radius: int = 8) -> np.ndarray:
    """A binary target mask as float32 {0, 1}: as is, dilated or eroded by `radius` pixels.

    Any dtype; above half its maximum is target.
    """
    binary = (np.asarray(mask, np.float32) > 0.5 * max(float(np.max(mask)), 1e-6)).astype(np.uint8)
    if variant == "hand":
        return binary.astype(np.float32)
    if variant == "hand-dilated":
        return cv2.dilate(binary, _disk(radius)).astype(np.float32)
    if variant == "hand-eroded":
        return cv2.erode(binary, _disk(radius)).astype(np.float32)
    raise ValueError(f"mask variant {variant!r}: expected one of {', '.join(MASK_VARIANTS)}")


def target_contrast(
    fused: np.ndarray, ir: np.ndarray, target: np.ndarray, ring: int = 15
) -> float:
    """TCR of one image (0.0 without a target or without IR contrast, as the shared tool)."""
    t = np.asarray(target) > 0.5
    if not t.any():
        return 0.0
    band = cv2.dilate(t.astype(np.uint8), _disk(ring)).astype(bool) & ~t
    f, a = np.asarray(fused, np.float64), np.asarray(ir, np.float64)
    if f.shape != t.shape or a.shape != t.shape:
        raise ValueError(f"target {t.shape}, fused {f.shape} and IR {a.shape} must have one size")
    ca = a[t].mean() - a[band].mean()
    return float((f[t].mean() - f[band].mean()) / ca) if abs(ca) > 1e-6 else 0.0


def rescale(image: np.ndarray, scale: float, nearest: bool = False) -> np.ndarray:
    """`image` resized by `scale` (area averaging; nearest for masks); scale 1 returns it."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
