"""Publish a bag's messages at the recorded pace, with /clock: the engine of `sosmaskfuse play`.

Messages go out as the serialized bytes stored in the bag (rclpy publishes ``bytes`` as a
serialized message; rosbag2 stores exactly what rmw serialized), so any type whose Python
message package is importable plays, with nothing converted. Pacing follows the log times:
message i is due ``(t_i - t_start) / rate`` seconds after playback started. With a clock rate,
/clock carries the playback time, ``clock_hz`` times a second while waiting and the message's
own log time just before each message, so a node with use_sim_time sees the bag's time.
The player reads and waits on a `Timekeeper` (real monotonic time by default; tests give one
whose sleep advances a counter, so pacing is checked exactly without waiting).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Connection, ConnectionExtRosbag2, Qos, QosDurability, QosReliability
from rosbags.rosbag2 import ReaderError
from rosgraph_msgs.msg import Clock

from sosmaskfuse_core.formats.rosbag_io import NS_PER_SECOND, bag_reader, format_time

PUBLISHER_DEPTH = 10  # what `ros2 bag play` offers
STOP_CHECK = 0.1  # longest sleep (s): how late a set `stop` is noticed


@dataclass(frozen=True)
class Timekeeper:
    """The time playback is paced by: `now()` in seconds, `sleep(seconds)`."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def message_class(msgtype: str) -> type:
    """The rclpy class of ``pkg/msg/Name``; LookupError if its package is not importable."""
    package, _, name = msgtype.rpartition("/")
    module_name = package.replace("/", ".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        raise LookupError(
            f"{msgtype}: no Python message class ({module_name}.{name} is not importable)"
        ) from None


def publisher_qos(recorded: list[Qos]) -> QoSProfile:
    """Reliability and durability as recorded when every recorded publisher agreed.

    Otherwise reliable and volatile.
    """
    reliability = {q.reliability for q in recorded}
    durability = {q.durability for q in recorded}
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=PUBLISHER_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT
        if reliability == {QosReliability.BEST_EFFORT}
        else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL
        if durability == {QosDurability.TRANSIENT_LOCAL}
        else DurabilityPolicy.VOLATILE,
    )


def clock_qos() -> QoSProfile:
    """Reliable, depth 1: every /clock subscriber can match it.

    rclpy's TimeSource asks best effort.
    """
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE
    )


@dataclass
class PlayReport:
    """What was published (per topic), and what could not be."""

    published: dict[str, int] = field(default_factory=dict)
    not_played: dict[str, str] = field(default_factory=dict)  # topic -> reason
    loops: int = 0
    seconds: float = 0.0
    last_time: int | None = None  # log time of the last message published
    interrupted: bool = False


Hold = Callable[[str, int], Any]


