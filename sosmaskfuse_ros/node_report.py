"""What the fusion node tells the world: its /diagnostics statuses and its one-line log summary.

The node counts what happens in a `NodeCounters` and describes what it runs in a dict; the
`NodeReport` turns those, the configuration error, fallback and warnings it was told about
and the latencies of published pairs into statuses, named as diagnostic_updater names them
(`<node name>: <task>`, or `<fully qualified name>: <task>` with `use_fqn`), all with the same
`hardware_id`: the compute device the node fuses on (`cpu`, `cuda:0 NVIDIA ...`), or `none`
while it has none (diagnostic_updater's word for "no hardware to name"):

* `<node>: fusion`: ERROR when the pipeline cannot produce output (configure failed, all
  fallbacks failed, the last pair's output was not finite); OK "no subscriber ..." while no
  output has a subscriber (nothing is decoded or fused then); WARN while the last pair failed
  (cleared by the next good one), while a fallback runs instead of the configuration (with
  the reason), while another node has the same name, while the cameras' frames do not agree
  (a thermal frame stretched to another aspect ratio), before the first pair, or while the
  inputs arrive but no pair forms (with the stamp gap against `sync_slop`); OK when fusing;
  the lifecycle state otherwise. Another node of the same name is a WARN in any state.
  Several warnings are merged as diagnostic_updater merges.
* `<node>: thermal input`, `<node>: visible input` (`mask input`): `diagnostics.InputMonitor`,
  while the node is active.
* `<node>: <fused_image topic> topic status`: `diagnostics.OutputMonitor`, diagnostic_updater's
  DiagnosedPublisher on the fused images (rate, and their age when published), while active.
* `<node>: alignment`: `alignment_status.AlignmentMonitor`, while active.

The latency is measured from the visible header stamp to publication, on the node's clock. It
is not measured (and the frames are counted instead) for a stamp of 0, while that clock is
unset (`use_sim_time` before the first /clock message) or behind the stamp: a latency across
two clocks would be a meaningless number that stays in the averages for minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from sosmaskfuse_core.pipeline.health import NonFiniteOutputError

from .diagnostics import (
    ERROR,
    OK,
    WARN,
    FrequencyCheck,
    InputMonitor,
    OutputMonitor,
    Summary,
    make_status,
    merge_summaries,
    status_name,
)

NO_HARDWARE = "none"
#: Errors of one pair that say the pipeline cannot produce output at all (ERROR, not WARN).
FATAL_PAIR_ERRORS = (NonFiniteOutputError, MemoryError)


@dataclass
class NodeCounters:
    """What the fusion node counts. Each field has one writer thread; readers take snapshots.

    received / bad: messages per input (executor thread); idle: messages taken in while no
    output had a subscriber, so neither decoded nor paired (executor thread); pairs: complete
    pairs offered to the fusion thread, dropped: those replaced in its slot before it took them
    (executor thread); published / failed: pairs fused and published, or refused (fusion
    thread).
    """

    received: dict[str, int] = field(default_factory=dict)
    bad: dict[str, int] = field(default_factory=dict)
    idle: int = 0
    pairs: int = 0
    dropped: int = 0
    published: int = 0
    failed: int = 0

    @classmethod
    def for_inputs(cls, roles: Iterable[str]) -> NodeCounters:
        roles = tuple(roles)
        return cls(received=dict.fromkeys(roles, 0), bad=dict.fromkeys(roles, 0))


def name_clash(graph: Iterable[tuple[str, str]], name: str, namespace: str, fqn: str) -> str:
    """A warning when the ROS graph has more than one node of this name and namespace."""
    same = sum(1 for n, ns in graph if (n, ns) == (name, namespace))
    if same < 2:
        return ""
    return (
        f"{same} nodes are named {fqn}: each publishes every output (twice the frames) and "
        "their parameters and services collide; give each its own name or namespace"
    )


def running_values(stage, sources, sync, preset: str) -> dict[str, Any]:
    """What runs, for the fusion status: device, precision, models, mode, preset, pairing.

    With the time each stage took per fused pair since the last status (`time <stage> (ms)`;
    the stage clock is read, and restarted, here).
    """
    if stage is None or sources is None:
        return {}
    config = stage.pipeline.config
    _, stage_ms = stage.clock.take()
    return {
        "device": str(stage.pipeline.device),
        "precision": config.precision,
        "autoencoder": sources.autoencoder,
        "mask source": sources.mask,
        "fusion mode": config.fusion_mode,
        "mu": config.mu,
        "preset": preset,
        "sync": sync.name if sync is not None else "",
        **{f"time {name} (ms)": f"{ms:.1f}" for name, ms in stage_ms.items()},
    }


class NodeReport:
    """Counters, errors and latency of one fusion node, as statuses and a log line.

    counters: the node's `NodeCounters`; now_ns: the node's clock; name / fqn: the node's name
    and fully qualified name. `use_fqn`, `hardware_id`, `sync_slop` and the warnings are set
    by the node (at configure, or when it finds them).
    """

    def __init__(
        self,
        counters: NodeCounters,
        now_ns: Callable[[], int],
        name: str,
        fqn: str,
    ) -> None:
        self.counters = counters
        self.now_ns = now_ns
        self.name, self.fqn = name, fqn
        self.use_fqn = False
        self.hardware_id = NO_HARDWARE
        self.sync_slop = 0.0
        self.config_error = ""  # configure or activate failed: ERROR until a transition succeeds
        self.fallback = ""  # what runs instead of the configuration, and why
        self.duplicate = ""  # another node has this node's name
        self.geometry = ""  # the cameras' frames do not agree (e.g. aspect ratios)
        self._lock = threading.Lock()
        self._pair_error = ""  # the last pair's failure; cleared by the next good pair
        self._pair_error_level = OK
        self._latency_ms: list[float] = []
        self._unmeasured = 0  # frames whose latency could not be measured (see the docstring)
        self.pairs = FrequencyCheck(0.0, now_s=now_ns() / 1e9)  # pairs made, per window
        self._last_log = (now_ns(), self._rates_snapshot())

    @property
    def node_name(self) -> str:
        """The name statuses start with (diagnostic_updater.use_fqn)."""
        return self.fqn if self.use_fqn else self.name

    def warn(self, kind: str, text: str) -> bool:
        """Set the `duplicate` or `geometry` warning ("" clears it); True when it is new news."""
        changed = text != getattr(self, kind)
        setattr(self, kind, text)
        return changed and bool(text)

    # --- from the executor and fusion threads ----------------------------------------------------

    def pair_made(self) -> None:
        self.pairs.event()

    def pair_failed(self, exc: BaseException) -> str:
        """Count a pair that could not be fused and return the reason.

        The reason names the exception's type unless a ValueError or RuntimeError says it;
        the fusion status is ERROR for `FATAL_PAIR_ERRORS`, else WARN, until a pair is fused.
        """
        self.counters.failed += 1
        plain = isinstance(exc, (ValueError, RuntimeError)) and str(exc)
        reason = str(exc) if plain else f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._pair_error = reason
            self._pair_error_level = ERROR if isinstance(exc, FATAL_PAIR_ERRORS) else WARN
        return reason

    def pair_published(self, stamp_ns: int) -> None:
        now_ns = self.now_ns()
        with self._lock:
            self._pair_error, self._pair_error_level = "", OK
            if stamp_ns == 0 or now_ns <= 0 or now_ns < stamp_ns:  # no stamp, or another clock
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

    def _status(self, task: str, level: int, message: str, values: Mapping) -> DiagnosticStatus:
        name = status_name(self.node_name, task)
        return make_status(name, self.hardware_id, level, message[:300], dict(values))

    def fusion_status(
        self,
        state: str,
        running: Mapping[str, Any],
        *,
        listening: bool = True,
        pairing: tuple[int, str] | None = None,
    ) -> DiagnosticStatus:
        """The fusion status in lifecycle `state`; `running` describes what runs (device, ...).

        `listening`: some output has a subscriber; `pairing`: what the input and pair windows
        say about pairing, when something is wrong with it.
        """
        counts = self.counters
        with self._lock:
            pair_error, pair_level = self._pair_error, self._pair_error_level
            lat = sorted(self._latency_ms)
            unmeasured = self._unmeasured
        if self.config_error:
            level, message = ERROR, self.config_error
        elif state != "active":
            level, message = OK, f"{state}: not fusing"
        elif not listening:
            level, message = OK, "no subscriber on any output: not decoding or fusing"
        else:
            problems = [
                (lvl, text)
                for lvl, text in (
                    (pair_level, pair_error),
                    (WARN, self.fallback),
                    (WARN, self.geometry),
                )
                if text
            ]
            if not counts.pairs:
                problems.append(pairing or (WARN, "waiting for thermal/visible pairs"))
            elif pairing is not None:
                problems.append(pairing)
            level, message = merge_summaries(problems) if problems else (OK, "fusing")
        if self.duplicate:  # whatever the state: both nodes answer the same services
            level, message = merge_summaries([(level, message), (WARN, self.duplicate)])
        values = {
            "lifecycle state": state,
            "subscribed outputs": "yes" if listening else "none: not decoding or fusing",
            "pairs": counts.pairs,
            "published": counts.published,
            "dropped pairs (stale)": counts.dropped,
            "failed pairs": counts.failed,
            "messages not decoded (no subscriber)": counts.idle,
            **{f"bad {k} messages": v for k, v in counts.bad.items()},
            "latency mean (ms)": f"{sum(lat) / len(lat):.1f}" if lat else "",
            "latency max (ms)": f"{lat[-1]:.1f}" if lat else "",
            "latency not measured (stamp 0, clock unset or behind the stamps)": unmeasured,
            "last error": pair_error,
            "fallback": self.fallback,
            "configuration error": self.config_error,
            "name clash": self.duplicate,
            "geometry": self.geometry,
            **running,
        }
        return self._status("fusion", level, message, values)

    def array(
        self,
        state: str,
        running: Mapping[str, Any],
        monitors: Mapping[str, InputMonitor],
        output: OutputMonitor | None = None,
        alignment: Summary | None = None,
        *,
        listening: bool = True,
    ) -> DiagnosticArray:
        """The /diagnostics message of this period (each check's window moves on).

        `alignment`: the alignment status's summary (`AlignmentMonitor`), published while active.
        """
        now_s = self.now_ns() / 1e9
        statuses: list[DiagnosticStatus] = []
        pairing = None
        if state == "active":
            input_events = {}
            for role, monitor in monitors.items():
                level, message, values = monitor.update(now_s)
                input_events[role] = int(values.get("Events in window", "0"))
                statuses.append(self._status(f"{role} input", level, message, values))
            if output is not None:
                summary = output.update(now_s) if listening else output.idle(now_s)
                statuses.append(self._status(f"{output.topic} topic status", *summary))
            if alignment is not None:
                statuses.append(self._status("alignment", *alignment))
            _, _, pair_values = self.pairs.update(now_s)
            if listening and input_events and all(input_events.values()):
                if pair_values["Events in window"] == "0":
                    pairing = (WARN, self._no_pairs(monitors, pair_values, now_s))
        fusion = self.fusion_status(state, running, listening=listening, pairing=pairing)
        msg = DiagnosticArray(status=[fusion, *statuses])
        now_ns = self.now_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        return msg

    def _no_pairs(
        self, monitors: Mapping[str, InputMonitor], pair_values: Mapping, now_s: float
    ) -> str:
        """Why the inputs arrive but make no pair: how near their stamps come, against the slop."""
        span = float(pair_values["Duration of window (s)"])
        text = f"inputs arrive but no pair was made in {span:.1f} s"
        thermal, visible = monitors.get("thermal"), monitors.get("visible")
        if thermal is None or visible is None:
            return text
        since = now_s - span  # the messages of the window without a pair
        gaps = [t - v for t in thermal.recent_stamps(since) for v in visible.recent_stamps(since)]
        if not gaps:
            return text
        gap = min(gaps, key=abs)
        side = "ahead of" if gap > 0 else "behind"
        return (
            f"{text}: the nearest thermal stamp is {abs(gap):.3f} s {side} a visible one, more "
            f"than sync_slop {self.sync_slop:g} s allows"
            if abs(gap) > self.sync_slop
            else f"{text} (stamps within sync_slop {self.sync_slop:g} s: see the counters)"
        )

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
