"""Segmentation metrics on hand-computable cases."""

import numpy as np
import pytest

from sosmaskfuse_core.evaluation.mask_metrics import (
    f_measure,
    iou,
    mae,
    precision_recall,
    to_binary,
)


def _masks():
    # 4x4 images; prediction covers 4 pixels, truth 6, overlap 3.
    pred = np.zeros((4, 4), bool)
    pred[0, 0:4] = True  # (0,0) (0,1) (0,2) (0,3)
    gt = np.zeros((4, 4), bool)
    gt[0, 1:4] = True  # overlap: 3 pixels
    gt[1, 1:4] = True  # 3 more truth pixels
    return pred, gt


def test_iou_hand_computed():
    pred, gt = _masks()
    assert iou(pred, gt) == pytest.approx(3 / 7)  # |A&B| = 3, |A|B| = 4 + 6 - 3
    assert iou(gt, pred) == pytest.approx(3 / 7)  # symmetric
    assert iou(gt, gt) == 1.0


def test_precision_recall_and_f_measure_hand_computed():
    pred, gt = _masks()
    p, r = precision_recall(pred, gt)
    assert (p, r) == (pytest.approx(3 / 4), pytest.approx(3 / 6))
    b2 = 0.3
    expected = (1 + b2) * p * r / (b2 * p + r)
    assert f_measure(pred, gt) == pytest.approx(expected)
    assert f_measure(pred, gt, beta2=1.0) == pytest.approx(2 * p * r / (p + r))
    # beta^2 = 0.3 weights precision: a precise but incomplete mask beats a sloppy complete one
    sloppy = np.ones((4, 4), bool)
    assert f_measure(pred, gt) > f_measure(sloppy, gt)


def test_mae_uses_soft_values():
    gt = np.array([[0, 1], [1, 0]], np.uint8) * 255
    soft = np.array([[0.25, 0.5], [1.0, 0.0]], np.float32)
    assert mae(soft, gt) == pytest.approx((0.25 + 0.5 + 0 + 0) / 4)
    assert mae(gt, gt) == 0.0


def test_empty_masks_are_defined():
    z = np.zeros((3, 3), bool)
    one = z.copy()
    one[1, 1] = True
    assert iou(z, z) == 1.0 and f_measure(z, z) == 1.0
    assert iou(z, one) == 0.0 and f_measure(z, one) == 0.0
    assert iou(one, z) == 0.0 and f_measure(one, z) == 0.0


def test_dtypes_and_threshold():
    pred, gt = _masks()
    soft = np.where(pred, 0.7, 0.2).astype(np.float32)  # 0.5 threshold recovers pred
    assert iou(soft, gt.astype(np.uint8) * 255) == pytest.approx(3 / 7)
    assert iou(soft, gt, threshold=0.75) == 0.0  # nothing reaches 0.75
    assert np.array_equal(
        to_binary(np.array([0, 127, 128, 255], np.uint8)), [False, False, True, True]
    )
    assert np.array_equal(to_binary(np.array([0, 1], np.uint8)), [False, True])


def test_errors():
    with pytest.raises(ValueError):
        iou(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        f_measure(np.zeros((2, 2)), np.zeros((2, 2)), beta2=0)
