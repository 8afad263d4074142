"""`sosmaskfuse play` on real rclpy over DDS; the bags' type hashes against what rclpy reports."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

from bag_helpers import (
    SEC,
    THERMAL,
    VISIBLE,
    image_msg,
    one_torch_thread,
    pair_entries,
    read_bag,  # noqa: E402
    save_tiny_checkpoints,
    stamp_of,
    tiny_pipeline,
    write_bag,
)
from conftest import REPO  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_helpers import wait_for  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from sosmaskfuse_core import cli
from sosmaskfuse_core.formats.image_codec import image_to_array
from sosmaskfuse_core.formats.rosbag_io import COMPRESSED_IMAGE, IMAGE, qos_profile, typestore
from sosmaskfuse_core.pipeline.builder import build_pipeline
from sosmaskfuse_core.pipeline.pair_stage import PairStage
from sosmaskfuse_core.tools.fuse_bag import BagFusion, BagJob
from sosmaskfuse_core.tools.make_bag import BagLayout, folder_frames
from sosmaskfuse_core.tools.make_bag import write_bag as make_bag
from sosmaskfuse_ros import bag_player  # noqa: E402
from sosmaskfuse_ros.bag_player import STOP_CHECK, BagPlayer, Timekeeper  # noqa: E402
from sosmaskfuse_ros.fusion_node import FusionNode  # noqa: E402

_counter = iter(range(1_000_000))


@pytest.fixture
def player_node(session):
    node = Node(f"player{next(_counter)}", context=session.context)
    yield node
    node.destroy_node()


def _stamp(msg) -> int:
    return msg.header.stamp.sec * SEC + msg.header.stamp.nanosec


def test_bag_type_hashes_are_the_ones_rclpy_reports(session, tmp_path):
    """ros2 bag play matches topics by name and type: our bags' hashes must be the real ones."""
    node = session.add(Node(f"hashes{next(_counter)}", context=session.context))
    ns = f"/h{next(_counter)}"
    node.create_publisher(Image, f"{ns}/image", 1)
    node.create_publisher(CompressedImage, f"{ns}/compressed", 1)
    reported = {
        info.topic_type: str(info.topic_type_hash)
        for topic in (f"{ns}/image", f"{ns}/compressed")
        for info in node.get_publishers_info_by_topic(topic)
    }
    session.remove(node)
    assert reported[IMAGE] == typestore().hash_rihs01(IMAGE)
    assert reported[COMPRESSED_IMAGE] == typestore().hash_rihs01(COMPRESSED_IMAGE)
    write_bag(tmp_path / "in", "mcap", pair_entries(1))
    with one_torch_thread():
        BagFusion(
            tmp_path / "in", tmp_path / "out", BagJob(THERMAL, VISIBLE), PairStage(tiny_pipeline())
        ).run()
    _, conns = read_bag(tmp_path / "out")
    assert {c.msgtype: c.digest for c in conns.values()} == {IMAGE: reported[IMAGE]}


class FakeTime:
    """A Timekeeper's time that moves only when the player sleeps: pacing with no waiting."""

    def __init__(self, start: float = 100.0) -> None:
        self.t, self.sleeps = start, []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.t += seconds

    def keeper(self) -> Timekeeper:
        return Timekeeper(now=self.now, sleep=self.sleep)


