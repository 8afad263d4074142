"""FlickerMeter on hand-made frame sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sosmaskfuse_core.evaluation.flicker import FlickerMeter


def test_a_still_scene_with_a_flickering_output():
    meter = FlickerMeter()
    ir = np.full((8, 8), 50, np.uint8)
    vis = np.full((8, 8), 90, np.uint8)
    for level in (100, 104, 100):  # the output jumps by 4 each frame
        meter.add(np.full((8, 8), level, np.uint8), ir, vis)
    s = meter.summary()
    assert s["pairs"] == 2 and s["fused_change"] == pytest.approx(4.0)
    assert s["ir_change"] == 0.0 and math.isnan(s["ratio"])  # no input change to compare with
    assert s["static_flicker"] == pytest.approx(4.0) and s["static_share"] == 1.0


def test_motion_is_not_flicker():
    meter = FlickerMeter(still=2.0)
    ir0 = np.zeros((16, 16), np.uint8)
    ir1 = ir0.copy()
    ir1[:, :8] = 60  # the left half changed
    vis = np.full((16, 16), 10, np.uint8)
    meter.add(ir0, ir0, vis)
    meter.add(ir1, ir1, vis)  # the output follows the IR
    s = meter.summary()
    assert s["fused_change"] == pytest.approx(30.0) and s["ir_change"] == pytest.approx(30.0)
    assert s["ratio"] == pytest.approx(1.0)
    assert s["static_flicker"] == 0.0  # the still right half did not move
    assert 0.3 < s["static_share"] < 0.5  # right half minus the blurred edge


def test_mask_change_and_restarts():
    meter = FlickerMeter()
    f = np.zeros((4, 4), np.uint8)
    meter.add(f, f, f, np.zeros((4, 4)))
    meter.add(f, f, f, np.full((4, 4), 0.5))
    meter.reset()  # a new video: no pair across it
    meter.add(f + 100, f, f, np.ones((4, 4)))
    meter.add(np.zeros((6, 6), np.uint8), np.zeros((6, 6)), np.zeros((6, 6)))  # new size: no pair
    s = meter.summary()
    assert s["pairs"] == 1 and s["mask_change"] == pytest.approx(0.5) and s["fused_change"] == 0.0


def test_frames_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="one size"):
        FlickerMeter().add(np.zeros((4, 4)), np.zeros((4, 5)), np.zeros((4, 4)))
