"""`sosmaskfuse demo` (the README's main job) end to end.

Two node processes over DDS, the MCAP bag, the contact sheet.
"""

import subprocess
import sys

import cv2
import pytest

pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

from rosbags.rosbag2 import Reader  # noqa: E402


def test_demo_records_every_stream_and_writes_the_contact_sheet(tmp_path):
    out = tmp_path / "demo"
    # a small run: 3 fused frames at 64x48 (the ROS_DOMAIN_ID of this test session is inherited)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sosmaskfuse_core.cli",
            "demo",
            "--out",
            str(out),
            "--frames",
            "3",
            "--process-size",
            "64",
            "48",
            "--sheet-rows",
            "2",
            "--timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "throughput:" in proc.stdout and "latency" in proc.stdout
    assert "models: shipped lite" in proc.stdout and "mask: shipped SOS network" in proc.stdout
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 2 * 100 and sheet.shape[1] > 4 * 100
    with Reader(out / "demo_bag") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    fused = [n for t, n in counts.items() if t.endswith("/fused_image")]
    masks = [n for t, n in counts.items() if t.endswith("/sos_mask")]
    assert len(fused) == 1 and fused[0] >= 3 and masks == fused, (
        counts
    )  # every mask of a fused frame too
    cameras = [n for t, n in counts.items() if t.endswith("/image_raw")]
    # best-effort camera streams: the recorder may match them a little after the fusion node does
    assert len(cameras) == 2 and min(cameras) >= 1, counts
