"""Small image filters of the per-frame path, on the tensors' device: pyramid steps, resampling.

On the CPU the work goes to OpenCV (its SIMD filters are an order of magnitude faster than
PyTorch's depthwise convolutions on one-channel images), plane by plane on views of the tensors'
memory; on other devices the same operations run in PyTorch. Both follow the same definitions:

* `pyr_down`: Burt and Adelson's 5-tap binomial blur [1 4 6 4 1] / 16, then every second
  pixel, borders mirrored without repeating the edge pixel (OpenCV's `pyrDown`);
* `resize`: bilinear with half-pixel centres (OpenCV's INTER_LINEAR, PyTorch's
  align_corners=False);
* `dilate`: a square max filter of the given radius.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["dilate", "dilate_torch", "pyr_down", "pyr_down_torch", "resize", "resize_torch"]

_BINOMIAL = torch.tensor((1.0, 4.0, 6.0, 4.0, 1.0)) / 16.0


def _planes(x: torch.Tensor) -> np.ndarray:
    """A CPU tensor's N*C planes as an (N*C) x H x W float32 array sharing its memory."""
    return x.float().contiguous().reshape(-1, *x.shape[-2:]).numpy()


def _stack(planes: list[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    out = torch.from_numpy(np.stack(planes))
    return out.reshape(*like.shape[:-2], *out.shape[-2:])


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x C x ceil(H/2) x ceil(W/2): binomial blur, then every second pixel."""
    if x.device.type == "cpu":
        return _stack([cv2.pyrDown(p) for p in _planes(x)], x)
    return pyr_down_torch(x)


def pyr_down_torch(x: torch.Tensor) -> torch.Tensor:
    """`pyr_down` in PyTorch (what runs off the CPU; tested against OpenCV's)."""
    k = _BINOMIAL.to(x.device, torch.float32)
    c = x.shape[1]
    row, column = k.view(1, 1, 1, 5).expand(c, 1, 1, 5), k.view(1, 1, 5, 1).expand(c, 1, 5, 1)
    x = F.conv2d(F.pad(x.float(), (2, 2, 0, 0), mode="reflect"), row, groups=c)
    x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="reflect"), column, groups=c)
    return x[..., ::2, ::2]


def resize(x: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    """N x C x H x W resampled bilinearly to `size_hw` (no copy when it has that size)."""
    h, w = int(size_hw[0]), int(size_hw[1])
    if tuple(x.shape[-2:]) == (h, w):
        return x.float()
    if x.device.type == "cpu":
        planes = [cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in _planes(x)]
        return _stack(planes, x)
    return resize_torch(x, (h, w))


def resize_torch(x: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    """`resize` in PyTorch (what runs off the CPU; tested against OpenCV's)."""
    return F.interpolate(x.float(), size=tuple(size_hw), mode="bilinear", align_corners=False)


def dilate(x: torch.Tensor, radius: int) -> torch.Tensor:
    """N x C x H x W with every pixel the maximum of its (2 radius + 1)^2 square."""
    if radius < 1:
        return x
    if x.device.type == "cpu":
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        return _stack([cv2.dilate(p, kernel) for p in _planes(x)], x)
    return dilate_torch(x, radius)


def dilate_torch(x: torch.Tensor, radius: int) -> torch.Tensor:
    """`dilate` in PyTorch (what runs off the CPU; tested against OpenCV's)."""
    return F.max_pool2d(x.float(), 2 * radius + 1, stride=1, padding=radius)
