"""What two cameras of different modalities share: where edges run, not how bright things are.

A thermal and a visible image of one scene differ in brightness, contrast and even polarity (a
warm wall is bright in one, dark in the other), but their edges mostly lie in the same places
and run the same way. `orientation_field` turns a gray image into the doubled-angle edge
orientation (cos 2a, sin 2a), weighted by a normalised edge strength (a normalised gradient
field): two channels that do not change with brightness, contrast or polarity, and whose
correlation between the two cameras peaks where they are aligned. `docs/calibration.md` compares
it with intensities, gradient magnitudes and mutual information on real pairs.

`correlate` computes the correlation of two such fields at every shift at once (FFT), and
`peak` finds its best shift with sub-pixel precision and says how distinct it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Gaussian sigma (pixels) of the structure tensor: how far an edge's influence reaches.
TENSOR_SIGMA = 1.5


def orientation_field(
    gray: np.ndarray, valid: np.ndarray | None = None, sigma: float = TENSOR_SIGMA
) -> np.ndarray:
    """The 2-channel (H x W x 2, float32) doubled-angle edge orientation of a gray image.

    (Jxx - Jyy, 2 Jxy) / (Jxx + Jyy + e) of the smoothed structure tensor J: a unit vector
    along the edge direction (polarity-free) where edges are strong, fading to 0 where the image
    is flat; `e` is the image's median edge energy, so the weights do not depend on contrast.
    `valid` (bool or 0/1, H x W): pixels with data (a warped image's border is not an edge).
    """
    g = gray.astype(np.float32, copy=False)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jxy, jyy = (cv2.GaussianBlur(p, (0, 0), sigma) for p in (gx * gx, gx * gy, gy * gy))
    energy = jxx + jyy
    # the median edge energy, from every third pixel in each direction (of the valid ones)
    sample = energy[::3, ::3] if valid is None else energy[::3, ::3][valid[::3, ::3] > 0]
    e = max(float(np.median(sample)) if sample.size else 0.0, 1e-3)
    scale = 1.0 / (energy + e)
    if valid is not None:
        scale *= valid_interior(valid, sigma)
    field = np.empty(gray.shape[:2] + (2,), np.float32)
    np.multiply(jxx - jyy, scale, out=field[..., 0])
    np.multiply(jxy, 2.0 * scale, out=field[..., 1])
    return field


def valid_interior(valid: np.ndarray, sigma: float = TENSOR_SIGMA) -> np.ndarray:
    """`valid` shrunk by the reach of the edge filter (float32 0/1): no edges at data borders."""
    reach = int(np.ceil(3 * sigma)) + 2
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    return cv2.erode((valid > 0).astype(np.uint8), kernel).astype(np.float32)


def edge_fraction(field: np.ndarray, strength: float = 0.5) -> float:
    """The share of pixels whose orientation vector is longer than `strength` (the structure)."""
    mag2 = field[..., 0] ** 2 + field[..., 1] ** 2
    return float(np.mean(mag2 > strength * strength))


def padded_shape(shape: tuple[int, int], pad: int) -> tuple[int, int]:
    """An FFT-friendly shape that holds `shape` plus `pad` pixels on each side."""
    return (
        cv2.getOptimalDFTSize(shape[0] + 2 * pad),
        cv2.getOptimalDFTSize(shape[1] + 2 * pad),
    )


def spectrum(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The DFT of `field` (H x W x 2) read as complex numbers, zero-padded to `shape`.

    A 2-channel field is one complex image x + iy, so the sum of its two channels' correlations
    is the real part of one complex correlation: one transform instead of two.
    """
    padded = np.zeros((shape[0], shape[1], 2), np.float32)
    padded[: field.shape[0], : field.shape[1]] = field
    return cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)


def cross_power(fixed: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """The product fixed * conj(moving) of two `spectrum`s (sums correlate several frames)."""
    return cv2.mulSpectrums(fixed, moving, 0, conjB=True)


def surface(power: np.ndarray) -> np.ndarray:
    """The correlation surface of a `cross_power` (or a sum of them)."""
    return cv2.idft(power, flags=cv2.DFT_SCALE | cv2.DFT_COMPLEX_OUTPUT)[..., 0]


def correlate(fixed: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Circular cross-correlation c[t] = sum_x fixed(x) . moving(x - t) from two `spectrum`s.

    Shift t is at index t modulo the padded shape (negative shifts wrap round to the end).
    """
    return surface(cross_power(fixed, moving))


@dataclass(frozen=True)
class Peak:
    """The best shift of a correlation surface and how it stands out.

    shift: (dx, dy), sub-pixel; value: the correlation there; ratio: value over the best value
    farther than `exclusion` pixels from it (1 = a flat top, ambiguous).
    """

    shift: tuple[float, float]
    value: float
    ratio: float


def peak(surface: np.ndarray, max_shift: tuple[int, int], exclusion: int = 3) -> Peak:
    """The best shift within +-max_shift (dx, dy) of a `correlate` surface (wrapped indices)."""
    mx, my = max_shift
    rows, cols = np.arange(-my, my + 1), np.arange(-mx, mx + 1)
    window = surface[np.ix_(rows % surface.shape[0], cols % surface.shape[1])]
    iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
    best = float(window[iy, ix])

    def vertex(a: float, b: float, c: float) -> float:  # the top of a parabola through 3 points
        d = a - 2 * b + c
        return 0.0 if d >= 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))

    dx, dy = float(cols[ix]), float(rows[iy])
    if 0 < ix < len(cols) - 1:
        dx += vertex(window[iy, ix - 1], best, window[iy, ix + 1])
    if 0 < iy < len(rows) - 1:
        dy += vertex(window[iy - 1, ix], best, window[iy + 1, ix])
    far = (np.abs(rows - rows[iy])[:, None] > exclusion) | (
        np.abs(cols - cols[ix])[None, :] > exclusion
    )
    second = float(window[far].max()) if far.any() else 0.0
    if best <= 0:
        ratio = 0.0
    else:
        ratio = best / second if second > 1e-12 else float("inf")
    return Peak((dx, dy), best, ratio)
