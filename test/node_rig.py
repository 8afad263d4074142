"""Test helpers for the fusion node on real rclpy: a node + tester rig, event waits, /rosout.

Built on `ros_helpers` (the session and spin harness). Negative checks ("nothing was
published") never wait for time to pass, which proves nothing on a slow machine: the test
sends a later pair through the same path and waits for its output; outputs keep their order,
so whatever the earlier input would have produced would have come out before it.
"""

from __future__ import annotations

import threading
import traceback

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import RosSession, image_msg, wait_for
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from sosmaskfuse_ros.fusion_node import FusionNode

H, W = 48, 64
SEC = 1_000_000_000
_counter = iter(range(1_000_000))
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * SEC + msg.header.stamp.nanosec


class Store:
    """Messages kept by a subscription callback, with a condition to wait on."""

    def __init__(self) -> None:
        self.items: list = []
        self._cond = threading.Condition()

    def __call__(self, msg) -> None:
        with self._cond:
            self.items.append(msg)
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self.items)

    def __getitem__(self, i):
        with self._cond:
            return self.items[i]

    def __iter__(self):
        with self._cond:
            return iter(list(self.items))

    def __eq__(self, other) -> bool:
        if not isinstance(other, (list, tuple)):
            return NotImplemented
        with self._cond:
            return self.items == list(other)

    __hash__ = object.__hash__

    def wait(self, predicate, timeout: float = 20.0) -> bool:
        """Wait until predicate(items) holds (bounded)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.items), timeout)

    def wait_count(self, n: int, timeout: float = 20.0) -> bool:
        return self.wait(lambda items: len(items) >= n, timeout)


class Rosout:
    """Every /rosout line of the session (transient local: lines logged before it joined too)."""

    def __init__(self, session: RosSession) -> None:
        from rcl_interfaces.msg import Log

        self.node = session.add(Node(f"rosout_reader{next(_counter)}", context=session.context))
        self.lines = Store()
        qos = QoSProfile(
            depth=1000,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(Log, "/rosout", self.lines, qos)

    def wait_line(self, logger: str, text: str, timeout: float = 20.0) -> bool:
        """Wait for a line from `logger` (e.g. 'rig3.sosmaskfuse') containing `text`."""
        return self.lines.wait(
            lambda items: any(m.name == logger and text in m.msg for m in items), timeout
        )

    def texts(self, logger: str) -> list[str]:
        return [m.msg for m in self.lines if m.name == logger]


class Rig:
    """A fusion node in its own namespace, and a tester node publishing to it and listening.

    The tester subscribes to the node's outputs (`subscribe`; the node fuses only for a
    subscriber) and keeps the node's /diagnostics statuses in `statuses` (the node's status
    names carry its fully qualified name: `diagnostic_updater.use_fqn`).
    """

    def __init__(
        self,
        session: RosSession,
        weights,
        compressed=False,
        mask_topic=False,
        wait_subscribed=True,
        subscribe=True,
        **overrides,
    ):
        self.session = session
        self.ns = f"/rig{next(_counter)}"
        self.logger = self.ns.lstrip("/") + ".sosmaskfuse"
        self.fqn = f"{self.ns}/sosmaskfuse"
        values = {
            "autoencoder_weights": weights[0],
            "sosnet_weights": weights[1],
            "device": "cpu",
            "sync_slop": 0.05,
            "diagnostic_updater.period": 0.2,
            "diagnostic_updater.use_fqn": True,
            "log_period": 0.0,
            **overrides,
        }
        self.node = session.add(
            FusionNode(
                namespace=self.ns,
                context=session.context,
                parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
            )
        )
        self.tester = session.add(
            Node(f"tester{next(_counter)}", namespace=self.ns, context=session.context)
        )
        kind, suffix = (CompressedImage, "/compressed") if compressed else (Image, "")
        self.pub = {
            "thermal": self.tester.create_publisher(kind, "thermal/image_raw" + suffix, RELIABLE),
            "visible": self.tester.create_publisher(kind, "visible/image_raw" + suffix, RELIABLE),
            "camera_info": self.tester.create_publisher(
                CameraInfo, "visible/camera_info", RELIABLE
            ),
        }
        if mask_topic:
            self.pub["mask"] = self.tester.create_publisher(Image, "mask", RELIABLE)
        self.fused, self.masks, self.infos = Store(), Store(), Store()
        self.subscribed = subscribe
        if subscribe:
            self.subscribe()
        self.statuses = Store()  # this node's /diagnostics statuses, in arrival order
        prefix = f"{self.fqn}: "
        self.tester.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: [self.statuses(s) for s in m.status if s.name.startswith(prefix)],
            50,
        )
        if wait_subscribed:
            self.wait_discovery()

    def subscribe(self) -> list:
        """The tester's subscriptions to the node's outputs."""
        self.subscribed = True
        return [
            self.tester.create_subscription(Image, "fused_image", self.fused, RELIABLE),
            self.tester.create_subscription(Image, "sos_mask", self.masks, RELIABLE),
            self.tester.create_subscription(CameraInfo, "camera_info", self.infos, RELIABLE),
        ]

    def wait_discovery(self, timeout: float = 10.0) -> None:
        """Until the node hears the tester's inputs and (subscribed) the tester its outputs.

        The node's own view of its subscribers is waited for: it fuses only for one.
        """
        images = [p for role, p in self.pub.items() if role != "camera_info"]

        assert wait_for(
            lambda: (
                all(p.get_subscription_count() > 0 for p in images)
                and self.tester.count_publishers(f"{self.ns}/fused_image") > 0
                and (not self.subscribed or self.node.has_subscribers)
            ),
            timeout,
        ), f"discovery timed out (node {self.node.state}: {self.node.report.last_error})"

    def status(self, task: str):
        """The latest status of `task` ('fusion', 'thermal input', ...), None before one came."""
        named = [s for s in self.statuses if s.name == f"{self.fqn}: {task}"]
        return named[-1] if named else None

    def wait_status(self, task: str, check, timeout: float = 20.0, since: int | None = None):
        """Wait until the latest status of `task` satisfies `check`; returns it.

        With `since` (a `len(self.statuses)` taken before the event), any status of `task`
        received after that index may satisfy it: an event reported for one diagnostics period
        is not missed when the next period's status arrives before this thread wakes up.
        """
        name = f"{self.fqn}: {task}"

        def found():
            if since is None:
                s = self.status(task)
                return s if s is not None and check(s) else None
            return next(
                (s for s in self.statuses.items[since:] if s.name == name and check(s)), None
            )

        ok = self.statuses.wait(lambda _: found() is not None, timeout)
        latest = found() if ok else self.status(task)
        assert ok, (task, latest.level if latest else None, latest.message if latest else None)
        return latest

    def send(self, role, msg):
        self.pub[role].publish(msg)

    def pair(
        self,
        t_ns,
        dt_ns=0,
        ir=None,
        vis=None,
        ir_enc="mono8",
        vis_enc="bgr8",
        frame_id="visible_optical",
    ):
        rng = np.random.default_rng(t_ns % 1000)
        ir = rng.integers(0, 256, (H, W), dtype=np.uint8) if ir is None else ir
        vis = rng.integers(0, 256, (H, W, 3), dtype=np.uint8) if vis is None else vis
        self.send("thermal", image_msg(ir, ir_enc, t_ns, "thermal_optical"))
        self.send("visible", image_msg(vis, vis_enc, t_ns + dt_ns, frame_id))

    def wait_outputs(self, n, timeout=20.0):
        return self.fused.wait_count(n, timeout)

    def wait_received(self, thermal: int, visible: int, timeout: float = 20.0) -> bool:
        """Wait until the node has taken in that many messages per input (and fused them all)."""
        node = self.node
        return wait_for(
            lambda: (
                node.counts.received["thermal"] >= thermal
                and node.counts.received["visible"] >= visible
                and not node.worker.pending
                and node.worker.processed >= node.counts.pairs - node.worker.dropped
            ),
            timeout,
        )

    def close(self):
        self.session.remove(self.tester)
        self.session.remove(self.node)
        errors, self.session.errors[:] = list(self.session.errors), []
        assert errors == [], "".join("".join(traceback.format_exception(e)) for e in errors)
        assert self.node.worker.failed == 0, "the fusion worker raised"
        assert self.node.alignment.worker.failed == 0, self.node.alignment.worker.errors
