"""Target-based calibration on rendered boards with known homographies (both polarities).

The boards are rendered independently of the detector (anti-aliased, blurred, noisy), the
truth is the homography the renderer used; the error is measured over the boards' area.
"""

from __future__ import annotations

import numpy as np
import pytest

from sosmaskfuse_core.calibration import (
    BoardSpec,
    CalibrationRefused,
    FramePair,
    calibrate_target,
    detect_board,
    rig_homography,
)
from sosmaskfuse_core.calibration.board import orderings
from sosmaskfuse_core.calibration.geometry import apply, grid_error
from sosmaskfuse_core.calibration.synthetic import board_views

T, V = (640, 512), (800, 600)
TRUTH = rig_homography(
    T, V, shift=(18.0, -11.0), scale=1.08, rotation_deg=2.0, perspective=(0.015, -0.01)
)


def _pairs(views) -> list[FramePair]:
    return [FramePair(f"pose{i}", v.thermal, v.visible) for i, v in enumerate(views)]


def _board_error(h: np.ndarray, views) -> float:
    """The largest visible-pixel error of `h` over every board's extent (a grid of points)."""
    errors = []
    for v in views:
        quad = apply(v.board_to_thermal, np.array([[0, 0], [12, 0], [12, 9], [0, 9]]))
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        errors.append(grid_error(h, TRUTH, (x0, y0, x1, y1)).max())
    return float(max(errors))


@pytest.mark.parametrize("heated", [True, False], ids=["heated board", "cold board"])
@pytest.mark.parametrize("kind, pattern", [("checkerboard", (9, 6)), ("circles", (7, 5))])
def test_rendered_boards_give_the_homography_within_half_a_pixel(kind, pattern, heated):
    spec = BoardSpec(kind, *pattern, square_mm=40.0)
    views = board_views(
        spec, TRUTH, T, V, poses=4, heated=heated, blur_sigma=1.0, noise_sigma=3.0, seed=2
    )
    result = calibrate_target(_pairs(views), spec)
    assert len(result.used) == 4 and not result.rejected
    assert _board_error(result.homography, views) <= 0.5
    assert result.errors["rms_px"] < 1.0  # single corners are noisier than the fit
    assert result.confidence["frames_with_board"] == 4
    assert 0 < result.confidence["coverage"] < 1


def test_the_thermal_board_is_found_whatever_its_polarity():
    spec = BoardSpec("circles", 7, 5)
    for heated in (True, False):
        view = board_views(spec, TRUTH, T, V, poses=1, heated=heated, seed=4)[0]
        found = detect_board(view.thermal, spec)
        assert found is not None and found.inverted == heated  # bright circles: inverted
        truth = apply(view.board_to_thermal, spec.points())
        error = min(np.abs(found.points[o] - truth).max() for o in orderings(spec))
        assert error < 0.5


@pytest.fixture(scope="module")
def checkerboard_views():
    """Five poses of a heated 9x6 checkerboard."""
    spec = BoardSpec("checkerboard", 9, 6)
    return spec, board_views(spec, TRUTH, T, V, poses=5, seed=5)


def test_frames_without_the_board_are_set_aside_with_the_reason(checkerboard_views):
    spec, views = checkerboard_views
    views = views[:3]
    blank = np.full((T[1], T[0]), 80, np.uint8)
    pairs = _pairs(views) + [FramePair("empty", blank, np.full((V[1], V[0]), 128, np.uint8))]
    result = calibrate_target(pairs, spec)
    assert [f.name for f in result.rejected] == ["empty"]
    assert "no checkerboard 9x6 in the thermal or visible image" in result.rejected[0].reason
    assert _board_error(result.homography, views) <= 0.5


def test_a_frame_whose_board_moved_between_the_exposures_is_set_aside(checkerboard_views):
    spec, views = checkerboard_views
    moved = views[4]  # the visible image of another pose
    views = views[:4]
    pairs = _pairs(views) + [FramePair("moved", views[0].thermal, moved.visible)]
    result = calibrate_target(pairs, spec)
    assert [f.name for f in result.rejected] == ["moved"]
    assert "disagrees with the others" in result.rejected[0].reason
    assert _board_error(result.homography, views) <= 0.5


def test_no_board_anywhere_or_a_wrong_pattern_is_refused(checkerboard_views):
    spec, views = checkerboard_views
    with pytest.raises(CalibrationRefused, match="no frame shows the checkerboard 9x7"):
        calibrate_target(_pairs(views[:1]), BoardSpec("checkerboard", 9, 7))
    with pytest.raises(CalibrationRefused, match="no frame pairs"):
        calibrate_target([], spec)


def test_board_specs_parse_and_check():
    spec = BoardSpec.parse("circles", "7x5", 30)
    assert (spec.kind, spec.size, spec.square_mm) == ("circles", (7, 5), 30.0)
    for kind, pattern, message in (
        ("checkerboard", "9by6", "expected COLSxROWS"),
        ("hexagons", "9x6", "expected one of checkerboard, circles"),
        ("checkerboard", "1x6", "needs at least 3x2"),
    ):
        with pytest.raises(ValueError, match=message):
            BoardSpec.parse(kind, pattern)
