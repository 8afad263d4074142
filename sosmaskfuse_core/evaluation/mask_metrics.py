"""Segmentation metrics for comparing a predicted (soft or binary) mask with a ground-truth mask.

Conventions (the salient-object-detection ones):

* Every input is first read as a value in [0, 1] by :func:`to_unit_float`: bool -> {0, 1};
  integer arrays are divided by 255 (by 65535 for uint16 data above 255; not at all when they
  hold only {0, 1}), so 8-bit {0, 255} masks work directly; float arrays are taken to be in
  [0, 1] already and clipped to it.
* ``iou`` and ``f_measure`` then binarise both inputs at ``value >= threshold`` (default 0.5).
* ``f_measure`` is F_beta with ``beta2`` = beta^2 = 0.3 by default, weighting precision over
  recall, as is usual for salient-object segmentation.
* ``mae`` compares the soft prediction in [0, 1] with the ground truth in {0, 1} without
  binarising the prediction.

Edge cases are defined rather than NaN: two empty masks give IoU 1 and F 1 (perfect agreement);
an empty prediction against a non-empty truth (or vice versa) gives 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_binary", "to_unit_float", "iou", "f_measure", "mae", "precision_recall"]


def _check_same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")


def to_binary(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Return ``mask`` as a bool array.

    Bool input comes back unchanged, anything else as ``to_unit_float(mask) >= threshold``.
    """
    m = np.asarray(mask)
    if m.dtype == bool:
        return m
    return to_unit_float(m) >= threshold


def to_unit_float(mask: np.ndarray) -> np.ndarray:
    """Return ``mask`` as float64 in [0, 1].

    bool -> {0, 1}; integer data with max > 1 -> / 255 (uint16: / 65535); float data are
    clipped to [0, 1].
    """
    m = np.asarray(mask)
    if m.dtype == bool:
        return m.astype(np.float64)
    if np.issubdtype(m.dtype, np.integer):
        top = int(m.max(initial=0))
        scale = 1.0 if top <= 1 else (65535.0 if top > 255 else 255.0)
        return np.clip(m.astype(np.float64) / scale, 0.0, 1.0)
    return np.clip(m.astype(np.float64), 0.0, 1.0)


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of the binarised masks (1.0 when both are empty)."""
    p, g = to_binary(pred, threshold), to_binary(gt, threshold)
    _check_same_shape(p, g)
    union = int(np.count_nonzero(p | g))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & g)) / union


def precision_recall(
    pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5
) -> tuple[float, float]:
    """Precision and recall of the binarised prediction.

    An empty prediction has precision 1 when the truth is empty too, else 0; recall of an empty
    truth is 1.
    """
    p, g = to_binary(pred, threshold), to_binary(gt, threshold)
    _check_same_shape(p, g)
    tp = int(np.count_nonzero(p & g))
    n_p, n_g = int(np.count_nonzero(p)), int(np.count_nonzero(g))
    precision = tp / n_p if n_p else (1.0 if n_g == 0 else 0.0)
    recall = tp / n_g if n_g else 1.0
    return precision, recall


def f_measure(
    pred: np.ndarray, gt: np.ndarray, beta2: float = 0.3, threshold: float = 0.5
) -> float:
    """F_beta = (1 + beta^2) P R / (beta^2 P + R) of the binarised masks; ``beta2`` is beta^2."""
    if beta2 <= 0:
        raise ValueError("beta2 must be > 0")
    p, g = to_binary(pred, threshold), to_binary(gt, threshold)
    _check_same_shape(p, g)
    if not p.any() and not g.any():
        return 1.0
    precision, recall = precision_recall(p, g)
    denom = beta2 * precision + recall
    if denom == 0:
        return 0.0
    return (1.0 + beta2) * precision * recall / denom


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error between the soft prediction and the truth, both mapped to [0, 1].

    Both are mapped with :func:`to_unit_float`.
    """
    p, g = to_unit_float(pred), to_unit_float(gt)
    _check_same_shape(p, g)
    return float(np.mean(np.abs(p - g))) if p.size else 0.0