def test_plays_raw_bytes_with_recorded_qos_pacing_and_clock(session, player_node, tmp_path):
    ns = f"/p{next(_counter)}"
    t0 = 50 * SEC
    entries = [
        (
            f"{ns}/a",
            t0 + i * SEC // 10,
            image_msg(np.full((4, 6), i, np.uint8), "mono8", t0 + i * SEC // 10),
        )
        for i in range(5)
    ]
    entries.append((f"{ns}/latched", t0, image_msg(np.zeros((2, 2), np.uint8), "mono8", t0)))
    write_bag(
        tmp_path / "bag",
        "sqlite3",
        entries,
        qos={
            f"{ns}/a": qos_profile("best_effort"),
            f"{ns}/latched": qos_profile(durability="transient_local"),
        },
    )
    listener = session.add(Node(f"listener{next(_counter)}", context=session.context))
    got, clocks = [], []
    listener.create_subscription(
        Image,
        f"{ns}/a",
        got.append,
        QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT),
    )
    raw = []
    listener.create_subscription(
        Image,
        f"{ns}/a",
        raw.append,
        QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT),
        raw=True,
    )
    listener.create_subscription(
        Clock,
        "/clock",
        lambda m: clocks.append(m.clock.sec * SEC + m.clock.nanosec),
        QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
    )
    fake = FakeTime()
    with BagPlayer(
        player_node,
        tmp_path / "bag",
        rate=2.0,
        clock_hz=50,
        topics=[f"{ns}/a", f"{ns}/latched"],
        start_offset=0.1,
        timekeeper=fake.keeper(),
    ) as player:
        assert (
            player.publishers[f"{ns}/a"].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        )
        assert (
            player.publishers[f"{ns}/latched"].qos_profile.durability
            == DurabilityPolicy.TRANSIENT_LOCAL
        )
        assert wait_for(
            lambda: (
                player.publishers[f"{ns}/a"].get_subscription_count() == 2
                and player.clock_publisher.get_subscription_count() >= 1
            )
        )
        sent = []  # (playback time, /clock value) of every /clock message, as published
        publish_clock = player.clock_publisher.publish
        player.clock_publisher.publish = lambda m: (
            sent.append((fake.t, m.clock.sec * SEC + m.clock.nanosec)),
            publish_clock(m),
        )
        published_at = []

        def hold(topic, log_time):  # lockstep with delivery: the burst loses nothing
            assert wait_for(lambda: len(got) == len(raw) == len(published_at), 10)
            published_at.append((fake.t, log_time))

        started = fake.t
        report = player.play(hold=hold)
    assert wait_for(
        lambda: len(got) == 4 and len(raw) == 4 and clocks and clocks[-1] == t0 + 4 * SEC // 10
    )
    session.remove(listener)
    assert report.published == {
        f"{ns}/a": 4,
        f"{ns}/latched": 0,
    }  # --start-offset 0.1 s skips the first two
    assert [_stamp(m) for m in got] == [t0 + i * SEC // 10 for i in range(1, 5)]
    bag, _ = read_bag(tmp_path / "bag")
    assert raw == [r for _, _, r in bag[f"{ns}/a"][1:]]  # the recorded bytes, unchanged
    # pacing: message i is due (t_i - start) / rate after playback began, on the player's clock
    start = t0 + SEC // 10
    assert [log for _, log in published_at] == [t0 + i * SEC // 10 for i in range(1, 5)]
    offsets = [at - started for at, _ in published_at]
    assert offsets == pytest.approx([(log - start) / SEC / 2.0 for _, log in published_at])
    assert offsets == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert report.seconds == pytest.approx(0.15)  # 0.3 s of bag at rate 2
    assert max(fake.sleeps) <= STOP_CHECK
    # /clock carries the playback time, (now - began) * rate after the start: every 1/50 s of
    # playback time while waiting, and each message's own log time just before it
    values = [value for _, value in sent]
    assert values == sorted(values) and len(values) >= 5
    assert values == [start + round((at - started) * 2.0 * SEC) for at, _ in sent]
    times = sorted({round(at - started, 9) for at, _ in sent})
    assert times == [0.0, 0.02, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.14, 0.15]
    assert all((at, log) in sent for at, log in published_at)
    assert clocks == sorted(clocks) and clocks[-1] == values[-1]


def test_sleeps_are_cut_to_notice_stop(player_node, tmp_path):
    ns = f"/s{next(_counter)}"
    write_bag(
        tmp_path / "bag",
        "mcap",
        [
            (f"{ns}/x", i * 2 * SEC, image_msg(np.zeros((2, 2), np.uint8), "mono8", i))
            for i in (1, 2)
        ],
    )
    fake, stop = FakeTime(), threading.Event()

    def sleep(seconds):
        fake.sleep(seconds)
        if fake.t - 100.0 >= 1.0 - 1e-9:  # one second into the 2 s gap: Ctrl-C, say
            stop.set()

    with BagPlayer(
        player_node, tmp_path / "bag", timekeeper=Timekeeper(now=fake.now, sleep=sleep)
    ) as player:
        report = player.play(stop=stop)
    assert report.published == {f"{ns}/x": 1}
    assert fake.sleeps == pytest.approx([STOP_CHECK] * 10)  # never more than STOP_CHECK at once
    assert report.seconds == pytest.approx(1.0)


def test_stop_and_loop(session, player_node, tmp_path):
    ns = f"/l{next(_counter)}"
    write_bag(
        tmp_path / "bag",
        "mcap",
        [
            (f"{ns}/x", i * SEC // 100, image_msg(np.zeros((2, 2), np.uint8), "mono8", i))
            for i in range(3)
        ],
    )
    stop = threading.Event()
    with BagPlayer(player_node, tmp_path / "bag", loop=True) as player:

        def stop_after_some(topic, t):
            if sum(player.report.published.values()) >= 7:
                stop.set()

        report = player.play(hold=stop_after_some, stop=stop)
    assert report.loops >= 2 and report.published[f"{ns}/x"] >= 7


def test_the_cli_never_imports_rclpy_and_says_when_play_cannot_run(tmp_path):
    code = (
        "import sys; sys.modules['rclpy'] = None\n"  # as on a pip install without the 'ros' extra
        "from sosmaskfuse_core import cli\n"
        "sys.exit(cli.main(['play', 'nowhere']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 2, proc.stderr
    assert "`sosmaskfuse play` needs rclpy" in proc.stderr and "rclpy" in proc.stderr


def test_play_cli(session, tmp_path):
    ns = f"/c{next(_counter)}"
    write_bag(
        tmp_path / "bag",
        "mcap",
        [
            (f"{ns}/x", i * SEC // 100, image_msg(np.zeros((2, 2), np.uint8), "mono8", i))
            for i in range(3)
        ],
    )
    listener = session.add(Node(f"listener{next(_counter)}", context=session.context))
    got = []
    listener.create_subscription(
        Image, f"{ns}/x", got.append, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    args = cli.build_parser().parse_args(
        ["play", str(tmp_path / "bag"), "--rate", "5", "--clock"]
        + ["--delay", "60", "--wait-for-subscribers"]
    )
    stream = io.StringIO()
    assert bag_player.run(args, stream=stream) == 0
    text = stream.getvalue()
    assert (
        f"{ns}/x  sensor_msgs/msg/Image  reliable, volatile" in text and "/clock at 100 Hz" in text
    )
    assert "played: 3 messages" in text
    # volatile topic: what is published before discovery completes is lost, so the player waits
    # (at most --delay) until the listener is matched
    assert "every topic has a subscriber: playing" in text
    assert wait_for(lambda: len(got) == 3), len(got)
    session.remove(listener)
    args = cli.build_parser().parse_args(["play", str(tmp_path / "bag"), "--topics", "/nope"])
    assert (
        bag_player.run(args, stream=stream) == 2 and "not in the bag: /nope" in stream.getvalue()
    )


def test_replay_through_the_live_node_fuses_every_pair_with_its_stamp(
    session, player_node, tmp_path
):
    """make-bag -> play with /clock -> FusionNode (use_sim_time): one fused frame per pair.

    The fused frames carry the visible stamps, and the offline bag tool computes the same images
    from the same bag.
    """
    ae, sos = save_tiny_checkpoints(tmp_path)
    ns = f"/rig{next(_counter)}"
    (tmp_path / "ir").mkdir()
    (tmp_path / "vis").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(
            str(tmp_path / "ir" / f"{i}.png"), rng.integers(0, 256, (48, 64), dtype=np.uint8)
        )
        cv2.imwrite(
            str(tmp_path / "vis" / f"{i}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        )
    layout = BagLayout(
        thermal_topic=f"{ns}/thermal/image_raw",
        visible_topic=f"{ns}/visible/image_raw",
        thermal_encoding="mono16",
    )
    made = make_bag(
        tmp_path / "bag",
        folder_frames(tmp_path / "ir", tmp_path / "vis"),
        layout,
        rate=10.0,
        start_ns=2000 * SEC,
    )
    assert made.pairs == 4
    values = {
        "autoencoder_weights": ae,
        "sosnet_weights": sos,
        "device": "cpu",
        "use_sim_time": True,
        "log_period": 0.0,
    }
    with one_torch_thread():
        node = session.add(
            FusionNode(
                namespace=ns,
                context=session.context,
                parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
            )
        )
        tester = session.add(
            Node(f"tester{next(_counter)}", namespace=ns, context=session.context)
        )
        fused = []
        tester.create_subscription(
            Image,
            "fused_image",
            fused.append,
            QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
        )
        sent = {"thermal": 0, "visible": 0}

        def caught_up() -> bool:
            c = node.counts
            return (
                (c.received["thermal"], c.received["visible"])
                == (sent["thermal"], sent["visible"])
                and c.published + c.failed == c.pairs
                and not node.worker.pending
            )

        def hold(topic, log_time):  # lockstep: the latest-wins worker never has to drop a pair
            assert wait_for(caught_up, 30), node.counts
            sent["thermal" if "thermal" in topic else "visible"] += 1

        with BagPlayer(player_node, tmp_path / "bag", rate=2.0, clock_hz=100) as player:
            assert wait_for(
                lambda: (
                    all(p.get_subscription_count() > 0 for p in player.publishers.values())
                    and player.clock_publisher.get_subscription_count() > 0
                    and tester.count_publishers(f"{ns}/fused_image") > 0
                    and node.has_subscribers  # it fuses only for a subscriber
                )
            )
            player.play(hold=hold)
        assert wait_for(lambda: len(fused) == 4, 30), node.counts
        now = node.get_clock().now().nanoseconds
        session.remove(tester)
        session.remove(node)
        assert node.counts.pairs == 4 and node.worker.dropped == 0
        bag, _ = read_bag(tmp_path / "bag")
        visible = [m for _, m, _ in bag[f"{ns}/visible/image_raw"]]
        assert [_stamp(m) for m in fused] == [stamp_of(m) for m in visible]
        assert {m.header.frame_id for m in fused} == {"visible_optical_frame"}
        assert (
            now == 2000 * SEC + 3 * SEC // 10
        )  # sim time: the last message's log time, from /clock

        pipeline, _ = build_pipeline(
            ae, sos, device="cpu"
        )  # the node's defaults, the same weights
        BagFusion(
            tmp_path / "bag",
            tmp_path / "offline",
            BagJob(f"{ns}/thermal/image_raw", f"{ns}/visible/image_raw"),
            PairStage(pipeline),
        ).run()
    offline, _ = read_bag(tmp_path / "offline")
    for live, (_, off, _) in zip(fused, offline[f"{ns}/fused_image"], strict=True):
        assert _stamp(live) == stamp_of(off)
        assert (
            np.abs(image_to_array(live).astype(int) - image_to_array(off).astype(int)).max() <= 1
        )
