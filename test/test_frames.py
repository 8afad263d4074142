"""Frame preparation: the homography's validation and the warp into the visible grid, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sosmaskfuse_core.pipeline.builder import frame_preparer
from sosmaskfuse_core.pipeline.frames import FramePreparer, parse_homography, register_thermal
from sosmaskfuse_core.settings.table import defaults

# thermal pixel (u, v) -> visible pixel (2u + 5, 2v + 3): a camera with half the resolution,
# offset by (5, 3) visible pixels
SCALE_SHIFT = [2.0, 0.0, 5.0, 0.0, 2.0, 3.0, 0.0, 0.0, 1.0]


def ramp(width: int, height: int) -> np.ndarray:
    """4u + 8v: bilinear interpolation of a linear function is exact, so warps are known."""
    v, u = np.indices((height, width))
    return (4 * u + 8 * v).astype(np.uint8)


def expected_scale_shift(visible_wh, grid_wh, thermal_wh):
    """The warped ramp on a `grid_wh` grid over the visible view, and where it is defined.

    Grid pixel (x, y) is visible pixel ((x + 0.5) s - 0.5, ...) with s = visible / grid
    (pixel centres aligned); thermal u = (x_visible - 5) / 2, v = (y_visible - 3) / 2.
    """
    y, x = np.indices(grid_wh[::-1], dtype=np.float64)
    xv = (x + 0.5) * visible_wh[0] / grid_wh[0] - 0.5
    yv = (y + 0.5) * visible_wh[1] / grid_wh[1] - 0.5
    u, v = (xv - 5) / 2, (yv - 3) / 2
    inside = (u >= 0) & (u <= thermal_wh[0] - 1) & (v >= 0) & (v <= thermal_wh[1] - 1)
    outside = (u < -1) | (u > thermal_wh[0]) | (v < -1) | (v > thermal_wh[1])
    return 4 * u + 8 * v, inside, outside


def test_parse_homography_accepts_nine_numbers_and_nothing():
    assert parse_homography(None) is None and parse_homography([]) is None
    h = parse_homography(SCALE_SHIFT)
    assert h.shape == (3, 3) and h.dtype == np.float64
    assert h.tolist() == [[2.0, 0.0, 5.0], [0.0, 2.0, 3.0], [0.0, 0.0, 1.0]]
    assert parse_homography(np.array(SCALE_SHIFT).reshape(3, 3)).tolist() == h.tolist()


@pytest.mark.parametrize(
    "values,message",
    [
        ([1.0] * 8, "homography needs 9 numbers (3x3, row-major), got 8"),
        ([1.0] * 10, "homography needs 9 numbers (3x3, row-major), got 10"),
        ([1.0, 0, 0, 0, float("nan"), 0, 0, 0, 1], "homography has non-finite entries"),
        ([1.0, 0, float("inf"), 0, 1, 0, 0, 0, 1], "homography has non-finite entries"),
        ([1.0, 2, 3, 2, 4, 6, 0, 0, 1], "homography is singular (determinant 0)"),  # rank 2
        ([0.0] * 9, "homography is singular (determinant 0)"),
    ],
)
def test_parse_homography_refuses_bad_matrices(values, message):
    with pytest.raises(ValueError) as info:
        parse_homography(values)
    assert str(info.value) == message


def test_a_pure_shift_moves_every_pixel_and_leaves_the_rest_black():
    thermal = np.random.default_rng(0).integers(1, 256, (12, 16), dtype=np.uint8)
    shift = parse_homography([1.0, 0, 3, 0, 1, 2, 0, 0, 1])  # (u, v) -> (u + 3, v + 2)
    warped = register_thermal(thermal, (16, 12), shift)
    expected = np.zeros_like(thermal)
    expected[2:, 3:] = thermal[:-2, :-3]
    assert np.array_equal(warped, expected)


def test_scale_and_shift_into_a_larger_visible_frame():
    thermal = ramp(16, 12)
    warped = register_thermal(thermal, (40, 30), parse_homography(SCALE_SHIFT))
    assert warped.shape == (30, 40)
    want, inside, outside = expected_scale_shift((40, 30), (40, 30), (16, 12))
    assert inside.sum() > 500 and outside.sum() > 50
    assert np.array_equal(warped[inside], want[inside].astype(np.uint8))
    assert (warped[outside] == 0).all()
    assert not np.array_equal(warped, register_thermal(thermal, (40, 30), None))


def test_the_warp_goes_straight_to_the_processing_size():
    """Homography composed with the visible -> processing scaling: one interpolation."""
    thermal = ramp(16, 12)
    warped = register_thermal(thermal, (40, 30), parse_homography(SCALE_SHIFT), (20, 15))
    assert warped.shape == (15, 20)
    want, inside, outside = expected_scale_shift((40, 30), (20, 15), (16, 12))
    assert inside.sum() > 100
    assert np.array_equal(warped[inside], want[inside].astype(np.uint8))
    assert (warped[outside] == 0).all()


def test_without_a_homography_the_thermal_image_is_resized_to_the_visible_grid():
    thermal = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    grown = register_thermal(thermal, (8, 6), None)  # bilinear, pixel centres aligned
    assert grown.shape == (6, 8)
    # grid x = 1 is source x = (1 + 0.5) / 2 - 0.5 = 0.25: 0.75 * 0 + 0.25 * 20; edges clamp
    assert (grown[0, 0], grown[0, 1], grown[-1, -1]) == (0, 5, 220)
    assert register_thermal(thermal, (4, 3), None) is thermal  # the same size: no copy


@pytest.mark.parametrize("size", [None, (20, 15)])
def test_frame_preparer_warps_the_thermal_frame(size):
    thermal = ramp(16, 12)
    visible = np.zeros((30, 40, 3), np.uint8)
    visible[..., 1] = 200  # pure green: luma 0.587 * 200
    prep = FramePreparer(homography=parse_homography(SCALE_SHIFT), size=size, gray_visible=True)
    ir, vis = prep.prepare(thermal, "mono8", visible, "rgb8")
    grid = size or (40, 30)
    want, inside, outside = expected_scale_shift((40, 30), grid, (16, 12))
    assert ir.shape == vis.shape == grid[::-1]
    assert np.array_equal(ir[inside], want[inside].astype(np.uint8))
    assert (ir[outside] == 0).all()
    assert (vis == round(0.587 * 200)).all()


def test_the_homography_setting_reaches_the_frame_preparer():
    values = {**defaults("bag"), "homography": SCALE_SHIFT}
    prep = frame_preparer(values)
    ir, _ = prep.prepare(ramp(16, 12), "mono8", np.zeros((30, 40), np.uint8), "mono8")
    want, inside, outside = expected_scale_shift((40, 30), (40, 30), (16, 12))
    assert np.array_equal(ir[inside], want[inside].astype(np.uint8))
    assert (ir[outside] == 0).all()
