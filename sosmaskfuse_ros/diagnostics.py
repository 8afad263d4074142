"""The node's /diagnostics, the way diagnostic_updater reports: a rate and a stamp check per input.

diagnostic_updater (C++ and Python) is not on PyPI, so the few pieces the node needs are here,
with its conventions: status names `<node name>: <task>` without the namespace's slash (what
aggregator `startswith` rules match), a `FrequencyStatus`-like check over a sliding window of
updates and a `TimeStampStatus`-like check of the header stamps' age on arrival. Every check
recovers by itself: WARN while an input is stale, too slow or too fast, OK again once it is not.

`KeyedThrottle` rate-limits log lines per key (one per input and reason), where rclpy's
`throttle_duration_sec` is keyed by the call site and lets one input's reason hide another's.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
WINDOW_UPDATES = 5  # diagnostic_updater's FrequencyStatusParam default window


def status_name(node_name: str, task: str) -> str:
    """`<node name>: <task>`, as diagnostic_updater names a node's statuses."""
    return f"{node_name.lstrip('/')}: {task}"


def make_status(name: str, hardware_id: str, level: int, message: str, values: dict):
    """A DiagnosticStatus with `values` as KeyValues (their values as text)."""
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )


class FrequencyCheck:
    """Events per second over the last WINDOW_UPDATES updates, against [min_rate, max_rate].

    `event()` from any thread; `update(now_s)` once per diagnostics period returns
    (level, message, values). No event in the whole window is WARN (the input is stale).
    """

    def __init__(self, min_rate: float, max_rate: float, window: int = WINDOW_UPDATES) -> None:
        self.min_rate, self.max_rate = min_rate, max_rate
        self._lock = threading.Lock()
        self._count = 0
        self._history: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def event(self) -> None:
        with self._lock:
            self._count += 1

    def update(self, now_s: float) -> tuple[int, str, dict]:
        with self._lock:
            count = self._count
        if not self._history:
            self._history.append((now_s, count))
        self._history.append((now_s, count))
        (t0, c0), (t1, c1) = self._history[0], self._history[-1]
        events, span = c1 - c0, t1 - t0
        rate = events / span if span > 0 else 0.0
        values = {
            "Events in window": events,
            "Events since startup": count,
            "Duration of window (s)": f"{span:.2f}",
            "Actual frequency (Hz)": f"{rate:.2f}",
            "Minimum acceptable frequency (Hz)": f"{self.min_rate:.2f}",
            "Maximum acceptable frequency (Hz)": f"{self.max_rate:.2f}",
        }
        if span <= 0:
            return OK, "starting", values
        if events == 0:
            return WARN, f"no messages for {span:.1f} s", values
        if rate < self.min_rate:
            return WARN, f"rate too low: {rate:.2f} Hz < {self.min_rate:g} Hz", values
        if rate > self.max_rate:
            return WARN, f"rate too high: {rate:.2f} Hz > {self.max_rate:g} Hz", values
        return OK, f"{rate:.2f} Hz", values


class StampCheck:
    """The age of header stamps on arrival (now - stamp), since the last update.

    WARN when no message came since the last update, when a stamp is older than `max_age`,
    or more than `max_future` seconds ahead of the node's clock.
    """

    def __init__(self, max_age: float, max_future: float = 1.0) -> None:
        self.max_age, self.max_future = max_age, max_future
        self._lock = threading.Lock()
        self._delays: list[float] = []

    def stamp(self, stamp_s: float, now_s: float) -> None:
        with self._lock:
            self._delays.append(now_s - stamp_s)

    def update(self) -> tuple[int, str, dict]:
        with self._lock:
            delays, self._delays = self._delays, []
        values = {"Maximum acceptable delay (s)": f"{self.max_age:g}"}
        if not delays:
            return WARN, "no data since the last update", values
        early, late = min(delays), max(delays)
        values.update(
            {
                "Earliest timestamp delay (s)": f"{early:.3f}",
                "Latest timestamp delay (s)": f"{late:.3f}",
            }
        )
        if late > self.max_age:
            return WARN, f"stamps too old: {late:.2f} s > {self.max_age:g} s", values
        if early < -self.max_future:
            return WARN, f"stamps {-early:.2f} s in the future", values
        return OK, "stamps reasonable", values


class InputMonitor:
    """The rate and stamp checks of one input, plus its bad messages since the last update."""

    def __init__(self, topic: str, min_rate: float, max_rate: float, max_age: float) -> None:
        self.topic = topic
        self.rate = FrequencyCheck(min_rate, max_rate)
        self.stamps = StampCheck(max_age)
        self._lock = threading.Lock()
        self._bad = 0
        self._last_bad = ""

    def message(self, stamp_s: float, now_s: float) -> None:
        """A message arrived (good or bad) with this header stamp."""
        self.rate.event()
        self.stamps.stamp(stamp_s, now_s)

    def bad(self, reason: str) -> None:
        with self._lock:
            self._bad += 1
            self._last_bad = reason

    def update(self, now_s: float) -> tuple[int, str, dict]:
        """The input's level, message and values; the worst check decides."""
        checks = [self.rate.update(now_s), self.stamps.update()]
        with self._lock:
            bad, last, self._bad = self._bad, self._last_bad, 0
        if bad:
            checks.append((WARN, f"{bad} bad message(s): {last}"[:200], {}))
        values = {"topic": self.topic}
        for _, _, v in checks:
            values.update(v)
        level = max(c[0] for c in checks)
        message = "; ".join(m for lv, m, _ in checks if lv == level) if level else checks[0][1]
        return level, message, values


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
