"""MaskSmoother: EMA state, the motion cue, resets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sosmaskfuse_core.thermal.temporal_mask import MaskSmoother, MaskSmootherConfig


def test_first_frame_passes_then_the_ema_of_static_frames():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.25))
    ir = np.full((8, 8), 100, np.uint8)
    first = np.full((8, 8), 0.8, np.float32)
    assert np.array_equal(s.update(first, ir), first)
    out = s.update(np.zeros((8, 8), np.float32), ir)  # 0.25 * 0 + 0.75 * 0.8
    assert np.allclose(out, 0.6)
    out = s.update(np.ones((8, 8), np.float32), ir)  # 0.25 * 1 + 0.75 * 0.6
    assert np.allclose(out, 0.7)
    assert out.dtype == np.float32


def test_pixels_whose_thermal_value_changed_follow_the_new_mask():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.25, motion_scale=10.0))
    ir = np.full((16, 16), 50.0, np.float32)
    s.update(np.zeros((16, 16), np.float32), ir)
    moved = ir.copy()
    moved[4:12, 4:12] = 200.0  # a warm target walked in
    out = s.update(np.where(moved > 100, 1.0, 0.0).astype(np.float32), moved)
    assert np.allclose(out[6:10, 6:10], 1.0)  # its pixels: the new mask at once
    assert np.allclose(out[0, 0], 0.0)  # static background: unchanged
    # half a motion scale of change (after the 3x3 box blur) gives half the way from alpha to 1
    s2 = MaskSmoother(MaskSmootherConfig(alpha=0.2, motion_scale=10.0))
    s2.update(np.zeros((6, 6), np.float32), np.zeros((6, 6), np.float32))
    out = s2.update(np.ones((6, 6), np.float32), np.full((6, 6), 5.0, np.float32))
    assert np.allclose(out, 0.2 + 0.8 * 0.5)


def test_reset_forgets_the_state():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.5))
    s.update(np.ones((4, 4), np.float32))
    assert s.state[0] is not None
    s.reset()
    assert s.state == (None, None)
    assert np.allclose(s.update(np.zeros((4, 4), np.float32)), 0.0)


def test_a_scene_cut_or_a_new_size_resets():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.5, cut_change=40.0))
    s.update(np.ones((4, 4), np.float32), np.zeros((4, 4), np.float32))
    out = s.update(np.zeros((4, 4), np.float32), np.full((4, 4), 100.0, np.float32))  # cut
    assert np.allclose(out, 0.0)
    out = s.update(np.ones((6, 5), np.float32), np.zeros((6, 5), np.float32))  # new size
    assert np.allclose(out, 1.0)


def test_without_thermal_frames_it_is_a_plain_ema():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.5))
    s.update(torch.zeros(3, 3))
    out = s.update(torch.ones(3, 3))
    assert isinstance(out, torch.Tensor) and torch.allclose(out, torch.full((3, 3), 0.5))


def test_bad_input_is_refused_and_changes_nothing():
    s = MaskSmoother()
    s.update(np.zeros((4, 4), np.float32))
    before = s.state[0].clone()
    with pytest.raises(ValueError, match="NaN"):
        s.update(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="thermal frame"):
        s.update(np.zeros((4, 4), np.float32), np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match="H x W"):
        s.update(np.zeros((4, 4, 3), np.float32))
    assert torch.equal(s.state[0], before)


@pytest.mark.parametrize(
    "kwargs", [dict(alpha=0.0), dict(alpha=1.5), dict(motion_scale=-1.0), dict(cut_change=0.0)]
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match="MaskSmootherConfig"):
        MaskSmootherConfig(**kwargs)