class BagPlayer:
    """Publishers for a bag's topics on ``node``; `play()` publishes.

    Close it (or use `with`) when done.
    """

    def __init__(
        self,
        node: Node,
        bag: str | Path,
        *,
        rate: float = 1.0,
        clock_hz: float | None = None,
        topics: list[str] | None = None,
        loop: bool = False,
        start_offset: float = 0.0,
        timekeeper: Timekeeper | None = None,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate {rate}: must be positive")
        if clock_hz is not None and not clock_hz > 0:
            raise ValueError(f"clock rate {clock_hz}: must be positive")
        if not start_offset >= 0:
            raise ValueError(f"start offset {start_offset}: must not be negative")
        self.node, self.rate, self.clock_hz, self.loop = node, rate, clock_hz, loop
        self.time = timekeeper or Timekeeper()
        self.report = PlayReport()
        self.reader = bag_reader(bag)  # loses only a chunk it cannot read, names bad metadata
        self.reader.open()
        try:
            self._connections = self._select(topics)
            self.publishers: dict[str, Publisher] = {}
            self._by_connection: dict[int, Publisher] = {}
            self._make_publishers()
        except BaseException:
            self.reader.close()
            raise
        self.start = self.reader.start_time + round(start_offset * NS_PER_SECOND)
        self.clock_publisher = (
            node.create_publisher(Clock, "/clock", clock_qos()) if clock_hz else None
        )
        self._last_clock = -1

    def _select(self, topics: list[str] | None) -> list[Connection]:
        available = self.reader.topics
        if topics:
            missing = [t for t in topics if t not in available]
            if missing:
                raise ValueError(
                    f"not in the bag: {', '.join(missing)}; "
                    f"its topics: {', '.join(sorted(available))}"
                )
        return [c for c in self.reader.connections if not topics or c.topic in topics]

    def _make_publishers(self) -> None:
        for topic, info in sorted(self.reader.topics.items()):
            conns = [c for c in self._connections if c.topic == topic]
            if not conns:
                continue
            if info.msgtype is None:
                self.report.not_played[topic] = "recorded with several message types"
                continue
            try:
                cls = message_class(info.msgtype)
            except LookupError as exc:
                self.report.not_played[topic] = str(exc)
                continue
            recorded = [
                q
                for c in conns
                if isinstance(c.ext, ConnectionExtRosbag2)
                for q in c.ext.offered_qos_profiles
            ]
            self.publishers[topic] = self.node.create_publisher(
                cls, topic, publisher_qos(recorded)
            )
            self.report.published[topic] = 0
            self._by_connection.update({c.id: self.publishers[topic] for c in conns})

    # --- playing ---------------------------------------------------------------------------------

    def play(self, *, hold: Hold | None = None, stop: threading.Event | None = None) -> PlayReport:
        """Publish until the end (or forever with loop, until ``stop`` is set).

        ``hold(topic, log_time)``, if given, is called before each message is published and may
        block: playback pauses meanwhile (the schedule shifts by the time it took), as a paused
        `ros2 bag play` does. Tests use it to wait until a node has caught up.
        """
        started = self.time.now()
        stop = stop or threading.Event()
        connections = [c for c in self._connections if c.id in self._by_connection]
        try:
            while not stop.is_set():
                self._play_once(connections, hold, stop)
                self.report.loops += 1
                if not self.loop:
                    break
        except KeyboardInterrupt:
            self.report.interrupted = True
            raise
        finally:
            self.report.seconds = self.time.now() - started
        return self.report

    def _play_once(
        self, connections: list[Connection], hold: Hold | None, stop: threading.Event
    ) -> None:
        wall0 = self.time.now()
        self._next_clock = wall0
        self._last_clock = -1
        for conn, log_time, raw in self.reader.messages(connections, start=self.start):
            if not self._wait(log_time, wall0, stop):
                return
            if hold is not None:
                held = self.time.now()
                hold(conn.topic, log_time)
                wall0 += self.time.now() - held
            self._publish_clock(log_time)
            self._by_connection[conn.id].publish(raw if isinstance(raw, bytes) else bytes(raw))
            self.report.published[conn.topic] += 1
            self.report.last_time = log_time

    def _wait(self, log_time: int, wall0: float, stop: threading.Event) -> bool:
        """Sleep until ``log_time`` is due, publishing /clock meanwhile; False if stopped."""
        due = wall0 + (log_time - self.start) / NS_PER_SECOND / self.rate
        while not stop.is_set():
            now = self.time.now()
            if now >= due:
                return True
            wake = due
            if self.clock_publisher is not None:
                assert self.clock_hz is not None  # a clock is published only at a clock rate
                if now >= self._next_clock:
                    playback = self.start + round((now - wall0) * self.rate * NS_PER_SECOND)
                    self._publish_clock(min(playback, log_time))
                    self._next_clock = now + 1.0 / self.clock_hz
                wake = min(due, self._next_clock)
            self.time.sleep(min(wake - now, STOP_CHECK))  # wake up to notice `stop`
        return False

    def _publish_clock(self, ns: int) -> None:
        if self.clock_publisher is None or ns < self._last_clock:
            return
        self._last_clock = ns
        sec, nanosec = divmod(ns, NS_PER_SECOND)
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = sec, nanosec
        self.clock_publisher.publish(msg)

    # --- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the bag and destroy the publishers."""
        for pub in [
            *self.publishers.values(),
            *([self.clock_publisher] if self.clock_publisher else []),
        ]:
            self.node.destroy_publisher(pub)
        self.publishers.clear()
        self.clock_publisher = None
        if self.reader.is_open:
            self.reader.close()

    def __enter__(self) -> BagPlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- command line (options are defined in sosmaskfuse_ros.commands) -----------------------------


def _wait_before_playing(player: BagPlayer, delay: float, until_subscribed: bool) -> bool:
    """Sleep `delay` s, or with `until_subscribed` only until every publisher has a subscriber.

    True when it stopped early because every topic had a subscriber.
    """
    deadline = time.monotonic() + max(delay, 0.0)
    while time.monotonic() < deadline:
        if until_subscribed and all(
            pub.get_subscription_count() > 0 for pub in player.publishers.values()
        ):
            return True
        time.sleep(min(0.02, max(deadline - time.monotonic(), 0.0)))
    return False


def run(args: argparse.Namespace, stream=None) -> int:
    stream = stream or sys.stderr
    rclpy.init()
    node = rclpy.create_node("sosmaskfuse_player")
    try:
        try:
            player = BagPlayer(
                node,
                args.bag,
                rate=args.rate,
                clock_hz=args.clock,
                topics=args.topics,
                loop=args.loop,
                start_offset=args.start_offset,
            )
        except (ValueError, ReaderError, OSError) as exc:
            print(f"error: {exc}", file=stream)
            return 2
        with player:
            _describe(player, args, stream)
            if not player.publishers:
                print("error: nothing to play", file=stream)
                return 2
            try:
                if _wait_before_playing(player, args.delay, args.wait_for_subscribers):
                    print("every topic has a subscriber: playing", file=stream)
                player.play()
            except KeyboardInterrupt:
                pass
        report = player.report
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    state = "stopped" if report.interrupted else "played"
    total = sum(report.published.values())
    last = (
        f", last log time {format_time(report.last_time)}" if report.last_time is not None else ""
    )
    loops = f" in {report.loops} loops" if report.loops > 1 else ""
    print(f"{state}: {total} messages{loops} in {report.seconds:.1f} s{last}", file=stream)
    for topic, n in report.published.items():
        print(f"  {topic}: {n}", file=stream)
    return 1 if report.not_played else 0


def _describe(player: BagPlayer, args: argparse.Namespace, stream) -> None:
    reader = player.reader
    duration = (reader.end_time - player.start) / NS_PER_SECOND
    clock = f", /clock at {args.clock:g} Hz" if args.clock else ""
    print(
        f"playing {args.bag}: {len(player.publishers)} topics, {max(duration, 0.0):.1f} s from "
        f"{format_time(player.start)} at rate {args.rate:g}{clock}"
        f"{' (looping)' if args.loop else ''}",
        file=stream,
    )
    for topic, pub in player.publishers.items():
        qos = pub.qos_profile
        print(
            f"  {topic}  {reader.topics[topic].msgtype}  {qos.reliability.name.lower()}, "
            f"{qos.durability.name.lower()}",
            file=stream,
        )
    for topic, reason in player.report.not_played.items():
        print(f"  not played: {topic}: {reason}", file=stream)
