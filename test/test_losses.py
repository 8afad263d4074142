"""Training losses: SSIM against scikit-image; MS-SSIM's scale weights checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from sosmaskfuse_core.training import losses

# Wang, Simoncelli, Bovik (2003), Table 1: exponents from the finest scale (1) to the coarsest (5).
PUBLISHED_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def t(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, np.float64))[None, None]


def textured(seed: int, shape=(96, 112)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(0, 1, shape), 4) * 400 + 120
    return np.clip(smooth + rng.normal(0, 10, shape), 0, 255)


def reference_ssim_cs(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple[float, float]:
    """Mean SSIM (scikit-image) and mean contrast-structure term (scipy) of one scale.

    Gaussian sigma 1.5 with 11 taps, population statistics, over the 'valid' windows.
    """
    ssim = structural_similarity(
        x,
        y,
        data_range=data_range,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )

    def filt(image):  # scikit-image's filter; cropping 5 px per side leaves the valid windows
        return ndimage.gaussian_filter(image, 1.5, truncate=3.5)[5:-5, 5:-5]

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    c2 = (0.03 * data_range) ** 2
    return ssim, float(np.mean((2 * sxy + c2) / (sxx + syy + c2)))


def pool2(image: np.ndarray) -> np.ndarray:
    """2x2 averaging, odd rows and columns dropped (avg_pool2d's floor)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def test_weights_are_the_published_ones_finest_scale_first():
    assert losses.MS_SSIM_WEIGHTS == PUBLISHED_WEIGHTS
    assert sum(PUBLISHED_WEIGHTS) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_single_scale_ssim_and_cs_match_scikit_image(seed):
    x = textured(seed)
    y = np.clip(x + np.random.default_rng(seed + 10).normal(0, 25, x.shape), 0, 255)
    ssim, cs = losses.ssim_and_cs(t(x), t(y), data_range=255.0)
    want_ssim, want_cs = reference_ssim_cs(x, y, 255.0)
    assert ssim.item() == pytest.approx(want_ssim, rel=1e-9)
    assert cs.item() == pytest.approx(want_cs, rel=1e-9)
    assert 0.2 < want_ssim < 0.95 and want_ssim < want_cs  # a case where the terms differ


def test_ssim_of_constant_images_by_hand():
    ssim, cs = losses.ssim_and_cs(t(np.full((16, 16), 100.0)), t(np.full((16, 16), 150.0)), 255.0)
    c1 = (0.01 * 255) ** 2
    assert cs.item() == pytest.approx(1.0)  # no variance: (0 + c2) / (0 + c2)
    assert ssim.item() == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1))


@pytest.mark.parametrize("normalize", [True, False])
def test_ms_ssim_of_constant_images_is_the_last_scale_ssim_to_its_weight(normalize):
    """The cs term is 1 at every scale: only the coarsest SSIM and its exponent remain."""
    a, b = 100.0, 150.0
    c1 = (0.01 * 255) ** 2
    s = (2 * a * b + c1) / (a * a + b * b + c1)  # 0.92309...
    v = (s + 1) / 2 if normalize else s
    got = losses.ms_ssim(
        t(np.full((64, 64), a)), t(np.full((64, 64), b)), data_range=255.0, normalize=normalize
    )
    assert got.item() == pytest.approx(v**0.1333, rel=1e-9)
    assert abs(v**0.1333 - v**0.0448) > 2e-3  # the reversed weights would be told apart


def test_ms_ssim_combines_the_five_scales_with_the_published_exponents():
    """Noise only at the finest scale: cs_1 is low, the coarse scales are near 1."""
    x = textured(3, (192, 208))  # 12x13 at the fifth scale: the full window fits
    checker = np.indices(x.shape).sum(axis=0) % 2 * 2 - 1  # +-1, averages out at scale 2
    y = np.clip(x + 30 * checker, 0, 255)
    values, xs, ys = [], x, y
    for level in range(5):
        ssim, cs = reference_ssim_cs(xs, ys, 255.0)
        values.append(cs if level < 4 else ssim)
        xs, ys = pool2(xs), pool2(ys)
    assert values[0] < 0.6 and min(values[1:]) > 0.9  # what makes the weights matter
    for normalize in (True, False):
        v = [(u + 1) / 2 for u in values] if normalize else values
        want = math.prod(u**w for u, w in zip(v, PUBLISHED_WEIGHTS))
        reversed_weights = math.prod(u**w for u, w in zip(v, PUBLISHED_WEIGHTS[::-1]))
        got = losses.ms_ssim(t(x), t(y), data_range=255.0, normalize=normalize).item()
        assert got == pytest.approx(want, rel=1e-9)
        assert abs(want - reversed_weights) > 0.02


def test_ms_ssim_is_the_batch_mean_and_one_for_identical_images():
    x, y = textured(4, (64, 80)), textured(5, (64, 80))
    batch_x = torch.cat([t(x), t(x)])
    batch_y = torch.cat([t(x), t(y)])
    pair = losses.ms_ssim(t(x), t(y)).item()
    assert losses.ms_ssim(t(x), t(x)).item() == pytest.approx(1.0)
    assert losses.ms_ssim(batch_x, batch_y).item() == pytest.approx((1.0 + pair) / 2)


def test_ms_ssim_without_normalisation_never_gives_nan_for_anticorrelated_images():
    x = textured(6, (64, 64))
    got = losses.ms_ssim(t(x), t(255 - x), normalize=False)
    assert torch.isfinite(got) and got.item() >= 0


def test_ms_ssim_is_differentiable():
    x = t(textured(7, (64, 64))).requires_grad_()
    y = t(textured(8, (64, 64)))
    (1 - losses.ms_ssim(x, y)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_psnr_by_hand():
    x = torch.zeros(1, 1, 4, 4)
    y = x.clone()
    y[0, 0, 0, 0] = 16.0  # MSE = 256 / 16 = 16
    assert losses.psnr(x, y).item() == pytest.approx(10 * math.log10(255**2 / 16), rel=1e-6)
