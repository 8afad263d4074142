"""What the fusion node tells the world: its /diagnostics statuses and its one-line log summary.

Statuses (names as diagnostic_updater makes them, `<node name>: <task>`):

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

from diagnostic_msgs.msg import DiagnosticArray

from .diagnostics import ERROR, OK, WARN, make_status, status_name


class NodeReport:
    """Counters, errors and latency of one FusionNode, reported on its timers."""

    def __init__(self, node) -> None:
        self.node = node
        self.config_error = ""  # configure or activate failed: ERROR until a transition succeeds
        self.fallback = ""  # what runs instead of the configuration, and why
        self._lock = threading.Lock()
        self._pair_error = ""  # the last pair's failure; cleared by the next good pair
        self._pair_error_level = OK
        self._latency_ms: list[float] = []
        self._unmeasured = 0  # frames whose latency could not be measured (see the docstring)
        self._last_log = (self._now_ns(), self._snapshot())

    def _now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    # --- from the worker thread ------------------------------------------------------------------

    def pair_failed(self, exc: Exception, *, error: bool) -> None:
        with self._lock:
            self._pair_error = str(exc)
            self._pair_error_level = ERROR if error else WARN

    def pair_published(self, stamp_ns: int) -> None:
        now_ns = self._now_ns()
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

    # --- the fusion status -----------------------------------------------------------------------

    def fusion_status(self):
        node, counts = self.node, self.node.counts
        state = node.state
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
        elif not counts["pairs"]:
            level, message = WARN, "waiting for thermal/visible pairs"
        else:
            level, message = OK, "fusing"
        values = {
            "lifecycle state": state,
            "pairs": counts["pairs"],
            "published": counts["published"],
            "dropped pairs (stale)": node.worker.dropped,
            "failed pairs": counts["failed"],
            **{f"bad {k} messages": v for k, v in counts["bad"].items()},
            "latency mean (ms)": f"{sum(lat) / len(lat):.1f}" if lat else "",
            "latency max (ms)": f"{lat[-1]:.1f}" if lat else "",
            "latency not measured (clock unset or behind the stamps)": unmeasured,
            "last error": pair_error,
            "fallback": self.fallback,
            "configuration error": self.config_error,
        }
        stage = node.stage
        if stage is not None:
            values.update(
                {
                    "device": str(stage.pipeline.device),
                    "precision": stage.pipeline.config.precision,
                    "autoencoder": node.sources.autoencoder,
                    "mask source": node.sources.mask,
                    "fusion mode": stage.pipeline.config.fusion_mode,
                    "mu": stage.pipeline.config.mu,
                    "sync": node.sync.name if node.sync is not None else "",
                }
            )
        name = status_name(node.get_name(), "fusion")
        return make_status(name, node.get_fully_qualified_name(), level, message[:300], values)

    def input_statuses(self) -> list:
        node = self.node
        if node.state != "active":
            return []
        now_s = self._now_ns() / 1e9
        out = []
        for role, monitor in node.monitors.items():
            level, message, values = monitor.update(now_s)
            name = status_name(node.get_name(), f"{role} input")
            out.append(make_status(name, node.get_fully_qualified_name(), level, message, values))
        return out

    def publish(self) -> None:
        msg = DiagnosticArray(status=[self.fusion_status(), *self.input_statuses()])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.node.diag_pub.publish(msg)

    # --- the log line ---------------------------------------------------------------------------

    def _snapshot(self) -> dict:
        counts = self.node.counts
        return {
            "thermal": counts["received"]["thermal"],
            "visible": counts["received"]["visible"],
            "published": counts["published"],
        }

    def log_summary(self) -> None:
        now, snap = self._now_ns(), self._snapshot()
        then, before = self._last_log
        self._last_log = (now, snap)
        dt = (now - then) / 1e9
        rate = {k: (snap[k] - before[k]) / dt if dt > 0 else 0.0 for k in snap}
        lat = self.latency_ms
        counts = self.node.counts
        self.node.get_logger().info(
            f"{self.node.state}: in {rate['thermal']:.1f}/{rate['visible']:.1f} Hz, "
            f"out {rate['published']:.1f} Hz, "
            f"latency {sum(lat) / len(lat) if lat else 0:.0f} ms, "
            f"dropped {self.node.worker.dropped}, bad {sum(counts['bad'].values())}, "
            f"failed {counts['failed']}"
        )
