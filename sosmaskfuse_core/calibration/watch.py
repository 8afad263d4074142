"""The live alignment verdict of a running stream: registered pairs measured, a short history.

`AlignmentWatch` measures pairs the stream already registered and resized (`PairStage.prepare`'s
images: nothing is warped again; only the warp's footprint is made, once per homography and
camera sizes), turns each reading into the visible camera's pixels and keeps the last `size`
readings. Its `verdict` rests on the component-wise median of the informative readings among
them, so one odd frame (a passing truck, motion blur, a sync slip) does not flip it:

* `waiting`: fewer than `need` readings since the start or the last reset;
* `unknown`: fewer than `need` of the readings were informative (fog, night sky, a lens cap, or
  a shift beyond the search range): nothing is known, which is not "misaligned";
* `aligned` / `misaligned`: the median shift within / beyond `max_shift` pixels.

A new homography is a new registration: `reset(homography)` empties the history, and readings
measured on pairs registered with another homography are dropped when they arrive. Measuring
and reading the verdict may happen on different threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from sosmaskfuse_core.pipeline.frames import register_thermal

from .check import AlignmentCheck, AlignmentReading

#: The live check searches +-20% of the width (+-128 px at 640): a bumped camera reads as
#: misaligned, not as "no structure".
LIVE_CHECK = AlignmentCheck(max_shift=0.2)
STATES = ("waiting", "unknown", "aligned", "misaligned")


@dataclass(frozen=True)
class AlignmentVerdict:
    """What the recent readings say.

    state: one of `STATES`; shift_xy, score: the medians of the informative readings (visible
    camera pixels; None unless `aligned` or `misaligned`); used: how many readings were
    informative; readings: all readings in the history; need: how many it takes; max_shift:
    the limit.
    """

    state: str
    shift_xy: tuple[float, float] | None
    score: float | None
    used: int
    readings: int
    need: int
    max_shift: float

    @property
    def error_px(self) -> float | None:
        """The length of the median shift."""
        return None if self.shift_xy is None else float(np.hypot(*self.shift_xy))

    @property
    def message(self) -> str:
        if self.state == "waiting":
            return f"measuring: {self.readings} of {self.need} readings"
        if self.state == "unknown":
            return (
                f"not enough structure to measure the alignment: {self.used} of the last "
                f"{self.readings} readings informative (a featureless scene, or a shift beyond "
                "the search range)"
            )
        assert self.shift_xy is not None
        dx, dy = self.shift_xy
        if self.state == "misaligned":
            return (
                f"thermal and visible are misaligned by ({dx:+.1f}, {dy:+.1f}) px (more than "
                f"alignment_max_shift {self.max_shift:g} px): recalibrate the homography"
            )
        return f"aligned: ({dx:+.1f}, {dy:+.1f}) px, within {self.max_shift:g} px"


class AlignmentWatch:
    """Readings of a stream's registered pairs, and the verdict of the last `size` of them."""

    def __init__(
        self,
        max_shift: float = 8.0,
        *,
        size: int = 5,
        need: int = 3,
        check: AlignmentCheck = LIVE_CHECK,
    ) -> None:
        if not 1 <= need <= size:
            raise ValueError(f"need {need} readings of {size}: 1 <= need <= size")
        self.max_shift = float(max_shift)
        self.need = need
        self.check = check
        self._lock = threading.Lock()
        self._readings: deque[AlignmentReading] = deque(maxlen=size)
        self._homography: np.ndarray | None = None
        self._footprint_cache: tuple = (None, None, None)  # (homography, sizes, footprint)
        self.measured = 0  # readings taken (all homographies)
        self.seconds: deque[float] = deque(maxlen=20)  # the time of the last readings

    def reset(self, homography: np.ndarray | None = None) -> None:
        """Start again for pairs registered with `homography` (the same object the stage has)."""
        with self._lock:
            self._readings.clear()
            self._homography = homography

    @property
    def homography(self) -> np.ndarray | None:
        """The homography whose pairs the history holds."""
        return self._homography

    def add(self, reading: AlignmentReading, homography: np.ndarray | None = None) -> bool:
        """Keep a reading (visible camera pixels) of a pair registered with `homography`.

        False (dropped) when the history is for another homography now.
        """
        with self._lock:
            if homography is not self._homography:
                return False
            self._readings.append(reading)
            return True

    def measure(
        self,
        thermal: np.ndarray,
        visible: np.ndarray,
        homography: np.ndarray | None,
        thermal_wh: tuple[int, int],
        visible_wh: tuple[int, int],
    ) -> AlignmentReading:
        """Measure one prepared pair and keep the reading (see `add`); returns it.

        thermal, visible: the stage's prepared images (8-bit gray or BGR, one size: the
        processing size), the thermal one registered with `homography` from a `thermal_wh`
        frame onto the `visible_wh` visible frame. The shift is returned in visible pixels.
        """
        start = time.perf_counter()
        gray_t, gray_v = _gray(thermal), _gray(visible)
        size = (gray_v.shape[1], gray_v.shape[0])
        valid = self._footprint(homography, thermal_wh, visible_wh, size)
        raw = self.check.measure(gray_t, gray_v, valid)
        fx, fy = visible_wh[0] / size[0], visible_wh[1] / size[1]
        reading = AlignmentReading(
            (raw.shift_xy[0] * fx, raw.shift_xy[1] * fy), raw.score, raw.ratio, raw.informative
        )
        self.measured += 1
        self.seconds.append(time.perf_counter() - start)
        self.add(reading, homography)
        return reading

    def _footprint(
        self,
        homography: np.ndarray | None,
        thermal_wh: tuple[int, int],
        visible_wh: tuple[int, int],
        size: tuple[int, int],
    ) -> np.ndarray | None:
        """Where the warped thermal frame has data (None: everywhere), once per geometry."""
        if homography is None:
            return None
        cached, sizes, footprint = self._footprint_cache
        if cached is not homography or sizes != (thermal_wh, visible_wh, size):
            ones = np.full((thermal_wh[1], thermal_wh[0]), 255, np.uint8)
            footprint = register_thermal(ones, visible_wh, homography, size)
            self._footprint_cache = (homography, (thermal_wh, visible_wh, size), footprint)
        return footprint

    def verdict(self) -> AlignmentVerdict:
        """The verdict of the readings in the history (see the module docstring)."""
        with self._lock:
            readings = list(self._readings)
        good = [r for r in readings if r.informative]
        shift = score = None
        if len(readings) < self.need:
            state = "waiting"
        elif len(good) < self.need:
            state = "unknown"
        else:
            dx, dy = np.median(np.array([r.shift_xy for r in good]), axis=0)
            shift, score = (float(dx), float(dy)), float(np.median([r.score for r in good]))
            state = "misaligned" if np.hypot(dx, dy) > self.max_shift else "aligned"
        return AlignmentVerdict(
            state, shift, score, len(good), len(readings), self.need, self.max_shift
        )


def _gray(image: np.ndarray) -> np.ndarray:
    """8-bit gray from the stage's gray or BGR image."""
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image.reshape(image.shape[:2])
