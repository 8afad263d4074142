"""Fusion-quality metrics of infrared + visible fusion: EN SD SF AG MI SCD VIF Qabf SSIM PSNR CC.

Every function takes 8-bit grayscale images as 2-D arrays (any real dtype; values are used as
float64 in 0..255): ``fused`` is F, ``ir`` is A, ``vis`` is B. The conventions follow the
Python evaluation code most used in infrared + visible fusion papers (the ``Evaluator`` of
MMIF-CDDFuse, itself a port of the MATLAB ``analysis_Qabf.m`` / ``vifp_mscale.m`` tools);
each docstring states its formula and where it departs from that code.
"""

from __future__ import annotations

import math
from typing import cast

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from skimage.metrics import structural_similarity

Image = NDArray[np.float64]

#: Column order of :func:`compute_all` and of the evaluation tables.
METRIC_NAMES: tuple[str, ...] = (
    "EN",
    "SD",
    "SF",
    "AG",
    "MI",
    "SCD",
    "VIF",
    "Qabf",
    "SSIM",
    "PSNR",
    "CC",
)

LEVELS = 256
PEAK = 255.0

# VIF (pixel-domain, multi-scale; Sheikh & Bovik): window sizes per scale, noise variance, eps.
VIF_WINDOW_SIZES: tuple[int, ...] = (17, 9, 5, 3)
VIF_SIGMA_N_SQ = 2.0
VIF_EPS = 1e-10
#: Smallest image side for which all four VIF scales are non-empty.
VIF_MIN_SIZE = 41

# Qabf (Xydeas & Petrovic) sigmoid constants: edge strength (g) and orientation (a).
QABF_TG, QABF_KG, QABF_DG = 0.9994, -15.0, 0.5
QABF_TA, QABF_KA, QABF_DA = 0.9879, -22.0, 0.8
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SOBEL_Y = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])


# ---------------------------------------------------------------------------------------------
# input checks and shared helpers


