"""The live alignment verdict: its history, its decision, and readings in visible pixels.

The decision is tested on readings made by hand; the measurement on a rendered street whose
thermal frame is moved by a known number of pixels, prepared as the node prepares it
(registered into the visible grid, resized to the processing size).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sosmaskfuse_core.calibration import AlignmentReading, AlignmentWatch
from sosmaskfuse_core.pipeline.frames import pixel_scaling, register_thermal, resize
from sosmaskfuse_core.thermal.agc import ThermalAGC
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene


def _reading(dx: float, dy: float = 0.0, informative: bool = True) -> AlignmentReading:
    return AlignmentReading((dx, dy), 0.6, 1.4, informative)


def test_no_verdict_before_enough_readings_then_the_median_decides():
    watch = AlignmentWatch(8.0, size=5, need=3)
    assert watch.verdict().state == "waiting"
    watch.add(_reading(0.5))
    watch.add(_reading(-0.3, 0.2))
    waiting = watch.verdict()
    assert waiting.state == "waiting" and waiting.message == "measuring: 2 of 3 readings"
    watch.add(_reading(0.1, -0.4))
    aligned = watch.verdict()
    assert aligned.state == "aligned"
    assert aligned.shift_xy == pytest.approx((0.1, 0.0))  # component-wise medians
    assert (aligned.used, aligned.readings) == (3, 3)
    assert aligned.message == "aligned: (+0.1, +0.0) px, within 8 px"


def test_one_odd_reading_does_not_flip_it_a_lasting_shift_does_after_three():
    watch = AlignmentWatch(8.0, size=5, need=3)
    for _ in range(5):
        watch.add(_reading(0.0))
    watch.add(_reading(40.0, -30.0))  # a passing truck, a sync slip
    assert watch.verdict().state == "aligned"
    states = []
    for _ in range(4):  # the camera was bumped: 15 px from now on
        watch.add(_reading(15.0, 1.0))
        states.append(watch.verdict().state)
    assert states == ["aligned", "misaligned", "misaligned", "misaligned"]  # 2 + the odd one
    verdict = watch.verdict()
    assert verdict.shift_xy == pytest.approx((15.0, 1.0))
    assert verdict.message.startswith("thermal and visible are misaligned by (+15.0, +1.0) px")
    states = []
    for _ in range(3):  # fixed: aligned again after three readings
        watch.add(_reading(0.2))
        states.append(watch.verdict().state)
    assert states == ["misaligned", "misaligned", "aligned"]


def test_uninformative_readings_are_not_enough_structure_never_misaligned():
    watch = AlignmentWatch(8.0, size=5, need=3)
    for _ in range(4):
        watch.add(_reading(60.0, 0.0, informative=False))  # fog: a meaningless peak
    watch.add(_reading(0.0))
    verdict = watch.verdict()
    assert verdict.state == "unknown" and verdict.shift_xy is None
    assert verdict.message.startswith("not enough structure to measure the alignment: 1 of")
    # informative readings among them decide once there are enough
    for _ in range(2):
        watch.add(_reading(12.0))
    assert watch.verdict().state == "misaligned"
    assert watch.verdict().used == 3


def test_a_new_homography_starts_a_new_history_and_drops_readings_of_the_old_one():
    old, new = np.eye(3), np.eye(3)
    watch = AlignmentWatch(8.0, size=5, need=3)
    watch.reset(old)
    for _ in range(3):
        assert watch.add(_reading(15.0), old)
    assert watch.verdict().state == "misaligned"
    watch.reset(new)
    assert watch.verdict().readings == 0
    assert not watch.add(_reading(15.0), old)  # measured on a pair of the old registration
    assert watch.add(_reading(0.0), new)
    assert watch.verdict().readings == 1
    with pytest.raises(ValueError, match="need 6 readings of 5"):
        AlignmentWatch(size=5, need=6)


# --- measured on prepared frames ----------------------------------------------------------------


def _street(size=(256, 192), t=1.0):
    frame = SyntheticScene(*size, seed=3).render(t)
    return ThermalAGC().apply(frame.thermal), cv2.cvtColor(frame.visible, cv2.COLOR_RGB2BGR)


def _moved(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (15.0, 0.0), (-6.0, 10.0)])
def test_a_pair_prepared_at_half_size_reads_its_shift_in_visible_pixels(shift):
    thermal, visible = _street()
    size = (128, 96)  # process_width/height: the node fuses (and checks) at half size
    prepared_t = register_thermal(_moved(thermal, *shift), (256, 192), None, size)
    prepared_v = resize(visible, size)
    watch = AlignmentWatch()
    reading = watch.measure(prepared_t, prepared_v, None, (256, 192), (256, 192))
    assert reading.informative
    assert reading.shift_xy == pytest.approx(shift, abs=1.5)  # visible pixels, not half
    assert watch.verdict().readings == 1 and watch.measured == 1


def test_with_a_homography_the_warp_footprint_is_no_edge_and_a_shift_on_top_reads_as_such():
    """A 200x160 thermal camera with a narrower view than the 320x240 visible one."""
    thermal, visible = _street((320, 240))
    crop = thermal[20:220, 30:280]  # what the thermal camera sees: 250x200 visible pixels
    own = cv2.resize(crop, (200, 160), interpolation=cv2.INTER_AREA)
    homography = np.array([[1.0, 0, 30], [0, 1, 20], [0, 0, 1]]) @ pixel_scaling(
        (200, 160), (250, 200)
    )
    watch = AlignmentWatch()
    watch.reset(homography)
    for dx in (0.0, 12.0):  # visible pixels: 12 / 1.25 thermal pixels
        registered = register_thermal(_moved(own, dx / 1.25, 0.0), (320, 240), homography)
        reading = watch.measure(registered, visible, homography, (200, 160), (320, 240))
        assert reading.informative, reading
        assert reading.shift_xy == pytest.approx((dx, 0.0), abs=1.5)
    assert watch.verdict().readings == 2
    footprint = watch._footprint(homography, (200, 160), (320, 240), (320, 240))
    assert footprint is not None and (footprint[20:220, 30:280] > 0).all()
    assert (footprint[:18] == 0).all() and (footprint[:, :28] == 0).all()  # no data outside
