"""The fusion node on real rclpy over Fast DDS.

Pairing, encodings, bad messages, parameters, dropping, sim time.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

from node_rig import SEC, H, Store, W, stamp_ns  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_helpers import image_msg, wait_for  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from sosmaskfuse_core.formats.image_codec import fill_compressed_msg, image_to_array  # noqa: E402


def _max_diff(a, b) -> int:
    return int(np.abs(image_to_array(a).astype(int) - image_to_array(b).astype(int)).max())


_stamp = stamp_ns


def test_pairs_within_slop_and_copies_the_visible_header(rig):
    r = rig()
    r.pair(100 * SEC, dt_ns=10_000_000)  # 10 ms apart: paired
    assert r.wait_outputs(1), (r.node.counts, r.node.worker.failed, r.node.report.last_error)
    out = r.fused[0]
    assert _stamp(out) == 100 * SEC + 10_000_000 and out.header.frame_id == "visible_optical"
    assert (out.height, out.width, out.encoding) == (H, W, "mono8")
    assert wait_for(lambda: len(r.masks) == 1)
    assert r.masks[0].encoding == "mono8" and _stamp(r.masks[0]) == _stamp(out)
    r.pair(200 * SEC, dt_ns=200_000_000)  # 200 ms apart, slop 50 ms: never paired
    r.pair(300 * SEC)
    assert r.wait_outputs(2)
    assert r.wait_received(3, 3)  # every message taken in and every pair fused: nothing pending
    # a later pair's output arrives after any output of the earlier messages would have
    r.pair(400 * SEC)
    assert r.wait_outputs(3)
    assert [_stamp(m) for m in r.fused] == [100 * SEC + 10_000_000, 300 * SEC, 400 * SEC]
    assert r.node.counts.pairs == 3


@pytest.mark.parametrize(
    "ir_enc,kind",
    [
        ("mono8", "u8"),
        ("mono16", "u16"),
        ("16UC1", "u16"),
        ("mono16", "u16-bigendian"),
        ("mono8", "u8-padded"),
        ("16UC1", "u16-padded"),
    ],
)
def test_thermal_encodings(rig, ir_enc, kind):
    r = rig()
    rng = np.random.default_rng(1)
    ir = rng.integers(0, 256, (H, W), dtype=np.uint8)
    if kind.startswith("u16"):
        ir = (ir.astype(np.uint16) * 3 + 7000).astype(np.uint16)
    msg = image_msg(
        ir,
        ir_enc,
        5 * SEC,
        step=(W * ir.itemsize + 12) if "padded" in kind else None,
        bigendian="bigendian" in kind,
    )
    r.send("thermal", msg)
    r.send("visible", image_msg(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), "bgr8", 5 * SEC))
    assert r.wait_outputs(1), r.node.counts
    assert (r.fused[0].height, r.fused[0].width) == (H, W)
    assert sum(r.node.counts.bad.values()) == 0


def test_the_same_thermal_counts_in_either_byte_order_give_the_same_image(rig):
    r = rig(thermal_agc="minmax")
    ir = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 5 + 1000).astype(np.uint16)
    vis = np.full((H, W, 3), 90, np.uint8)
    r.send("thermal", image_msg(ir, "mono16", 1 * SEC, bigendian=False))
    r.send("visible", image_msg(vis, "bgr8", 1 * SEC))
    assert r.wait_outputs(1)
    r.send("thermal", image_msg(ir, "mono16", 2 * SEC, bigendian=True, step=W * 2 + 6))
    r.send("visible", image_msg(vis, "bgr8", 2 * SEC))
    assert r.wait_outputs(2)
    assert _max_diff(r.fused[0], r.fused[1]) <= 1  # float summation order may vary between runs


@pytest.mark.parametrize("vis_enc", ["mono8", "rgb8", "bgr8", "rgba8", "bgra8"])
def test_visible_encodings(rig, vis_enc):
    r = rig()
    channels = {"mono8": 0, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}[vis_enc]
    vis = np.random.default_rng(2).integers(
        0, 256, (H, W, channels) if channels else (H, W), dtype=np.uint8
    )
    r.pair(7 * SEC, vis=vis, vis_enc=vis_enc)
    assert r.wait_outputs(1), r.node.counts
    assert r.fused[0].encoding == "mono8"


def test_rgb_and_bgr_orders_are_honoured(rig):
    r = rig()
    rng = np.random.default_rng(3)
    ir = rng.integers(0, 256, (H, W), dtype=np.uint8)
    bgr = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    r.pair(1 * SEC, ir=ir, vis=bgr, vis_enc="bgr8")
    assert r.wait_outputs(
        1
    )  # before the next pair: a pair still waiting when a newer one comes is dropped
    r.pair(2 * SEC, ir=ir, vis=bgr[..., ::-1].copy(), vis_enc="rgb8")
    assert r.wait_outputs(2)
    assert _max_diff(r.fused[0], r.fused[1]) <= 1  # float summation order may vary between runs


def test_bad_messages_are_dropped_counted_and_survived(rig):
    r = rig()
    good = np.zeros((H, W), np.uint8)
    unknown = image_msg(good, "mono8", 1 * SEC)
    unknown.encoding = "yuv422_fancy"
    short = image_msg(good, "mono8", 2 * SEC)
    short.data = bytes(10)
    empty = image_msg(good, "mono8", 3 * SEC)
    empty.height = empty.width = empty.step = 0
    empty.data = b""
    nan = image_msg(np.full((H, W), np.nan, np.float32), "32FC1", 4 * SEC)
    for i, msg in enumerate((unknown, short, empty, nan), start=1):
        r.send("thermal", msg)
        r.send("visible", image_msg(np.zeros((H, W, 3), np.uint8), "bgr8", i * SEC))
    assert wait_for(lambda: r.node.counts.bad["thermal"] == 4), r.node.counts
    assert r.wait_received(4, 4)  # the visible frames waited for partners that never came
    r.pair(10 * SEC)  # its output comes after any output of the bad messages would have
    assert r.wait_outputs(1)
    assert [_stamp(m) for m in r.fused] == [10 * SEC] and r.node.counts.pairs == 1


def test_live_parameters_are_validated(rig):
    r = rig()
    node = r.node
    ok = node.set_parameters(
        [
            Parameter("mu", value=0.5),
            Parameter("fusion_mode", value="sca"),
            Parameter("mask_threshold", value=0.4),
            Parameter("thermal_agc", value="fixed"),
            Parameter("agc_min", value=100.0),
            Parameter("agc_max", value=5000.0),
        ]
    )
    assert all(res.successful for res in ok), ok
    assert node.pipeline.config.mu == 0.5 and node.pipeline.config.fusion_mode == "sca"
    assert node.pipeline.config.mask_threshold == 0.4
    assert node.preparer.agc.mode == "fixed" and node.preparer.agc.fixed_max == 5000.0
    assert node.set_parameters([Parameter("mask_threshold", value="")])[0].successful
    assert node.pipeline.config.mask_threshold is None
    refused = {
        "mu": node.set_parameters([Parameter("mu", value=1.5)])[0],
        "fusion_mode": node.set_parameters([Parameter("fusion_mode", value="maximum")])[0],
        "mask_threshold": node.set_parameters([Parameter("mask_threshold", value="half")])[0],
        "agc": node.set_parameters([Parameter("agc_min", value=6000.0)])[0],
        "device": node.set_parameters([Parameter("device", value="cuda")])[0],
    }
    assert not any(res.successful for res in refused.values())
    assert "maximum" in refused["fusion_mode"].reason
    assert "not a number" in refused["mask_threshold"].reason
    assert "fixed_min" in refused["agc"].reason
    assert node.pipeline.config.mu == 0.5 and node.pipeline.config.fusion_mode == "sca"
    assert node.preparer.agc.fixed_min == 100.0
    r.pair(1 * SEC)
    assert r.wait_outputs(1)


def test_slow_fusion_drops_stale_pairs_and_no_queue_builds_up(rig):
    """While one pair is being fused, newer pairs replace each other: one waits, never a queue.

    The fusion is held by a gate the test opens, so what is dropped is counted, not timed.
    """
    r = rig()
    original = r.node.pipeline.fuse_batch
    gate, started = threading.Event(), threading.Event()

    def gated(*a, **k):
        started.set()
        assert gate.wait(30), "the test never opened the gate"
        return original(*a, **k)

    r.node.pipeline.fuse_batch = gated
    r.pair(1 * SEC)
    assert started.wait(20)  # pair 1 is in the fusion, holding it
    for i in range(
        1, 12
    ):  # one pair at a time: the inputs keep 5 (REP-2003), a burst may lose some
        r.pair((i + 1) * SEC)
        assert wait_for(lambda n=i + 1: r.node.counts.pairs == n, 10), r.node.counts
    assert r.node.worker.pending and r.node.worker.dropped == 10  # 2..11 replaced, 12 waits
    gate.set()
    assert r.wait_outputs(2) and r.wait_received(12, 12)
    published = r.node.counts.published
    assert published == 2 and r.node.worker.dropped == 12 - published
    assert [_stamp(m) for m in r.fused] == [1 * SEC, 12 * SEC]  # the newest pair gets through
    r.pair(13 * SEC)  # the ten dropped pairs never come out later: not before this one
    assert r.wait_outputs(3)
    assert [_stamp(m) for m in r.fused] == [1 * SEC, 12 * SEC, 13 * SEC]


def test_sim_time_stamps_and_timers(session, rig):
    from rosgraph_msgs.msg import Clock

    r = rig(use_sim_time=True)
    clock_pub = r.tester.create_publisher(Clock, "/clock", 10)
    diags = Store()
    from diagnostic_msgs.msg import DiagnosticArray

    fqn = r.node.get_fully_qualified_name()
    r.tester.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: diags(m) if m.status[0].name.startswith(f"{fqn}: ") else None,
        10,
    )
    assert wait_for(lambda: clock_pub.get_subscription_count() > 0)
    t0 = 1_000 * SEC
    for k in range(20):
        clock_pub.publish(Clock(clock=rclpy.time.Time(nanoseconds=t0 + k * 100_000_000).to_msg()))
        time.sleep(0.02)
    r.pair(t0 + SEC)
    assert r.wait_outputs(1)
    assert _stamp(r.fused[0]) == t0 + SEC
    assert wait_for(lambda: len(diags) > 0, 5)
    stamps = [_stamp(d) for d in diags]
    assert all(t0 <= s <= t0 + 2 * SEC for s in stamps), stamps  # sim time, not wall time
    n = len(diags)
    # the sim clock is frozen: the diagnostics timer does not fire (once more at most), though
    # the node's executor demonstrably runs for at least 5 diagnostics periods of wall time
    start, k = time.monotonic(), 0
    while time.monotonic() - start < 5 * 0.2 or k < 2:
        k += 1
        r.pair(t0 + (1 + k) * SEC)
        assert r.wait_outputs(1 + k)
    assert len(diags) <= n + 1, [_stamp(d) for d in diags]


def test_thermal_of_another_size_is_resized_or_warped_into_the_visible_frame(rig):
    r = rig()
    ir = np.random.default_rng(4).integers(0, 256, (24, 32), dtype=np.uint8)
    r.pair(1 * SEC, ir=ir)
    assert r.wait_outputs(1)
    assert (r.fused[0].height, r.fused[0].width) == (H, W)
    shift = rig(homography=[2.0, 0.0, 5.0, 0.0, 2.0, 3.0, 0.0, 0.0, 1.0])
    shift.pair(1 * SEC, ir=ir)
    assert shift.wait_outputs(1)
    assert (shift.fused[0].height, shift.fused[0].width) == (H, W)


def test_color_output_and_processing_size(rig):
    r = rig(color_output=True, process_width=32, process_height=24)
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
    assert (r.fused[0].encoding, r.fused[0].height, r.fused[0].width) == ("bgr8", 24, 32)


def test_mask_topic_is_a_third_synchronised_input(rig):
    r = rig(mask_topic=True, mask_source="topic")
    for k in (1, 2):  # one message at a time: the inputs are best effort (REP-2003)
        r.pair(k * SEC)
        assert r.wait_received(k, k)  # both images in, waiting for the mask
        r.send("mask", image_msg(np.full((H, W), 255, np.uint8), "mono8", k * SEC))
        assert r.wait_outputs(k)
    # one output per mask, with the given mask: nothing was fused before its mask came
    assert [_stamp(m) for m in r.fused] == [1 * SEC, 2 * SEC]
    assert wait_for(lambda: len(r.masks) == 2)
    assert all((image_to_array(m) == 255).all() for m in r.masks)


def test_compressed_transport(rig):
    r = rig(compressed=True, input_transport="compressed")
    rng = np.random.default_rng(5)
    for role, img in (
        ("thermal", rng.integers(0, 256, (H, W), dtype=np.uint8)),
        ("visible", rng.integers(0, 256, (H, W, 3), dtype=np.uint8)),
    ):
        msg = fill_compressed_msg(CompressedImage(), img, "png")
        msg.header.stamp.sec = 3
        r.send(role, msg)
    assert r.wait_outputs(1), r.node.counts


def test_unusable_weights_fall_back_to_the_defaults_and_say_so(rig):
    r = rig(autoencoder_weights="/nonexistent/ae.pt", sosnet_weights="/nonexistent/sos.pt")
    assert "shipped lite" in r.node.sources.autoencoder
    assert "nonexistent" not in r.node.sources.mask
    assert "no such checkpoint file" in r.node.report.last_error
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
