"""The fusion node as an integrator meets it in the first hour, on real rclpy over Fast DDS.

Lazy processing (nothing decoded or fused without a subscriber), the paper preset, the CPU
thread cap, the processing size a pair must fit in, two nodes of one name, the shipped
parameter file, the camera_info QoS override, and a node that runs without `rosbags`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

import torch  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from node_rig import RELIABLE, SEC, Store  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import ReliabilityPolicy  # noqa: E402
from ros_helpers import wait_for  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from sosmaskfuse_core.settings import table  # noqa: E402
from sosmaskfuse_ros.fusion_node import FusionNode  # noqa: E402

OK, WARN = DiagnosticStatus.OK, DiagnosticStatus.WARN
REPO = Path(__file__).resolve().parents[1]
_count = iter(range(1000))


def _stream(r, period: float = 0.05):
    """Pairs stamped now, every `period` s, until the returned event is set."""
    stop = threading.Event()

    def run():
        while not stop.wait(period):
            r.pair(r.node.get_clock().now().nanoseconds)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    stop.thread = thread  # type: ignore[attr-defined]
    return stop


def _stop(stop) -> None:
    stop.set()
    stop.thread.join()


# --- lazy processing -------------------------------------------------------------------------


def test_nothing_is_decoded_or_fused_without_a_subscriber_and_the_first_one_starts_it(rig):
    r = rig(subscribe=False)
    assert not r.node.has_subscribers
    for k in range(1, 4):
        r.pair(k * SEC)
    # the messages arrive (and are counted for the input checks) but are not decoded
    assert wait_for(lambda: r.node.counts.idle == 6), r.node.counts
    counts = r.node.counts
    assert (counts.pairs, counts.published, counts.failed) == (0, 0, 0)
    fusion = r.wait_status("fusion", lambda s: "no subscriber" in s.message)
    assert (fusion.level, fusion.message) == (
        OK,
        "no subscriber on any output: not decoding or fusing",
    )
    output = r.wait_status(f"{r.ns}/fused_image topic status", lambda s: True)
    assert output.level == OK and "no subscriber" in output.message
    # a subscriber to one output only (as `ros2 bag record /sos_mask` would be): fusion starts
    masks = Store()
    stop = _stream(r)
    try:
        start = time.monotonic()
        r.tester.create_subscription(Image, "sos_mask", masks, RELIABLE)
        assert masks.wait_count(1, timeout=10.0)
        assert time.monotonic() - start < 2.0, "fusion took over 2 s to resume"
    finally:
        _stop(stop)
    assert r.node.counts.published >= 1 and r.fused == []  # fused_image: nobody listened


def test_fusion_stops_when_the_last_subscriber_leaves(rig):
    r = rig()
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
    for sub in list(r.tester.subscriptions):
        if sub.topic_name.startswith(f"{r.ns}/"):
            r.tester.destroy_subscription(sub)
    assert wait_for(lambda: not r.node.has_subscribers)
    idle, published = r.node.counts.idle, r.node.counts.published
    for k in range(2, 5):
        r.pair(k * SEC)
    assert wait_for(lambda: r.node.counts.idle == idle + 6), r.node.counts  # taken in, idle
    assert r.node.counts.published == published and r.node.counts.pairs == 1
    r.wait_status("fusion", lambda s: "no subscriber" in s.message)


# --- settings of issue 20 --------------------------------------------------------------------


def test_the_paper_preset_sets_its_settings_and_values_of_your_own_win(rig):
    paper = table.PRESETS["paper"]
    r = rig(preset="paper", wait_subscribed=False)
    node = r.node
    for name, value in paper.items():  # the parameters say what runs
        if name == "autoencoder_weights":  # the rig gives its tiny weights: a value given wins
            assert node.get_parameter(name).value != value
            continue
        assert node.get_parameter(name).value == value, name
    assert node.pipeline.config.precision == "fp32"
    config = node.pipeline.config
    assert (config.fusion_mode, config.mask_input_stretch, config.output_scaling) == (
        "imvf",
        False,
        "minmax",
    )
    assert node.stage.mask_smoothing == 0.0 and node.stage.smoother is None
    own = rig(preset="paper", fusion_mode="sca", mask_smoothing=0.3, wait_subscribed=False)
    assert own.node.pipeline.config.fusion_mode == "sca"  # given: kept
    assert own.node.stage.mask_smoothing == 0.3
    assert own.node.pipeline.config.output_scaling == "minmax"  # not given: the preset's


def test_cpu_threads_caps_torchs_threads(rig):
    before = torch.get_num_threads()
    try:
        r = rig(cpu_threads=1, wait_subscribed=False)
        assert r.node.state == "active" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_processing_size_no_pair_fits_in_is_refused_at_configure(rig):
    r = rig(process_width=8192, process_height=8192, wait_subscribed=False)
    assert r.node.state == "unconfigured"
    error = r.node.report.config_error
    assert "process_width/height 8192x8192: one pair needs about" in error, error
    need, free = [float(x) for x in re.findall(r"([0-9.]+) GB", error)]
    assert need > free and need > 100  # every layer's output of a 64-channel network
    status = r.wait_status("fusion", lambda s: True)
    assert status.level == DiagnosticStatus.ERROR and "8192x8192" in status.message


def test_two_nodes_of_one_name_are_a_warning_in_the_log_and_the_diagnostics(
    session, tiny_checkpoint_files, rosout
):
    ns = f"/twins{next(_count)}"
    values = {
        "autoencoder_weights": tiny_checkpoint_files[0],
        "sosnet_weights": tiny_checkpoint_files[1],
        "device": "cpu",
        "diagnostic_updater.period": 0.2,
        "log_period": 0.0,
    }
    overrides = [Parameter(k, value=v) for k, v in values.items()]
    nodes = [
        session.add(
            FusionNode(namespace=ns, context=session.context, parameter_overrides=overrides)
        )
        for _ in range(2)
    ]
    listener = session.add(Node(f"twin_listener{next(_count)}", context=session.context))
    statuses = Store()
    listener.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: [statuses(s) for s in m.status if s.name == "sosmaskfuse: fusion"],
        50,
    )
    try:
        assert wait_for(lambda: all(n.report.duplicate for n in nodes), 10)
        text = f"2 nodes are named {ns}/sosmaskfuse"
        assert statuses.wait(lambda items: any(text in s.message for s in items))
        assert next(s for s in statuses if text in s.message).level == WARN
        assert rosout.wait_line(f"{ns.lstrip('/')}.sosmaskfuse", text)
    finally:
        session.remove(listener)
        for node in nodes:
            session.remove(node)


def test_the_shipped_parameter_file_starts_the_node(session, tiny_checkpoint_files):
    ns = f"/shipped{next(_count)}"
    node = session.add(
        FusionNode(
            namespace=ns,
            context=session.context,
            cli_args=[
                "--ros-args",
                "--params-file",
                str(REPO / "config" / "sosmaskfuse.yaml"),
                "-p",
                "device:=cpu",
                "-p",
                f"autoencoder_weights:={tiny_checkpoint_files[0]}",
                "-p",
                f"qos_overrides.{ns}/visible/camera_info.subscription.reliability:=reliable",
            ],
        )
    )
    probe = session.add(Node(f"info_qos_probe{next(_count)}", context=session.context))
    try:
        assert node.state == "active", node.report.config_error
        assert node.get_parameter("homography").value == []  # `homography: []` in the file
        assert node.get_parameter("diagnostic_updater.period").value == 1.0
        topic = f"{ns}/visible/camera_info"  # camera_info takes a QoS override like the images
        assert wait_for(lambda: probe.get_subscriptions_info_by_topic(topic))
        (sub,) = probe.get_subscriptions_info_by_topic(topic)
        assert sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    finally:
        session.remove(probe)
        session.remove(node)


# --- install ---------------------------------------------------------------------------------

BLOCKER = """
import sys


class _NoRosbags:
    def find_spec(self, name, path=None, target=None):
        if name == "rosbags" or name.startswith("rosbags."):
            raise ModuleNotFoundError(f"No module named {name!r} (uninstalled for this test)")
        return None


sys.meta_path.insert(0, _NoRosbags())
"""


def test_the_node_runs_without_rosbags(session, tiny_checkpoint_files, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    path = [str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    check = subprocess.run(
        [sys.executable, "-c", "import rosbags"], env=env, capture_output=True, text=True
    )
    assert check.returncode != 0 and "uninstalled for this test" in check.stderr
    ns = f"/norosbags{next(_count)}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sosmaskfuse_ros.fusion_node",
            "--ros-args",
            "-r",
            f"__ns:={ns}",
            "-p",
            "device:=cpu",
            "-p",
            f"autoencoder_weights:={tiny_checkpoint_files[0]}",
            "-p",
            "log_period:=0.0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert session.wait_active(f"{ns}/sosmaskfuse", proc, 60), proc.poll()
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Traceback" not in output and "ModuleNotFoundError" not in output, output