def as_image(image: ArrayLike, name: str = "image") -> Image:
    """``image`` as a float64 2-D array; ValueError naming ``name`` if it is not 2-D."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grayscale image, got shape {array.shape}")
    if min(array.shape) < 1:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    return array


def as_triple(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> tuple[Image, Image, Image]:
    """The three images as float64 2-D arrays; ValueError on non-2-D input or a size mismatch."""
    f, a, b = as_image(fused, "fused"), as_image(ir, "ir"), as_image(vis, "vis")
    if not f.shape == a.shape == b.shape:
        raise ValueError(
            f"shape mismatch: fused {f.shape}, ir {a.shape}, vis {b.shape} (all must be equal)"
        )
    return f, a, b


def _require_size(image: Image, minimum: int, metric: str) -> None:
    if min(image.shape) < minimum:
        raise ValueError(
            f"{metric} needs images of at least {minimum}x{minimum} pixels, got {image.shape}"
        )


def quantize(image: Image) -> NDArray[np.intp]:
    """Gray levels 0..255 of ``image``: round half to even (``np.round``), then clip."""
    return np.clip(np.round(image), 0, LEVELS - 1).astype(np.intp)


def pearson(x: Image, y: Image) -> float:
    """Pearson correlation sum(dx dy) / sqrt(sum(dx^2) sum(dy^2)); NaN if x or y is constant."""
    dx = x - x.mean()
    dy = y - y.mean()
    denominator = math.sqrt(float(np.sum(dx * dx)) * float(np.sum(dy * dy)))
    if denominator == 0.0:
        return math.nan
    return float(np.sum(dx * dy)) / denominator


# ---------------------------------------------------------------------------------------------
# no-reference metrics (fused image only)


def en(fused: ArrayLike) -> float:
    """Entropy in bits: -sum_k p_k log2 p_k, p = 256-bin histogram of round(F).

    Rounding is half to even (``np.round``) and out-of-range values are clipped to 0..255
    (the common code casts to uint8, which wraps them instead).
    """
    f = as_image(fused, "fused")
    counts = np.bincount(quantize(f).ravel(), minlength=LEVELS)
    p = counts[counts > 0] / f.size
    return float(-np.sum(p * np.log2(p)))


def sd(fused: ArrayLike) -> float:
    """Standard deviation: sqrt(mean((F - mean F)^2)) (population, ddof = 0)."""
    return float(np.std(as_image(fused, "fused")))


def sf(fused: ArrayLike) -> float:
    """Spatial frequency: sqrt(RF^2 + CF^2).

    RF^2 = mean over (i, j) of (F[i, j+1] - F[i, j])^2 (horizontal neighbours),
    CF^2 = mean over (i, j) of (F[i+1, j] - F[i, j])^2 (vertical neighbours); each mean is
    over the differences that exist (W-1 per row, H-1 per column). A 1-pixel-wide image has
    no differences along that axis, and its term is 0.
    """
    f = as_image(fused, "fused")
    rows = np.diff(f, axis=1)
    cols = np.diff(f, axis=0)
    rf_sq = float(np.mean(rows * rows)) if rows.size else 0.0
    cf_sq = float(np.mean(cols * cols)) if cols.size else 0.0
    return math.sqrt(rf_sq + cf_sq)


def ag(fused: ArrayLike) -> float:
    """Average gradient: mean of sqrt((Gx^2 + Gy^2) / 2).

    Gx, Gy follow ``numpy.gradient``: central differences (F[j+1] - F[j-1]) / 2 inside,
    one-sided differences F[1] - F[0] and F[-1] - F[-2] on the border columns / rows.
    Needs at least 2 pixels along each axis.
    """
    f = as_image(fused, "fused")
    _require_size(f, 2, "AG")
    gy, gx = np.gradient(f)
    return float(np.mean(np.sqrt((gx * gx + gy * gy) / 2.0)))


# ---------------------------------------------------------------------------------------------
# mutual information, correlations, PSNR, SSIM


def mutual_information(x: ArrayLike, y: ArrayLike) -> float:
    """MI in nats of the joint 256 x 256 histogram of round(x), round(y) (clipped to 0..255).

    MI = sum_ij p_ij ln(p_ij / (p_i p_j)), over non-empty cells; clipped at 0 against
    round-off. On integer images this equals ``sklearn.metrics.mutual_info_score``, which the
    common evaluation code calls on the flattened images.
    """
    qx, qy = quantize(as_image(x, "x")), quantize(as_image(y, "y"))
    if qx.shape != qy.shape:
        raise ValueError(f"shape mismatch: {qx.shape} vs {qy.shape}")
    counts = np.bincount((qx * LEVELS + qy).ravel(), minlength=LEVELS * LEVELS)
    joint = counts.reshape(LEVELS, LEVELS) / qx.size
    px = joint.sum(axis=1)
    py = joint.sum(axis=0)
    rows, cols = np.nonzero(joint)
    p = joint[rows, cols]
    return max(0.0, float(np.sum(p * np.log(p / (px[rows] * py[cols])))))


def mi(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> float:
    """Mutual information MI(F, A) + MI(F, B) in nats (see :func:`mutual_information`)."""
    f, a, b = as_triple(fused, ir, vis)
    return mutual_information(f, a) + mutual_information(f, b)


def scd(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> float:
    """Sum of the correlations of differences: corr(A, F - B) + corr(B, F - A) (Pearson).

    NaN when a source or a difference image is constant.
    """
    f, a, b = as_triple(fused, ir, vis)
    return pearson(a, f - b) + pearson(b, f - a)


def cc(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> float:
    """Correlation coefficient: (corr(F, A) + corr(F, B)) / 2 (Pearson).

    NaN if an image is constant.
    """
    f, a, b = as_triple(fused, ir, vis)
    return (pearson(f, a) + pearson(f, b)) / 2.0


def psnr(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> float:
    """PSNR in dB: 10 log10(255^2 / MSE), MSE = (mean((F - A)^2) + mean((F - B)^2)) / 2.

    The peak is the fixed 8-bit 255 (the CDDFuse ``Evaluator`` uses max(F) instead);
    +inf when F equals both sources.
    """
    f, a, b = as_triple(fused, ir, vis)
    mse = (float(np.mean((f - a) ** 2)) + float(np.mean((f - b) ** 2))) / 2.0
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(PEAK * PEAK / mse)


def ssim(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> float:
    """SSIM(F, A) + SSIM(F, B) by ``skimage.metrics.structural_similarity``, data_range 255.

    scikit-image defaults otherwise: 7 x 7 uniform window, sample covariance, K1 = 0.01,
    K2 = 0.03, mean over the map without its 3-pixel border. Needs images of at least 7 x 7.
    (The CDDFuse ``Evaluator`` passes no data_range with float images, which older
    scikit-image read as the float range 2 and current versions reject.)
    """
    f, a, b = as_triple(fused, ir, vis)
    _require_size(f, 7, "SSIM")
    return float(
        structural_similarity(f, a, data_range=PEAK) + structural_similarity(f, b, data_range=PEAK)
    )


# ---------------------------------------------------------------------------------------------
# VIF


def gaussian_window(size: int) -> Image:
    """VIF window: MATLAB ``fspecial('gaussian', size, size / 5)``.

    h = exp(-(x^2 + y^2) / (2 sd^2)) on the size x size grid centred at 0, sd = size / 5;
    taps below eps * max(h) (eps = float64 machine epsilon) set to 0; then h / sum(h).
    """
    sd_ = size / 5.0
    radius = (size - 1) / 2.0
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sd_ * sd_))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def _separable_factor(window: Image) -> Image:
    """The 1-D u with outer(u, u) == window (row sums of a normalised rank-1 window)."""
    u = window.sum(axis=1)
    if not np.allclose(np.outer(u, u), window, rtol=1e-12, atol=0.0):
        raise ValueError("VIF window is not separable")
    return u


def _filter_valid(image: Image, taps: Image) -> Image:
    """'valid' 2-D correlation of ``image`` with the separable window outer(taps, taps).

    OpenCV's separable float64 filter: direct sums (no FFT), so flat patches keep their
    variances at round-off level (~1e-12), well below the VIF eps.
    """
    half = taps.size // 2
    # OpenCV's stubs type any image as MatLike; with CV_64F it is float64
    out = cast(
        Image,
        cv2.sepFilter2D(
            np.ascontiguousarray(image), cv2.CV_64F, taps, taps, borderType=cv2.BORDER_CONSTANT
        ),
    )
    return out[half : image.shape[0] - half, half : image.shape[1] - half]


def vifp(reference: ArrayLike, distorted: ArrayLike) -> float:
    """Pixel-domain multi-scale VIF of ``distorted`` w.r.t. ``reference`` (``vifp_mscale``).

    For scales s = 1..4 with window w = :func:`gaussian_window` (N = 17, 9, 5, 3): if s > 1,
    both images are first filtered with w ('valid') and subsampled [::2, ::2]. Then with
    'valid' filtering by w: mu1 = w*R, mu2 = w*D, s1 = w*R^2 - mu1^2, s2 = w*D^2 - mu2^2,
    s12 = w*(R D) - mu1 mu2; s1, s2 clamped at 0; g = s12 / (s1 + eps), sv = s2 - g s12;
    where s1 < eps: g = 0, sv = s2, s1 = 0; where s2 < eps: g = 0, sv = 0; where g < 0:
    sv = s2, g = 0; sv = max(sv, eps) (sv <= eps -> eps); eps = 1e-10, sigma_n^2 = 2:

        num += sum log10(1 + g^2 s1 / (sv + sigma_n^2)),  den += sum log10(1 + s1 / sigma_n^2)

    VIF = num / den, and 1.0 when den is 0 (a flat reference), as in the common code.
    Needs images of at least 41 x 41 pixels.
    """
    ref = as_image(reference, "reference")
    dist = as_image(distorted, "distorted")
    if ref.shape != dist.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape}, distorted {dist.shape}")
    _require_size(ref, VIF_MIN_SIZE, "VIF")
    eps, sigma_n_sq = VIF_EPS, VIF_SIGMA_N_SQ
    num = den = 0.0
    for scale, size in enumerate(VIF_WINDOW_SIZES, start=1):
        taps = _separable_factor(gaussian_window(size))
        if scale > 1:
            ref = _filter_valid(ref, taps)[::2, ::2]
            dist = _filter_valid(dist, taps)[::2, ::2]
        mu1 = _filter_valid(ref, taps)
        mu2 = _filter_valid(dist, taps)
        s1 = np.maximum(_filter_valid(ref * ref, taps) - mu1 * mu1, 0.0)
        s2 = np.maximum(_filter_valid(dist * dist, taps) - mu2 * mu2, 0.0)
        s12 = _filter_valid(ref * dist, taps) - mu1 * mu2

        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        flat_ref = s1 < eps
        g[flat_ref] = 0.0
        sv[flat_ref] = s2[flat_ref]
        s1[flat_ref] = 0.0
        flat_dist = s2 < eps
        g[flat_dist] = 0.0
        sv[flat_dist] = 0.0
        negative = g < 0
        sv[negative] = s2[negative]
        g[negative] = 0.0
        sv[sv <= eps] = eps

        num += float(np.sum(np.log10(1.0 + g * g * s1 / (sv + sigma_n_sq))))
        den += float(np.sum(np.log10(1.0 + s1 / sigma_n_sq)))
    return num / den if den != 0.0 else 1.0


def vif(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> float:
    """Visual information fidelity VIFp(A, F) + VIFp(B, F) (see :func:`vifp`)."""
    f, a, b = as_triple(fused, ir, vis)
    return vifp(a, f) + vifp(b, f)


# ---------------------------------------------------------------------------------------------
# Qabf


def sobel_strength_orientation(image: Image) -> tuple[Image, Image]:
    """Edge strength g and orientation alpha of ``image`` for Qabf.

    Gx = conv2(I, SOBEL_X, 'same'), Gy = conv2(I, SOBEL_Y, 'same'): true convolution with
    zero padding, as MATLAB ``conv2`` (so Gx = left - right, Gy = below - above);
    g = sqrt(Gx^2 + Gy^2), alpha = atan(Gy / Gx), and alpha = pi/2 where Gx == 0.
    """
    gx = ndimage.convolve(image, SOBEL_X, mode="constant", cval=0.0)
    gy = ndimage.convolve(image, SOBEL_Y, mode="constant", cval=0.0)
    strength = np.sqrt(gx * gx + gy * gy)
    vertical = gx == 0
    orientation = np.arctan(gy / np.where(vertical, 1.0, gx))
    orientation[vertical] = math.pi / 2
    return strength, orientation


def edge_preservation(g_src: Image, a_src: Image, g_fused: Image, a_fused: Image) -> Image:
    """Per-pixel edge preservation Q^{SF} = Qg * Qa of a source S in the fused image F.

    G = min(gS, gF) / max(gS, gF), except G = gF where gS == gF (the ``analysis_Qabf.m``
    rule kept by the Python ports: 0 where both are 0, and gF instead of 1 for equal
    non-zero strengths); A = 1 - |aS - aF| / (pi/2);
    Qg = Tg / (1 + exp(kg (G - Dg))), Qa = Ta / (1 + exp(ka (A - Da))).
    """
    larger = np.maximum(g_src, g_fused)
    ratio = np.minimum(g_src, g_fused) / np.where(larger == 0, 1.0, larger)
    relative_strength = np.where(g_src == g_fused, g_fused, ratio)
    relative_orientation = 1.0 - np.abs(a_src - a_fused) / (math.pi / 2)
    with np.errstate(over="ignore"):  # exp overflow -> inf -> Q = 0, the intended limit
        q_g = QABF_TG / (1.0 + np.exp(QABF_KG * (relative_strength - QABF_DG)))
        q_a = QABF_TA / (1.0 + np.exp(QABF_KA * (relative_orientation - QABF_DA)))
    return q_g * q_a


def qabf(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> float:
    """Xydeas-Petrovic edge-transfer metric: sum(Q^{AF} gA + Q^{BF} gB) / sum(gA + gB).

    See :func:`sobel_strength_orientation` and :func:`edge_preservation`; NaN when both
    sources are constant (no edges to transfer).
    """
    f, a, b = as_triple(fused, ir, vis)
    g_a, a_a = sobel_strength_orientation(a)
    g_b, a_b = sobel_strength_orientation(b)
    g_f, a_f = sobel_strength_orientation(f)
    weight = float(np.sum(g_a + g_b))
    if weight == 0.0:
        return math.nan
    q_af = edge_preservation(g_a, a_a, g_f, a_f)
    q_bf = edge_preservation(g_b, a_b, g_f, a_f)
    return float(np.sum(q_af * g_a + q_bf * g_b)) / weight


# ---------------------------------------------------------------------------------------------
# all at once


def compute_all(fused: ArrayLike, ir: ArrayLike, vis: ArrayLike) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES`, in that order, for one (fused, IR, visible) triple."""
    f, a, b = as_triple(fused, ir, vis)
    values = {
        "EN": en(f),
        "SD": sd(f),
        "SF": sf(f),
        "AG": ag(f),
        "MI": mi(f, a, b),
        "SCD": scd(f, a, b),
        "VIF": vif(f, a, b),
        "Qabf": qabf(f, a, b),
        "SSIM": ssim(f, a, b),
        "PSNR": psnr(f, a, b),
        "CC": cc(f, a, b),
    }
    return {name: values[name] for name in METRIC_NAMES}
