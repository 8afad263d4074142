"""The live alignment check and the homography arithmetic it and the calibration rest on."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from conftest import shared_path

from sosmaskfuse_core.calibration import AlignmentCheck, describe, rig_homography
from sosmaskfuse_core.calibration.geometry import (
    apply,
    corner_error,
    overlap_corners,
    rescaled,
)
from sosmaskfuse_core.calibration.synthetic import aligned_pairs

T, V = (640, 512), (800, 600)


def _scene(size=(640, 480), seed=0) -> np.ndarray:
    """Blocks and bars of random gray levels: edges in every direction."""
    rng = np.random.default_rng(seed)
    image = np.full(size[::-1], 100, np.uint8)
    for _ in range(60):
        x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
        w, h = rng.integers(10, 120), rng.integers(10, 120)
        cv2.rectangle(
            image, (int(x), int(y)), (int(x + w), int(y + h)), int(rng.integers(0, 255)), -1
        )
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def _shift(image: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    size = (image.shape[1], image.shape[0])
    return cv2.warpAffine(image, m, size), cv2.warpAffine(np.ones_like(image), m, size)


def test_rig_homography_reads_back_as_its_pose():
    h = rig_homography(
        T, V, shift=(12.0, -30.0), scale=0.85, rotation_deg=-4.0, perspective=(0.02, -0.01)
    )
    pose = describe(h, T, V)
    assert pose.shift == pytest.approx((12.0, -30.0), abs=1e-9)
    assert pose.scale == pytest.approx(0.85) and pose.rotation_deg == pytest.approx(-4.0)
    assert pose.perspective == pytest.approx((0.02, -0.01))
    # width-matched and centred: the thermal centre lands on the visible centre
    assert apply(rig_homography(T, V), [[319.5, 255.5]])[0] == pytest.approx([399.5, 299.5])


def test_rescaling_a_homography_follows_the_resized_images():
    h = rig_homography(T, V, shift=(5.0, 3.0), rotation_deg=2.0)
    small = rescaled(h, (T, (320, 256)), (V, (400, 300)))
    p = np.array([[100.0, 50.0], [600.0, 400.0]])
    # a thermal point at half resolution maps to the visible point at half resolution
    half = (p + 0.5) / 2 - 0.5
    assert apply(small, half) == pytest.approx((apply(h, p) + 0.5) / 2 - 0.5)
    assert corner_error(h, h, T) == pytest.approx(np.zeros(4))


def test_the_overlap_is_what_both_cameras_see():
    wide = rig_homography(T, V, scale=1.25)  # the thermal camera sees more than the visible one
    corners = apply(wide, overlap_corners(wide, T, V))
    assert corners.min(axis=0) == pytest.approx([0, 0], abs=1e-3)
    assert corners.max(axis=0) == pytest.approx([799, 599], abs=1e-3)
    narrow = rig_homography(T, V, scale=0.8)  # the thermal image inside the visible one
    assert len(overlap_corners(narrow, T, V)) == 4


@pytest.mark.parametrize("dx, dy", [(15.0, 0.0), (0.0, -15.0), (-10.6, 7.3)])
def test_a_shift_is_measured_as_that_shift(dx, dy):
    visible = _scene()
    thermal = 255 - visible  # opposite polarity: the check looks at edges, not gray levels
    moved, valid = _shift(thermal, dx, dy)
    reading = AlignmentCheck().measure(moved, visible, valid)
    assert reading.informative
    assert reading.shift_xy == pytest.approx((dx, dy), abs=1.0)
    aligned = AlignmentCheck().measure(thermal, visible)
    assert aligned.informative and aligned.error_px < 0.5
    assert aligned.score > reading.score - 0.1  # the shift was found, not scored down


def test_a_featureless_or_unrelated_pair_is_not_informative():
    flat = np.full((480, 640), 90, np.uint8)
    rng = np.random.default_rng(3)
    noise = (90 + rng.normal(0, 2, flat.shape)).astype(np.uint8)
    assert not AlignmentCheck().measure(noise, _scene()).informative
    assert not AlignmentCheck().measure(flat, _scene()).informative
    with pytest.raises(ValueError, match="one size"):
        AlignmentCheck().measure(flat, flat[:100])


@pytest.mark.shared_data
def test_real_pairs_shifted_by_15_px_read_15_px_and_aligned_ones_read_0():
    """M3SVD frames: the thermal frame as registered, and moved 15 px to the right."""
    pairs = aligned_pairs(shared_path("data"), "m3svd", 4)
    check = AlignmentCheck()
    for ir, vis in pairs:
        moved, valid = _shift(ir, 15.0, 0.0)
        reading = check.measure(moved, vis, valid)
        base = check.measure(ir, vis)
        assert reading.informative and base.informative
        assert base.error_px < 1.0  # the set's own registration is within a pixel
        assert reading.shift_xy[0] == pytest.approx(15.0, abs=1.5)
        assert abs(reading.shift_xy[1]) < 1.0


def test_the_check_is_cheap_at_640x480():
    visible = _scene()
    thermal, valid = _shift(255 - visible, 6.0, 0.0)
    check = AlignmentCheck()
    check.measure(thermal, visible, valid)
    start = time.perf_counter()
    for _ in range(20):
        check.measure(thermal, visible, valid)
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.05  # a few ms; generous for a loaded shared CPU
