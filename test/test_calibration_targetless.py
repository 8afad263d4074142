"""Targetless calibration on real aligned pairs re-projected through known homographies.

The rig: a 640x512 thermal camera and an 800x600 visible one; the thermal image is the aligned
thermal image warped by a known homography (shift, scale, rotation and perspective together)
and resampled at its own resolution (`synthetic.project_pair`). Errors are in thermal pixels
at the corners of what both cameras see (the fused image's extent).

The data sets' own registration limits what any method can reach on them (their pairs were
registered once, by a homography, with parallax left over): the first test removes it by
making the thermal image from the visible one (opposite polarity, a gamma, blur and noise),
where the truth is exact. docs/calibration.md has the full table.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import shared_path

from sosmaskfuse_core.calibration import (
    CalibrationRefused,
    FramePair,
    calibrate_targetless,
    overlap_error,
    rig_homography,
)
from sosmaskfuse_core.calibration.synthetic import aligned_pairs, project_pair

pytestmark = pytest.mark.shared_data

T, V = (640, 512), (800, 600)
TRUTH = rig_homography(
    T, V, shift=(-31.0, 22.0), scale=1.12, rotation_deg=-3.5, perspective=(0.02, -0.015)
)


def _frames(pairs, h=TRUTH, name="f") -> list[FramePair]:
    out = []
    for i, (ir, vis) in enumerate(pairs):
        thermal, visible = project_pair(ir, vis, h, T, V, crop=0.8)
        out.append(FramePair(f"{name}{i}", thermal, visible))
    return out


@pytest.fixture(scope="module")
def m3svd():
    return aligned_pairs(shared_path("data"), "m3svd", 10)


@pytest.fixture(scope="module")
def roadscene():
    return aligned_pairs(shared_path("data"), "roadscene", 10)


def test_an_exact_truth_is_found_to_a_fraction_of_a_pixel(roadscene):
    """Thermal made from the visible image: inverted, gamma 1.5, blurred, noisy (exact truth)."""
    rng = np.random.default_rng(0)
    fake = []
    for _, vis in roadscene:
        ir = 255.0 * (1.0 - (vis / 255.0) ** 1.5)
        ir = cv2.GaussianBlur(ir, (0, 0), 1.2) + rng.normal(0, 3, ir.shape)
        fake.append((np.clip(ir, 0, 255).astype(np.uint8), vis))
    result = calibrate_targetless(_frames(fake))
    error = overlap_error(result.homography, TRUTH, T, V)
    assert error.max() <= 0.5, error
    assert result.confidence["level"] == "high" and len(result.used) == 10


def test_m3svd_frames_give_the_homography_within_2_px(m3svd):
    result = calibrate_targetless(_frames(m3svd))
    error = overlap_error(result.homography, TRUTH, T, V)
    assert np.median(error) <= 2.0, error
    assert result.errors["residual_median_px"] < 1.0
    assert result.confidence["agreement"] == 1.0


def test_roadscene_pairs_give_it_to_their_own_registration(roadscene):
    """Each RoadScene pair was registered on its own: they disagree by 1-3 px among themselves.

    The result is that close, and the confidence says so (the two halves of the frames do
    not give the same homography).
    """
    result = calibrate_targetless(_frames(roadscene))
    error = overlap_error(result.homography, TRUTH, T, V)
    assert np.median(error) <= 3.5, error
    assert result.confidence["split_half_px"] > 2.0
    assert result.confidence["level"] == "medium"


def test_frames_of_another_scene_are_set_aside(m3svd, roadscene):
    """Four thermal frames paired with the wrong visible frames, among ten good ones."""
    good = _frames(m3svd)
    bad = _frames(roadscene[:4], name="wrong")
    mixed = good + [FramePair(b.name, g.thermal, b.visible) for g, b in zip(good, bad)]
    result = calibrate_targetless(mixed)
    assert {f.name for f in result.rejected} == {"wrong0", "wrong1", "wrong2", "wrong3"}
    assert np.median(overlap_error(result.homography, TRUTH, T, V)) <= 2.0


def test_unrelated_thermal_and_visible_frames_are_refused(m3svd, roadscene):
    thermal = _frames(m3svd)
    visible = _frames(roadscene)
    mismatched = [FramePair(a.name, a.thermal, b.visible) for a, b in zip(thermal, visible)]
    with pytest.raises(CalibrationRefused, match="flat score peak|frames disagree|weak"):
        calibrate_targetless(mismatched)


def test_featureless_or_too_few_frames_are_refused(m3svd):
    frames = _frames(m3svd)
    rng = np.random.default_rng(1)
    fog = [
        FramePair(f.name, (120 + rng.normal(0, 2, f.thermal.shape)).astype(np.uint8), f.visible)
        for f in frames
    ]
    with pytest.raises(CalibrationRefused, match="too few informative frames: 0 of 10") as info:
        calibrate_targetless(fog)
    assert all("little structure" in v.reason for v in info.value.frames)
    with pytest.raises(CalibrationRefused, match="too few informative frames: 3 of 3"):
        calibrate_targetless(frames[:3])


def test_structure_in_one_direction_only_is_refused():
    """Vertical bars: any vertical shift fits as well as another (a flat score peak)."""
    rng = np.random.default_rng(2)
    frames = []
    for i in range(6):
        row = np.repeat(rng.integers(0, 255, 40).astype(np.uint8), 20)[: V[0]]
        visible = cv2.GaussianBlur(np.tile(row, (V[1], 1)), (0, 0), 1.0)
        thermal = cv2.warpPerspective(
            255 - visible, TRUTH, T, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        frames.append(FramePair(f"bars{i}", thermal, visible))
    with pytest.raises(CalibrationRefused, match="flat score peak|frames disagree"):
        calibrate_targetless(frames)
