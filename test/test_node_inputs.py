"""What the fusion node takes in and gives out on real DDS: hostile and camera-native input.

Also camera_info, the compressed output, and diagnostics as diagnostic_updater users read them.
"""

from __future__ import annotations

import re
import struct
import threading
import zlib

import numpy as np
import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

import cv2  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from node_rig import RELIABLE, SEC, H, Rig, Store, W, stamp_ns  # noqa: E402
from ros_helpers import image_msg, wait_for  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage  # noqa: E402

from sosmaskfuse_core.formats.image_codec import fill_compressed_msg  # noqa: E402

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def _values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def _png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def _compressed(data: bytes, t_ns: int) -> CompressedImage:
    msg = CompressedImage(format="png")
    msg.data = data
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, SEC)
    return msg


def _compressed_image(img, t_ns):
    msg = fill_compressed_msg(CompressedImage(), img, "png")
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, SEC)
    return msg


# --- hostile input -----------------------------------------------------------------------------


def test_a_57_byte_png_claiming_40000x30000_leaves_the_node_fusing(rig):
    r = rig(compressed=True, input_transport="compressed")
    bomb = _png_bomb(40000, 30000)
    assert len(bomb) == 57
    now = r.node.get_clock().now().nanoseconds  # fresh stamps: only the bomb is wrong
    before = len(r.statuses)
    r.send("thermal", _compressed(bomb, now))
    r.send("visible", _compressed_image(np.zeros((H, W, 3), np.uint8), now))
    assert wait_for(lambda: r.node.counts.bad["thermal"] == 1), r.node.counts
    status = r.wait_status("thermal input", lambda s: "bad" in s.message, since=before)
    assert status.level == WARN, status.message
    assert "40000x30000" in status.message and "max_input_pixels" in status.message
    rng = np.random.default_rng(0)
    r.send("thermal", _compressed_image(rng.integers(0, 256, (H, W), dtype=np.uint8), 2 * SEC))
    r.send("visible", _compressed_image(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), 2 * SEC))
    assert r.wait_outputs(1) and stamp_ns(r.fused[0]) == 2 * SEC


