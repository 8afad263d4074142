"""The synthetic cameras node on real DDS: encodings, stamps, frame ids, camera info, fusion.

The cameras also feed the fusion node, end to end.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_helpers import wait_for  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from sosmaskfuse_core.formats.image_codec import image_to_array
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene
from sosmaskfuse_ros.fusion_node import FusionNode  # noqa: E402
from sosmaskfuse_ros.synthetic_cameras import SyntheticCameras  # noqa: E402

SEC = 1_000_000_000
_counter = iter(range(1_000_000))
BEST_EFFORT = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)


class Listener:
    """A node in `ns` keeping every message of the given (topic, type) pairs."""

    def __init__(self, session, ns, topics, qos=BEST_EFFORT):
        self.session, self.lock = session, threading.Lock()
        self.node = session.add(
            Node(f"listener{next(_counter)}", namespace=ns, context=session.context)
        )
        self.msgs = {topic: [] for topic, _ in topics}
        for topic, kind in topics:
            self.node.create_subscription(kind, topic, lambda m, t=topic: self._keep(t, m), qos)

    def _keep(self, topic, msg):
        with self.lock:
            self.msgs[topic].append(msg)

    def count(self, topic):
        with self.lock:
            return len(self.msgs[topic])


def _cameras(session, ns, **overrides):
    values = {"width": 128, "height": 96, "rate": 20.0, **overrides}
    return session.add(
        SyntheticCameras(
            namespace=ns,
            context=session.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
        )
    )


def _stamp(msg) -> int:
    return msg.header.stamp.sec * SEC + msg.header.stamp.nanosec


def _close(session, *nodes):
    for node in nodes:
        session.remove(node)
    errors, session.errors[:] = list(session.errors), []
    assert errors == [], errors


def test_images_camera_info_stamps_and_frame_ids(session):
    ns = f"/cams{next(_counter)}"
    before = time.time_ns()
    cams = _cameras(session, ns, thermal_scale=0.5, seed=3)
    listen = Listener(
        session,
        ns,
        [
            ("thermal/image_raw", Image),
            ("visible/image_raw", Image),
            ("thermal/camera_info", CameraInfo),
            ("visible/camera_info", CameraInfo),
        ],
    )
    assert wait_for(lambda: all(listen.count(t) >= 4 for t in listen.msgs), 15), {
        t: listen.count(t) for t in listen.msgs
    }
    after = time.time_ns()
    thermal, visible = listen.msgs["thermal/image_raw"][-1], listen.msgs["visible/image_raw"][-1]
    assert (thermal.encoding, thermal.width, thermal.height, thermal.header.frame_id) == (
        "mono16",
        64,
        48,
        "thermal_optical_frame",
    )
    assert (visible.encoding, visible.width, visible.height, visible.header.frame_id) == (
        "rgb8",
        128,
        96,
        "visible_optical_frame",
    )
    counts = image_to_array(thermal)
    assert counts.dtype == np.uint16 and 6000 < np.median(counts) < 9500 and counts.max() > 9000
    assert image_to_array(visible).shape == (96, 128, 3)

    # one tick: the thermal stamp is time_offset (4 ms) after the visible stamp; stamps are wall
    # time here
    visible_stamps = {_stamp(m) for m in listen.msgs["visible/image_raw"]}
    offsets = [_stamp(m) - 4_000_000 in visible_stamps for m in listen.msgs["thermal/image_raw"]]
    assert sum(offsets) >= 2, offsets
    # stamps are wall time (the rate is checked exactly in sim time, below)
    assert all(before <= s <= after for s in visible_stamps), (before, visible_stamps, after)

    scene = SyntheticScene(128, 96, thermal_size=(64, 48))
    for topic, camera, size in (
        ("thermal/camera_info", "thermal", (64, 48)),
        ("visible/camera_info", "visible", (128, 96)),
    ):
        info = listen.msgs[topic][-1]
        assert (info.width, info.height) == size and info.distortion_model == "plumb_bob"
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), scene.camera_matrix(camera))
        assert info.header.frame_id == f"{camera}_optical_frame"
    assert {_stamp(m) for m in listen.msgs["visible/camera_info"]} & visible_stamps
    _close(session, listen.node, cams)


def test_sim_time_stamps_rate_and_a_negative_offset(session):
    """/clock stepped by hand, half a period at a time: a frame at every period, stamped then.

    Each step waits until the cameras' clock shows it and, at a period, until that frame
    arrived, so every stamp is known exactly (no wall time involved).
    """
    from rosgraph_msgs.msg import Clock

    ns = f"/cams{next(_counter)}"
    cams = _cameras(
        session,
        ns,
        rate=20.0,
        use_sim_time=True,
        time_offset=-0.01,
        thermal_frame_id="ir",
        visible_frame_id="rgb",
        publish_camera_info=False,
    )
    listen = Listener(session, ns, [("thermal/image_raw", Image), ("visible/image_raw", Image)])
    clock = listen.node.create_publisher(Clock, "/clock", 10)
    assert wait_for(lambda: clock.get_subscription_count() > 0)
    t0, period = 5_000 * SEC, SEC // 20
    for k in range(11):  # ends on a period: a stray frame at a half period shows in the count
        now = t0 + k * period // 2
        clock.publish(Clock(clock=rclpy.time.Time(nanoseconds=now).to_msg()))
        assert wait_for(lambda: cams.get_clock().now().nanoseconds == now, 10), k
        if k % 2 == 0:  # a whole period since the last frame: the timer fires
            n = k // 2 + 1
            assert wait_for(
                lambda: (
                    cams.frames >= n
                    and listen.count("visible/image_raw") >= n
                    and listen.count("thermal/image_raw") >= n
                ),
                10,
            ), (k, cams.frames, listen.count("visible/image_raw"))
    assert cams.frames == 6  # and none at the half periods
    assert wait_for(lambda: listen.count("visible/image_raw") == 6, 10)
    vis, ir = listen.msgs["visible/image_raw"], listen.msgs["thermal/image_raw"]
    ticks = [t0 + i * period for i in range(6)]  # 20 Hz of the sim clock
    assert [_stamp(m) for m in ir] == ticks
    assert [_stamp(m) for m in vis] == [t + 10_000_000 for t in ticks]  # the visible 10 ms later
    assert (vis[0].header.frame_id, ir[0].header.frame_id) == ("rgb", "ir")
    assert cams.count_publishers(f"{ns}/visible/camera_info") == 0
    _close(session, listen.node, cams)


def test_synthetic_cameras_feed_the_fusion_node_end_to_end(session, tiny_checkpoint_files):
    ns = f"/demo{next(_counter)}"
    ae, sos = tiny_checkpoint_files
    values = {
        "autoencoder_weights": ae,
        "sosnet_weights": sos,
        "mask_source": "sosnet",
        "device": "cpu",
        "log_period": 0.0,
    }
    fusion = session.add(
        FusionNode(
            namespace=ns,
            context=session.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
        )
    )
    listen = Listener(
        session,
        ns,
        [("fused_image", Image), ("sos_mask", Image), ("visible/image_raw", Image)],
        qos=QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT),
    )
    cams = _cameras(session, ns, thermal_scale=0.5, rate=10.0)
    assert wait_for(
        lambda: listen.count("fused_image") >= 3 and listen.count("sos_mask") >= 1, 20
    ), (fusion.counts, fusion.report.last_error)
    fused = listen.msgs["fused_image"][-1]
    assert (fused.encoding, fused.width, fused.height) == ("mono8", 128, 96)
    assert fused.header.frame_id == "visible_optical_frame"
    assert _stamp(fused) in {
        _stamp(m) for m in listen.msgs["visible/image_raw"]
    }  # the visible frame's header
    assert (
        fusion.counts.bad == {"thermal": 0, "visible": 0, "mask": 0} and fusion.counts.failed == 0
    )
    _close(session, cams, listen.node, fusion)
