"""Losses and image-quality measures of training: SSIM, MS-SSIM (torch, differentiable), PSNR."""

from __future__ import annotations

import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(
    size: int, sigma: float = 1.5, device=None, dtype=torch.float32
) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_and_cs(
    x: torch.Tensor, y: torch.Tensor, data_range: float, window_size: int = 11
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image ('valid' Gaussian window, sigma 1.5).

    The window shrinks to the image size where the image is smaller than `window_size`
    (small training crops at MS-SSIM's coarse scales), as the common PyTorch MS-SSIM does.
    """
    size = min(window_size, x.shape[-2], x.shape[-1])
    w = gaussian_window(size, device=x.device, dtype=x.dtype).expand(x.shape[1], 1, -1, -1)
    c = x.shape[1]
    mu_x = F.conv2d(x, w, groups=c)
    mu_y = F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    cs_map = (2 * sxy + c2) / (sxx + syy + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.flatten(1).mean(1), cs_map.flatten(1).mean(1)


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 255.0,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    normalize: bool = True,
) -> torch.Tensor:
    """Multi-scale SSIM, mean over the batch: prod_j cs_j^w_j (j < M) * ssim_M^w_M.

    normalize=True maps each scale's value v to (v + 1) / 2 before the power, so negative
    values early in training cannot produce NaN (the paper's training setting).
    """
    ws = torch.tensor(weights, device=x.device, dtype=x.dtype)
    css = []
    for level in range(len(weights)):
        s, cs = ssim_and_cs(x, y, data_range)
        if level < len(weights) - 1:
            css.append(cs)
            if min(x.shape[-2:]) >= 2:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    values = torch.stack(css + [s], dim=1)  # N x levels
    if normalize:
        values = (values + 1) / 2
    return torch.prod(values.clamp_min(1e-8) ** ws, dim=1).mean()


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    mse = F.mse_loss(x.float(), y.float())
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))
