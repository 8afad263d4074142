"""The node's /diagnostics checks, as diagnostic_updater computes them: rates, stamps, summaries.

diagnostic_updater (C++ and Python) is not on PyPI, so the pieces the node needs are here, with
its levels, messages and value names (ros/diagnostics, branch ros2,
`diagnostic_updater/_update_functions.py` and `_diagnostic_status_wrapper.py`):

* `FrequencyCheck` is `FrequencyStatus`: events per second over the last `window` updates
  (a ring of counts and times started at `clear`), ERROR "No events recorded." for a window
  without events, WARN "Frequency too low." / "Frequency too high." outside
  [min (1 - tolerance), max (1 + tolerance)], else OK "Desired frequency met".
* `StampCheck` is `TimeStampStatus`: the delay (now - stamp) of the stamps seen since the
  last update; WARN "No data since last update.", ERROR "Timestamps too far in future seen."
  (a delay below `min_acceptable`, default -1 s), "Timestamps too far in past seen." (above
  `max_acceptable`), "Zero timestamp seen." (a stamp of 0, which gives no delay), and the
  tallies of each.
* `merge_summaries` is `DiagnosticStatusWrapper.mergeSummary` as `CompositeDiagnosticTask`
  applies it: the worst level, the messages of that kind joined with "; ".

`InputMonitor` and `OutputMonitor` compose them as diagnostic_updater's `TopicDiagnostic` does
(a frequency and a stamp check of one topic), plus, for an input, the bad messages and flat
frames since the last update. `status_name` names a status `<node name>: <task>`, with the
fully qualified node name under `diagnostic_updater.use_fqn`, as `Updater.publish` does.

`KeyedThrottle` rate-limits log lines per key (one per input and reason), where rclpy's
`throttle_duration_sec` is keyed by the call site and lets one input's reason hide another's.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
WINDOW_UPDATES = 5  # FrequencyStatusParam's default window_size
TOLERANCE = 0.1  # FrequencyStatusParam's default tolerance
MIN_ACCEPTABLE_DELAY = -1.0  # TimeStampStatusParam's default min_acceptable (s)
RECENT_STAMPS = 20  # stamps an input keeps, to say how near its stamps come to another's

Summary = tuple[int, str, dict]  # (level, message, values) of one check


def status_name(node_name: str, task: str) -> str:
    """`<node name>: <task>`: `node_name` is the node's name, or its fully qualified name."""
    return f"{node_name}: {task}"


def make_status(name: str, hardware_id: str, level: int, message: str, values: dict):
    """A DiagnosticStatus with `values` as KeyValues (their values as text)."""
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )


def merge_summaries(summaries: Iterable[tuple[int, str]]) -> tuple[int, str]:
    """One (level, message) from several, as diagnostic_updater's mergeSummary combines them.

    The level is the worst; messages of the same kind (all OK, or all not OK) are joined with
    "; ", and a not-OK message replaces OK ones.
    """
    level, message = OK, ""
    for lvl, msg in summaries:
        if (lvl > OK) == (level > OK):
            message = f"{message}; {msg}" if message else msg
        elif lvl > level:
            message = msg
        level = max(level, lvl)
    return level, message


