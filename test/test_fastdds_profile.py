"""config/fastdds_large_images.xml: 1280x1024 rgb8 frames get through best effort on one host.

Without it, Fast DDS sends samples above its 512 KB shared-memory segment as UDP fragments and
a best-effort reader loses most of them (4 of 20 arrived in a trial on this project's VM). The
publisher runs as its own process with FASTRTPS_DEFAULT_PROFILES_FILE set, as a camera driver
would; the reader is this test's ordinary participant.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

from node_rig import Store  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_helpers import RosSession, wait_for  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "config" / "fastdds_large_images.xml"
PEER = Path(__file__).with_name("large_image_peer.py")
NS = "{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}"
FRAMES = 20


def test_the_profile_gives_shared_memory_segments_for_camera_frames():
    root = ET.parse(PROFILE).getroot()
    shm = [t for t in root.iter(f"{NS}transport_descriptor") if t.findtext(f"{NS}type") == "SHM"]
    assert len(shm) == 1
    assert int(shm[0].findtext(f"{NS}segment_size")) >= 8 * 1280 * 1024 * 3
    participant = root.find(f"{NS}participant")
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iter(f"{NS}transport_id")]
    assert shm[0].findtext(f"{NS}transport_id") in used


def test_1280x1024_rgb8_frames_get_through_best_effort_with_the_profile():
    session = RosSession()
    topic = f"/large_images_{os.getpid()}"
    got = Store()
    try:
        node = session.add(Node(f"large_image_reader_{os.getpid()}", context=session.context))
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
        node.create_subscription(Image, topic, got, qos)
        env = dict(os.environ, FASTRTPS_DEFAULT_PROFILES_FILE=str(PROFILE))
        peer = subprocess.run(
            [sys.executable, str(PEER), topic, str(FRAMES)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert peer.returncode == 0, peer.stdout + peer.stderr
        assert f"published {FRAMES}" in peer.stdout
        assert wait_for(lambda: len(got) >= FRAMES, 5)  # all there, or give the stragglers 5 s
        frames = list(got)
        assert len(frames) >= FRAMES - 1, f"{len(frames)} of {FRAMES} frames arrived"
        assert all(len(m.data) == 1280 * 1024 * 3 and m.width == 1280 for m in frames)
    finally:
        session.close()