def test_the_pixel_cap_is_a_parameter(rig):
    r = rig(max_input_pixels=H * W - 1)
    r.pair(1 * SEC)
    assert wait_for(lambda: r.node.counts.bad["thermal"] == 1 == r.node.counts.bad["visible"])
    small = np.zeros((H // 2, W // 2), np.uint8)  # under the cap: fused
    r.pair(2 * SEC, ir=small, vis=np.zeros((H // 2, W // 2, 3), np.uint8))
    assert r.wait_outputs(1)
    assert [stamp_ns(m) for m in r.fused] == [2 * SEC] and r.node.counts.pairs == 1


def test_messages_name_the_right_side(rig):
    r = rig()
    r.send("thermal", image_msg(np.zeros((H, W), np.uint8), "mono8", 1 * SEC))
    r.send("visible", image_msg(np.zeros((8, 8, 3), np.uint8), "bgr8", 1 * SEC))
    status = r.wait_status("fusion", lambda s: s.level == WARN and "8x8" in s.message)
    assert status.message.startswith("visible image: 8x8"), status.message
    assert "thermal" not in status.message
    r.pair(2 * SEC)  # and the next good pair clears it
    assert r.wait_outputs(1)
    status = r.wait_status("fusion", lambda s: s.level == OK)
    assert status.message == "fusing" and _values(status)["last error"] == ""


def test_each_input_and_reason_has_its_own_log_throttle(rig, rosout):
    r = rig()
    short = image_msg(np.zeros((H, W), np.uint8), "mono8", 1 * SEC)
    short.data = bytes(10)
    unknown = image_msg(np.zeros((H, W), np.uint8), "mono8", 1 * SEC)
    unknown.encoding = "yuv444_fancy"
    r.send("thermal", short)
    r.send("visible", short)  # same reason, other input
    r.send("thermal", unknown)  # other reason, same input
    r.send("thermal", short)  # same input and reason within 5 s: throttled
    assert wait_for(lambda: r.node.counts.bad["thermal"] == 3)
    assert rosout.wait_line(r.logger, "dropped a visible message: visible image: data has 10")
    assert rosout.wait_line(r.logger, "dropped a thermal message: thermal image: data has 10")
    assert rosout.wait_line(r.logger, "unsupported encoding 'yuv444_fancy'")
    lines = [t for t in rosout.texts(r.logger) if t.startswith("dropped a thermal")]
    assert sum("data has 10" in t for t in lines) == 1


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "yuv422", "yuv422_yuy2", "nv21", "8UC3"])
def test_camera_encodings_on_the_visible_input_are_fused(rig, encoding):
    r = rig(color_output=True)
    rng = np.random.default_rng(1)
    if encoding.startswith("bayer"):
        vis = rng.integers(0, 256, (H, W), dtype=np.uint8)
    elif encoding == "nv21":
        vis = rng.integers(0, 256, (H * 3 // 2, W), dtype=np.uint8)
    elif encoding == "8UC3":
        vis = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    else:
        vis = rng.integers(0, 256, (H, W, 2), dtype=np.uint8)
    msg = image_msg(vis, encoding, 1 * SEC)
    msg.height = H  # NV21 holds 1.5 rows of bytes per image row
    r.send("thermal", image_msg(rng.integers(0, 256, (H, W), dtype=np.uint8), "mono8", 1 * SEC))
    r.send("visible", msg)
    assert r.wait_outputs(1), (r.node.counts, r.node.report.last_error)
    out = r.fused[0]
    assert (out.height, out.width, out.encoding) == (H, W, "bgr8")
    assert sum(r.node.counts.bad.values()) == 0


# --- outputs -------------------------------------------------------------------------------------


def _visible_info(width=W, height=H) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.k = [80.0, 0.0, 31.5, 0.0, 80.0, 23.5, 0.0, 0.0, 1.0]
    info.p = [80.0, 0.0, 31.5, -8.0, 0.0, 80.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.1, -0.05, 0.0, 0.0, 0.01]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.header.frame_id = "visible_optical"
    return info


def test_camera_info_matches_every_fused_frame_scaled_to_the_processing_size(rig):
    r = rig(process_width=32, process_height=24)
    r.send("camera_info", _visible_info())
    assert wait_for(lambda: r.node.outputs.camera_info is not None)
    for k in range(1, 4):
        r.pair(k * SEC)
        assert r.wait_outputs(k)
    assert r.infos.wait_count(3)
    assert [stamp_ns(i) for i in r.infos] == [stamp_ns(f) for f in r.fused]
    for info, fused in zip(r.infos, r.fused):
        assert (info.width, info.height) == (fused.width, fused.height) == (32, 24)
        assert info.header.frame_id == fused.header.frame_id == "visible_optical"
    info = r.infos[0]
    # half size, pixel centres aligned: f/2, (c + 0.5)/2 - 0.5; Tx scales like f
    np.testing.assert_allclose(info.k, [40, 0, 15.5, 0, 40, 11.5, 0, 0, 1])
    np.testing.assert_allclose(info.p, [40, 0, 15.5, -4, 0, 40, 11.5, 0, 0, 0, 1, 0])
    assert info.distortion_model == "plumb_bob"
    np.testing.assert_allclose(info.d, [0.1, -0.05, 0.0, 0.0, 0.01])


def test_without_visible_camera_info_no_camera_info_is_published(rig):
    r = rig()
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
    r.send("camera_info", _visible_info())  # from now on, with each fused frame
    assert wait_for(lambda: r.node.outputs.camera_info is not None)
    r.pair(2 * SEC)
    assert r.wait_outputs(2) and r.infos.wait_count(1)
    assert [stamp_ns(i) for i in r.infos] == [2 * SEC]  # none for the frame before


def test_fused_image_compressed_when_enabled(rig):
    r = rig(publish_compressed=True, jpeg_quality=70)
    jpegs = Store()
    r.tester.create_subscription(CompressedImage, "fused_image/compressed", jpegs, RELIABLE)
    assert wait_for(lambda: r.tester.count_publishers(f"{r.ns}/fused_image/compressed") == 1)
    assert wait_for(lambda: r.node.outputs.pubs["compressed"].get_subscription_count() > 0)
    r.pair(1 * SEC)
    assert r.wait_outputs(1) and jpegs.wait_count(1)
    jpeg, fused = jpegs[0], r.fused[0]
    assert "jpeg" in jpeg.format and stamp_ns(jpeg) == stamp_ns(fused)
    decoded = cv2.imdecode(np.frombuffer(bytes(jpeg.data), np.uint8), cv2.IMREAD_UNCHANGED)
    plain = np.frombuffer(bytes(fused.data), np.uint8).reshape(H, W)
    assert decoded.shape == (H, W) and np.abs(decoded.astype(int) - plain).mean() < 12


def test_no_compressed_output_by_default(rig):
    r = rig()
    assert r.tester.count_publishers(f"{r.ns}/fused_image/compressed") == 0
    assert "compressed" not in r.node.outputs.pubs


# --- diagnostics ---------------------------------------------------------------------------------


def test_status_names_are_diagnostic_updaters_with_and_without_the_fqn(rig):
    plain = rig(**{"diagnostic_updater.use_fqn": False})
    names = Store()
    plain.tester.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: [names(s.name) for s in m.status if s.name.startswith("sosmaskfuse: ")],
        50,
    )
    expected = {
        "sosmaskfuse: fusion",
        "sosmaskfuse: thermal input",
        "sosmaskfuse: visible input",
        f"sosmaskfuse: {plain.ns}/fused_image topic status",  # as DiagnosedPublisher names it
    }
    assert names.wait(lambda items: set(items) >= expected), set(names)
    fqn = rig()  # the rig's default: diagnostic_updater.use_fqn true
    status = fqn.wait_status("fusion", lambda s: True)
    assert status.name == f"{fqn.ns}/sosmaskfuse: fusion"
    assert fqn.node.get_parameter("diagnostic_updater.use_fqn").value is True
    assert fqn.node.get_parameter("diagnostic_updater.period").value == 0.2
    # hardware_id: the device the node fuses on, as diagnostic_updater asks (one for all)
    assert {s.hardware_id for s in fqn.statuses} == {"cpu"}


def test_a_silent_input_is_an_error_and_recovers_when_it_comes_back(rig):
    r = rig(input_min_rate=2.0)
    stop = threading.Event()

    def stream():
        while not stop.wait(0.05):  # 20 Hz of pairs, stamped now (the node's clock)
            r.pair(r.node.get_clock().now().nanoseconds)

    silent = r.wait_status("thermal input", lambda s: s.level == ERROR)
    assert silent.message.startswith("No events recorded."), silent.message  # FrequencyStatus
    assert "No data since last update." in silent.message  # TimeStampStatus, merged
    feeder = threading.Thread(target=stream, daemon=True)
    feeder.start()
    try:
        status = r.wait_status("thermal input", lambda s: s.level == OK)
        assert status.message == "Desired frequency met; Timestamps are reasonable."
        values = _values(status)
        assert float(values["Actual frequency (Hz)"]) >= 2.0 * 0.9
        assert values["Minimum acceptable frequency (Hz)"] == f"{2.0 * 0.9:f}"
        r.wait_status("visible input", lambda s: s.level == OK)
        r.wait_status(f"{r.ns}/fused_image topic status", lambda s: s.level == OK)
    finally:
        stop.set()
        feeder.join()
    stale = r.wait_status("visible input", lambda s: s.level == ERROR, timeout=10)
    assert "No events recorded." in stale.message
    # nothing comes out either: the output's own check says so
    r.wait_status(f"{r.ns}/fused_image topic status", lambda s: s.level == ERROR)
    stop.clear()
    feeder = threading.Thread(target=stream, daemon=True)
    feeder.start()
    try:
        r.wait_status("visible input", lambda s: s.level == OK)
    finally:
        stop.set()
        feeder.join()


def test_old_stamps_are_an_error_and_latency_is_measured_from_the_header_stamp(rig):
    r = rig(max_stamp_age=2.0)
    now = r.node.get_clock().now().nanoseconds
    r.pair(now - 10 * SEC)  # a frame stamped 10 s ago
    assert r.wait_outputs(1)
    assert r.statuses.wait(
        lambda items: any(
            s.name.endswith("thermal input") and "too far in past" in s.message for s in items
        )
    )
    status = next(s for s in r.statuses if "too far in past" in s.message)
    assert status.level == ERROR and "Timestamps too far in past seen." in status.message
    assert float(_values(status)["Latest timestamp delay:"]) >= 10.0
    fusion = r.wait_status("fusion", lambda s: _values(s)["latency max (ms)"] != "")
    assert float(_values(fusion)["latency max (ms)"]) >= 10_000.0


def test_the_fusion_status_has_the_time_of_each_stage_of_the_path(rig):
    r = rig()
    r.pair(r.node.get_clock().now().nanoseconds)
    assert r.wait_outputs(1)

    def stages(status) -> list[str]:
        values = _values(status)
        assert all(float(values[k]) >= 0 for k in values if k.startswith("time "))
        return [k[5:-5] for k in values if k.startswith("time ")]

    def seen(items) -> set[str]:  # a period may end between a pair's decode and its fusion
        return {stage for s in items if s.name.endswith("fusion") for stage in stages(s)}

    path = ["decode", "prepare", "load", "autoencoder", "output", "encode", "publish"]
    assert r.statuses.wait(lambda items: set(path) <= seen(items)), seen(r.statuses)
    for status in r.statuses:  # each in the path's order
        timed = [stage for stage in stages(status) if stage in path]
        assert timed == sorted(timed, key=path.index)


def test_a_pair_stamped_zero_is_a_stamp_error_and_stays_out_of_the_latency(rig):
    r = rig()
    now = r.node.get_clock().now().nanoseconds
    r.pair(now - SEC)  # one real pair, 1 s old: the latency
    assert r.wait_outputs(1)
    r.pair(0)  # a driver that stamps nothing
    assert r.wait_outputs(2)
    key = "latency not measured (stamp 0, clock unset or behind the stamps)"
    fusion = r.wait_status("fusion", lambda s: _values(s)[key] == "1")
    assert 1_000.0 <= float(_values(fusion)["latency mean (ms)"]) < 60_000.0  # not 1.7e12
    # diagnostic_updater's TimeStampStatus: a zero stamp among valid ones is an ERROR
    stop = threading.Event()

    def stream():  # zero and real stamps, alternating: both kinds in every update period
        for k in range(1_000_000):
            if stop.wait(0.05):
                return
            r.pair(0 if k % 2 else r.node.get_clock().now().nanoseconds)

    feeder = threading.Thread(target=stream, daemon=True)
    feeder.start()
    try:
        for task in ("thermal input", f"{r.ns}/fused_image topic status"):
            status = r.wait_status(task, lambda s: "Zero timestamp seen." in s.message)
            assert status.level == ERROR, (task, status.message)
    finally:
        stop.set()
        feeder.join()


def test_inputs_that_arrive_but_do_not_pair_are_not_healthy(rig):
    """Issue 22: thermal stamps 0.11 s ahead of the visible ones (slop 0.05 s) after fusing."""
    r = rig()
    stop, offset = threading.Event(), [0]
    rng = np.random.default_rng(7)
    ir, vis = rng.integers(0, 256, (H, W), np.uint8), rng.integers(0, 256, (H, W, 3), np.uint8)

    def stream():  # 5 Hz cameras: a thermal frame 0.11 s late is 0.09 s from the next visible
        while not stop.wait(0.2):
            now = r.node.get_clock().now().nanoseconds
            r.send("thermal", image_msg(ir, "mono8", now + offset[0]))
            r.send("visible", image_msg(vis, "bgr8", now))

    feeder = threading.Thread(target=stream, daemon=True)
    feeder.start()
    try:
        assert r.wait_outputs(3)
        r.wait_status("fusion", lambda s: (s.level, s.message) == (OK, "fusing"))
        offset[0] = 110_000_000
        published = r.node.counts.published
        fusion = r.wait_status("fusion", lambda s: s.level == WARN)
        assert "inputs arrive but no pair was made" in fusion.message, fusion.message
        gap = re.search(r"nearest thermal stamp is ([0-9.]+) s (ahead of|behind)", fusion.message)
        assert gap and 0.05 < float(gap[1]) < 0.13, fusion.message
        assert "more than sync_slop 0.05 s allows" in fusion.message
        out = r.wait_status(f"{r.ns}/fused_image topic status", lambda s: s.level == ERROR)
        assert "No events recorded." in out.message
        assert r.status("thermal input").level == OK  # the inputs themselves are fine
        assert r.node.counts.published <= published + 1  # at most the pair in flight
    finally:
        stop.set()
        feeder.join()


def test_waiting_for_pairs_is_a_warning_and_fusing_is_ok(rig):
    r = rig()
    status = r.wait_status("fusion", lambda s: True)
    assert (status.level, status.message) == (WARN, "waiting for thermal/visible pairs")
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
    status = r.wait_status("fusion", lambda s: s.level == OK)
    assert _values(status)["lifecycle state"] == "active"


def test_the_synthetic_cameras_camera_info_comes_out_with_every_fused_frame(
    session, tiny_checkpoint_files
):
    from rclpy.parameter import Parameter

    from sosmaskfuse_ros.synthetic_cameras import SyntheticCameras

    r = Rig(session, tiny_checkpoint_files, process_width=64, process_height=48)
    for pub in r.pub.values():  # the cameras publish here instead
        r.tester.destroy_publisher(pub)
    cams = session.add(
        SyntheticCameras(
            namespace=r.ns,
            context=session.context,
            parameter_overrides=[
                Parameter(k, value=v)
                for k, v in {
                    "width": 128,
                    "height": 96,
                    "rate": 10.0,
                    "thermal_scale": 0.5,
                }.items()
            ],
        )
    )
    try:
        assert r.wait_outputs(3) and r.infos.wait_count(3), (
            r.node.counts,
            r.node.report.last_error,
        )
        assert r.infos.wait(
            lambda infos: {stamp_ns(f) for f in r.fused[:3]} <= {stamp_ns(i) for i in infos}
        )
        by_stamp = {stamp_ns(i): i for i in r.infos}
        camera_k = np.asarray(cams.scene.camera_matrix("visible"), dtype=float)
        for fused in list(r.fused)[:3]:
            info = by_stamp[stamp_ns(fused)]
            assert (info.width, info.height) == (fused.width, fused.height) == (64, 48)
            assert info.header.frame_id == fused.header.frame_id
            fx, cx = camera_k[0, 0], camera_k[0, 2]
            np.testing.assert_allclose([info.k[0], info.k[2]], [fx / 2, (cx + 0.5) / 2 - 0.5])
    finally:
        session.remove(cams)
        r.close()


def test_a_stamp_ahead_of_the_nodes_clock_gives_no_latency_and_is_counted(rig):
    # e.g. use_sim_time before /clock runs, or wall-clock stamps on a sim-time node: a latency
    # across two clocks is not a latency, and must not sit in the averages for minutes.
    r = rig()
    ahead = r.node.get_clock().now().nanoseconds + 3600 * SEC
    r.pair(ahead)
    assert r.wait_outputs(1)
    key = "latency not measured (stamp 0, clock unset or behind the stamps)"
    fusion = r.wait_status("fusion", lambda s: _values(s).get(key) == "1")
    assert _values(fusion)["latency max (ms)"] == ""
    now = r.node.get_clock().now().nanoseconds
    r.pair(now - 2 * SEC)
    assert r.wait_outputs(2)
    fusion = r.wait_status("fusion", lambda s: _values(s)["latency max (ms)"] != "")
    assert 2_000.0 <= float(_values(fusion)["latency max (ms)"]) < 3_600_000.0
    assert _values(fusion)[key] == "1"