class FrequencyCheck:
    """diagnostic_updater's FrequencyStatus (see the module docstring).

    `event()` from any thread; `update(now_s)` once per diagnostics period. `max_rate` inf
    means no upper bound; `min_rate` 0 no lower one (only an empty window is then an ERROR).
    """

    def __init__(
        self,
        min_rate: float,
        max_rate: float = math.inf,
        now_s: float = 0.0,
        *,
        tolerance: float = TOLERANCE,
        window: int = WINDOW_UPDATES,
    ) -> None:
        self.min_rate, self.max_rate = min_rate, max_rate
        self.tolerance, self.window = tolerance, window
        self._lock = threading.Lock()
        self.clear(now_s)

    def clear(self, now_s: float) -> None:
        """Start the window afresh at `now_s` (no events)."""
        with self._lock:
            self._count = 0
            self._times = [now_s] * self.window
            self._counts = [0] * self.window
            self._index = 0

    def event(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        """Events since the last `clear`."""
        with self._lock:
            return self._count

    def update(self, now_s: float) -> Summary:
        with self._lock:
            count = self._count
            events = count - self._counts[self._index]
            span = now_s - self._times[self._index]
            self._counts[self._index], self._times[self._index] = count, now_s
            self._index = (self._index + 1) % self.window
        rate = events / span if span > 0 else 0.0
        low = self.min_rate * (1 - self.tolerance)
        high = self.max_rate * (1 + self.tolerance)
        if events == 0:
            level, message = ERROR, "No events recorded."
        elif rate < low:
            level, message = WARN, "Frequency too low."
        elif rate > high:
            level, message = WARN, "Frequency too high."
        else:
            level, message = OK, "Desired frequency met"
        values = {
            "Events in window": f"{events:d}",
            "Events since startup": f"{count:d}",
            "Duration of window (s)": f"{span:f}",
            "Actual frequency (Hz)": f"{rate:f}",
        }
        if self.min_rate == self.max_rate:
            values["Target frequency (Hz)"] = f"{self.min_rate:f}"
        if self.min_rate > 0:
            values["Minimum acceptable frequency (Hz)"] = f"{low:f}"
        if math.isfinite(self.max_rate):
            values["Maximum acceptable frequency (Hz)"] = f"{high:f}"
        return level, message, values


class StampCheck:
    """diagnostic_updater's TimeStampStatus (see the module docstring).

    `stamp(stamp_s, now_s)` for each message (any thread); `update()` once per period.
    """

    def __init__(
        self, max_acceptable: float, min_acceptable: float = MIN_ACCEPTABLE_DELAY
    ) -> None:
        self.max_acceptable, self.min_acceptable = max_acceptable, min_acceptable
        self._lock = threading.Lock()
        self.early_count = self.late_count = self.zero_count = 0
        self._reset()

    def _reset(self) -> None:
        self._zero_seen = False
        self._valid = False
        self._min_delta = self._max_delta = 0.0

    def stamp(self, stamp_s: float, now_s: float) -> None:
        with self._lock:
            if stamp_s == 0:
                self._zero_seen = True
                return
            delta = now_s - stamp_s
            if not self._valid or delta > self._max_delta:
                self._max_delta = delta
            if not self._valid or delta < self._min_delta:
                self._min_delta = delta
            self._valid = True

    def update(self) -> Summary:
        with self._lock:
            level, message = OK, "Timestamps are reasonable."
            if not self._valid:
                level, message = WARN, "No data since last update."
            else:
                if self._min_delta < self.min_acceptable:
                    level, message = ERROR, "Timestamps too far in future seen."
                    self.early_count += 1
                if self._max_delta > self.max_acceptable:
                    level, message = ERROR, "Timestamps too far in past seen."
                    self.late_count += 1
                if self._zero_seen:
                    level, message = ERROR, "Zero timestamp seen."
                    self.zero_count += 1
            values = {
                "Earliest timestamp delay:": f"{self._min_delta:f}",
                "Latest timestamp delay:": f"{self._max_delta:f}",
                "Earliest acceptable timestamp delay:": f"{self.min_acceptable:f}",
                "Latest acceptable timestamp delay:": f"{self.max_acceptable:f}",
                "Late diagnostic update count:": f"{self.late_count:d}",
                "Early diagnostic update count:": f"{self.early_count:d}",
                "Zero seen diagnostic update count:": f"{self.zero_count:d}",
            }
            self._reset()
        return level, message, values


def _compose(checks: list[Summary], values: dict) -> Summary:
    """CompositeDiagnosticTask: the merged summary, every check's values."""
    for _, _, v in checks:
        values.update(v)
    level, message = merge_summaries((lvl, msg) for lvl, msg, _ in checks)
    return level, message, values


class InputMonitor:
    """One input: its frequency and stamp checks, plus bad messages and flat frames.

    A flat frame (every pixel the same: a dead, covered or disconnected sensor) is WARN when
    every frame decoded since the last update was flat; one flat frame among good ones is a
    thermal camera's flat-field correction, not a fault.
    """

    def __init__(
        self, topic: str, min_rate: float, max_rate: float, max_age: float, now_s: float = 0.0
    ) -> None:
        self.topic = topic
        self.rate = FrequencyCheck(min_rate, max_rate, now_s)
        self.stamps = StampCheck(max_age)
        self._lock = threading.Lock()
        self._bad = 0
        self._last_bad = ""
        self._frames = self._flat = 0
        self._flat_value: float = 0.0
        self._stamps: deque[tuple[float, float]] = deque(maxlen=RECENT_STAMPS)
        self.extra: tuple[int, str] | None = None  # a problem the node reports on this input

    def message(self, stamp_s: float, now_s: float) -> None:
        """A message arrived (good or bad) with this header stamp."""
        self.rate.event()
        self.stamps.stamp(stamp_s, now_s)
        with self._lock:
            self._stamps.append((now_s, stamp_s))

    def recent_stamps(self, since_s: float) -> list[float]:
        """Header stamps (s) of the messages that came since `since_s` (RECENT_STAMPS at most)."""
        with self._lock:
            return [stamp for arrival, stamp in self._stamps if arrival >= since_s]

    def bad(self, reason: str) -> None:
        with self._lock:
            self._bad += 1
            self._last_bad = reason

    def frame(self, flat: bool, value: float = 0.0) -> None:
        """A frame was decoded; `flat`: every pixel is `value`."""
        with self._lock:
            self._frames += 1
            if flat:
                self._flat += 1
                self._flat_value = value

    def update(self, now_s: float) -> Summary:
        """The input's level, message and values; the checks merged as diagnostic_updater does."""
        checks = [self.rate.update(now_s), self.stamps.update()]
        with self._lock:
            bad, last, self._bad = self._bad, self._last_bad, 0
            frames, flat, value = self._frames, self._flat, self._flat_value
            self._frames = self._flat = 0
        if bad:
            checks.append((WARN, f"{bad} bad message(s): {last}"[:200], {}))
        if frames and flat == frames:
            checks.append(
                (
                    WARN,
                    f"all {frames} frame(s) since the last update are flat (every pixel "
                    f"{value:g}): a dead, covered or disconnected sensor?",
                    {},
                )
            )
        if self.extra is not None:
            checks.append((*self.extra, {}))
        values = {"topic": self.topic, "flat frames since the last update": f"{flat}/{frames}"}
        return _compose(checks, values)


class OutputMonitor:
    """A published topic (fused_image): its frequency and stamp checks, as DiagnosedPublisher.

    The stamp check's delay is the age of the pair when it was published. While nobody
    listens nothing is fused, so nothing is checked: `idle` says so and restarts the window.
    """

    def __init__(self, topic: str, min_rate: float, max_age: float, now_s: float = 0.0) -> None:
        self.topic = topic
        self.rate = FrequencyCheck(min_rate, math.inf, now_s)
        self.stamps = StampCheck(max_age)

    def published(self, stamp_s: float, now_s: float) -> None:
        self.rate.event()
        self.stamps.stamp(stamp_s, now_s)

    def update(self, now_s: float) -> Summary:
        return _compose([self.rate.update(now_s), self.stamps.update()], {"topic": self.topic})

    def idle(self, now_s: float) -> Summary:
        """The summary while no output has a subscriber (the window starts again)."""
        self.rate.clear(now_s)
        self.stamps.update()  # drop what was seen before
        return OK, "no subscriber on any output: not decoding or fusing", {"topic": self.topic}


class KeyedThrottle:
    """Allow one event per `period` seconds per key (steady clock)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._last: dict[object, float] = {}
        self._lock = threading.Lock()

    def allow(self, key: object) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                return False
            self._last[key] = now
            return True
