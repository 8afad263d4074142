"""What the fusion node tells the world: its /diagnostics statuses and its one-line log summary.

The node counts what happens in a `NodeCounters` and describes what it runs in a dict; the
`NodeReport` turns those, the configuration error or fallback it was told about and the
latencies of published pairs into statuses (names as diagnostic_updater makes them,
`<node name>: <task>`):

* `<node>: fusion`: ERROR when the pipeline cannot produce output (configure failed, all
  fallbacks failed, the last pair's output was not finite), WARN while the last pair failed
  (cleared by the next good one), while a fallback runs instead of the configuration (with
  the reason) or while no pair has come yet; OK when fusing; the lifecycle state otherwise.
* `<node>: thermal input`, `<node>: visible input` (`mask input`): the rate and stamp checks
  of `diagnostics.InputMonitor`, while the node is active.

The latency is measured from the visible header stamp to publication, on the node's clock. It
is not measured (and the frames are counted instead) while that clock is unset (`use_sim_time`
before the first /clock message) or behind the stamp: a latency across two clocks would be a
meaningless number that stays in the averages for minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from .diagnostics import ERROR, OK, WARN, InputMonitor, make_status, status_name


@dataclass
class NodeCounters:
    """What the fusion node counts. Each field has one writer thread; readers take snapshots.

    received / bad: messages per input (executor thread); pairs: complete pairs offered to the
    fusion thread, dropped: those replaced in its slot before it took them (executor thread);
    published / failed: pairs fused and published, or refused (fusion thread).
    """

    received: dict[str, int] = field(default_factory=dict)
    bad: dict[str, int] = field(default_factory=dict)
    pairs: int = 0
    dropped: int = 0
    published: int = 0
    failed: int = 0

    @classmethod
    def for_inputs(cls, roles: Iterable[str]) -> NodeCounters:
        roles = tuple(roles)
        return cls(received=dict.fromkeys(roles, 0), bad=dict.fromkeys(roles, 0))


class NodeReport:
    """Counters, errors and latency of one fusion node, as statuses and a log line.

    counters: the node's `NodeCounters`; now_ns: the node's clock; name / hardware_id: the
    node's name and fully qualified name.
    """

    def __init__(
        self,
        counters: NodeCounters,
        now_ns: Callable[[], int],
        name: str,
        hardware_id: str,
    ) -> None:
        self.counters = counters
        self.now_ns = now_ns
        self.name, self.hardware_id = name, hardware_id
        self.config_error = ""  # configure or activate failed: ERROR until a transition succeeds
        self.fallback = ""  # what runs instead of the configuration, and why
        self._lock = threading.Lock()
        self._pair_error = ""  # the last pair's failure; cleared by the next good pair
        self._pair_error_level = OK
        self._latency_ms: list[float] = []
        self._unmeasured = 0  # frames whose latency could not be measured (see the docstring)
        self._last_log = (now_ns(), self._rates_snapshot())

    # --- from the fusion thread ------------------------------------------------------------------

    def pair_failed(self, exc: Exception, *, error: bool) -> None:
        with self._lock:
            self._pair_error = str(exc)
            self._pair_error_level = ERROR if error else WARN

    def pair_published(self, stamp_ns: int) -> None:
        now_ns = self.now_ns()
        with self._lock:
            self._pair_error, self._pair_error_level = "", OK
            if now_ns <= 0 or now_ns < stamp_ns:  # clock unset, or not the stamps' clock
                self._unmeasured += 1
                return
            self._latency_ms = (self._latency_ms + [(now_ns - stamp_ns) / 1e6])[-100:]

    @property
    def latency_ms(self) -> list[float]:
        with self._lock:
            return list(self._latency_ms)

    @property
    def last_error(self) -> str:
        """The reason the node is not running as configured, or the last pair failed."""
        with self._lock:
            return self.config_error or self._pair_error or self.fallback

    # --- the statuses ----------------------------------------------------------------------------

    def fusion_status(self, state: str, running: Mapping[str, Any]) -> DiagnosticStatus:
        """The fusion status in lifecycle `state`; `running` describes what runs (device, ...)."""
        counts = self.counters
        with self._lock:
            pair_error, pair_level = self._pair_error, self._pair_error_level
            lat = sorted(self._latency_ms)
            unmeasured = self._unmeasured
        if self.config_error:
            level, message = ERROR, self.config_error
        elif state != "active":
            level, message = OK, f"{state}: not fusing"
        elif pair_error:
            level, message = pair_level, pair_error
        elif self.fallback:
            level, message = WARN, self.fallback
        elif not counts.pairs:
            level, message = WARN, "waiting for thermal/visible pairs"
        else:
            level, message = OK, "fusing"
        values = {
            "lifecycle state": state,
            "pairs": counts.pairs,
            "published": counts.published,
            "dropped pairs (stale)": counts.dropped,
            "failed pairs": counts.failed,
            **{f"bad {k} messages": v for k, v in counts.bad.items()},
            "latency mean (ms)": f"{sum(lat) / len(lat):.1f}" if lat else "",
            "latency max (ms)": f"{lat[-1]:.1f}" if lat else "",
            "latency not measured (clock unset or behind the stamps)": unmeasured,
            "last error": pair_error,
            "fallback": self.fallback,
            "configuration error": self.config_error,
            **running,
        }
        name = status_name(self.name, "fusion")
        return make_status(name, self.hardware_id, level, message[:300], values)

    def input_statuses(
        self, state: str, monitors: Mapping[str, InputMonitor]
    ) -> list[DiagnosticStatus]:
        """One status per input while active (each check's window moves on when asked)."""
        if state != "active":
            return []
        now_s = self.now_ns() / 1e9
        out = []
        for role, monitor in monitors.items():
            level, message, values = monitor.update(now_s)
            name = status_name(self.name, f"{role} input")
            out.append(make_status(name, self.hardware_id, level, message, values))
        return out

    def array(
        self, state: str, running: Mapping[str, Any], monitors: Mapping[str, InputMonitor]
    ) -> DiagnosticArray:
        """The /diagnostics message of this period."""
        msg = DiagnosticArray(
            status=[self.fusion_status(state, running), *self.input_statuses(state, monitors)]
        )
        now_ns = self.now_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        return msg

    # --- the log line ---------------------------------------------------------------------------

    def _rates_snapshot(self) -> dict[str, int]:
        counts = self.counters
        return {
            "thermal": counts.received.get("thermal", 0),
            "visible": counts.received.get("visible", 0),
            "published": counts.published,
        }

    def log_line(self, state: str) -> str:
        """`active: in 10.0/10.0 Hz, out 9.8 Hz, latency 95 ms, ...` since the last line."""
        now, snap = self.now_ns(), self._rates_snapshot()
        then, before = self._last_log
        self._last_log = (now, snap)
        dt = (now - then) / 1e9
        rate = {k: (snap[k] - before[k]) / dt if dt > 0 else 0.0 for k in snap}
        lat = self.latency_ms
        counts = self.counters
        return (
            f"{state}: in {rate['thermal']:.1f}/{rate['visible']:.1f} Hz, "
            f"out {rate['published']:.1f} Hz, "
            f"latency {sum(lat) / len(lat) if lat else 0:.0f} ms, "
            f"dropped {counts.dropped}, bad {sum(counts.bad.values())}, "
            f"failed {counts.failed}"
        )
