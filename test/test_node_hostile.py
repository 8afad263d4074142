"""The fusion node against the weak cases of a hostile probe: refused, named, and survived.

Any exception fusing a pair is counted and reported (never raised out of the fusion thread);
tiny frames are refused before they are resized; a thermal frame of another shape without a
homography is a warning; a homography for other cameras is refused; a dead thermal sensor is a
warning; 16-bit colour on the thermal input is an unsupported encoding; camera_info that
cannot be right is not published; ROI and binning follow the fused size as image_proc has it.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

import cv2  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from node_rig import SEC, H, W, stamp_ns  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_helpers import image_msg, wait_for  # noqa: E402
from sensor_msgs.msg import CameraInfo, RegionOfInterest  # noqa: E402

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
_SUCCESS = TransitionCallbackReturn.SUCCESS


def _values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def _noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- any failure of a pair is counted ---------------------------------------------------------


def test_any_exception_fusing_a_pair_is_counted_reported_and_survived(rig):
    r = rig()
    original = r.node.pipeline.fuse_batch
    cases = [
        (cv2.error("OpenCV(4) resize.cpp: (-215:Assertion failed) !ssize.empty()"), WARN),
        (MemoryError(), ERROR),  # no message at all: named by its type
        (KeyError("boom"), WARN),
    ]
    for k, (error, level) in enumerate(cases, start=1):

        def broken(*a, error=error, **kw):
            raise error

        r.node.pipeline.fuse_batch = broken
        r.pair(k * SEC)
        assert wait_for(lambda k=k: r.node.counts.failed == k), r.node.counts
        named = f"{type(error).__name__}: {error}"  # its type named: cv2.error says only "error"
        status = r.wait_status("fusion", lambda s, named=named: s.message.startswith(named))
        assert status.level == level, status.message
        assert _values(status)["failed pairs"] == str(k)
    assert r.node.worker.failed == 0 and r.node.worker.errors == []  # never escaped
    r.node.pipeline.fuse_batch = original
    r.pair(10 * SEC)
    assert r.wait_outputs(1) and stamp_ns(r.fused[0]) == 10 * SEC


# --- frames -----------------------------------------------------------------------------------


def test_tiny_visible_frames_are_refused_before_resizing(rig):
    r = rig()
    original = r.node.preparer.prepare
    resized = []

    def spy(*a, **k):  # the one place frames are resized (FramePreparer.prepare)
        resized.append(True)
        return original(*a, **k)

    object.__setattr__(r.node.preparer, "prepare", spy)  # a frozen dataclass
    for k, (h, w) in enumerate([(1, 1), (2, 2), (1, 100_000)], start=1):
        r.send("thermal", image_msg(_noise((H, W)), "mono8", k * SEC))
        r.send("visible", image_msg(_noise((h, w, 3)), "bgr8", k * SEC))
        assert wait_for(lambda k=k: r.node.counts.failed == k), r.node.counts
        text = f"visible image: {w}x{h} is smaller than the 16x16"
        status = r.wait_status("fusion", lambda s, text=text: s.message.startswith(text))
        assert status.level == WARN
    assert resized == []  # refused on their size, before any interpolation
    assert r.node.counts.published == 0


def test_a_thermal_frame_of_another_shape_without_a_homography_is_a_warning(rig, rosout):
    r = rig()
    visible = _noise((36, 128, 3))  # 32:9
    r.send("thermal", image_msg(_noise((H, W)), "mono8", 1 * SEC))  # 64x48, 4:3
    r.send("visible", image_msg(visible, "bgr8", 1 * SEC))
    assert r.wait_outputs(1)  # fused, but not silently
    text = "the 64x48 thermal frame (4:3) is stretched onto the 128x36 visible frame (32:9)"
    status = r.wait_status("fusion", lambda s: text in s.message)
    assert status.level == WARN and "set homography" in status.message
    assert rosout.wait_line(r.logger, text)
    r.pair(2 * SEC)  # the same shapes: back to OK
    assert r.wait_outputs(2)
    assert r.wait_status("fusion", lambda s: (s.level, s.message) == (OK, "fusing"))


def test_a_homography_for_other_cameras_is_refused_at_the_pair_at_set_and_at_configure(rig):
    off = [1.0, 0.0, 1000.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]  # 1000 px to the right: off the frame
    r = rig(homography=off)
    r.pair(1 * SEC)
    assert wait_for(lambda: r.node.counts.failed == 1)
    text = "homography maps 0% of the 64x48 thermal frame onto the 64x48 visible frame"
    status = r.wait_status("fusion", lambda s: text in s.message)
    assert status.level == WARN
    node = r.node
    assert node.trigger_deactivate() == _SUCCESS and node.trigger_cleanup() == _SUCCESS
    assert node.trigger_configure() != _SUCCESS  # the cameras it saw: refused at configure
    assert "homography maps 0%" in node.report.config_error
    half = [1.0, 0.0, 40.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]  # 24 of 64 columns on the frame
    refused = node.set_parameters([Parameter("homography", value=half)])[0]
    assert not refused.successful and "homography maps 38%" in refused.reason
    shift = [1.0, 0.0, 8.0, 0.0, 1.0, 4.0, 0.0, 0.0, 1.0]  # a few pixels: most of it lands
    assert node.set_parameters([Parameter("homography", value=shift)])[0].successful
    assert node.trigger_configure() == _SUCCESS and node.trigger_activate() == _SUCCESS
    r.wait_discovery()
    r.pair(2 * SEC)
    assert r.wait_outputs(1)


def test_a_dead_thermal_sensor_is_a_warning_on_the_thermal_input(rig):
    r = rig()
    stop = threading.Event()
    vis = _noise((H, W, 3))

    def stream():
        while not stop.wait(0.05):
            now = r.node.get_clock().now().nanoseconds
            r.send("thermal", image_msg(np.zeros((H, W), np.uint16), "mono16", now))
            r.send("visible", image_msg(vis, "bgr8", now))

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        status = r.wait_status("thermal input", lambda s: s.level == WARN)
        assert "are flat (every pixel 0): a dead, covered or disconnected sensor?" in (
            status.message
        )
        assert r.wait_status("visible input", lambda s: s.level == OK)
    finally:
        stop.set()
        thread.join()


def test_rgb16_on_the_thermal_input_is_an_unsupported_encoding(rig):
    r = rig()
    rgb16 = np.full((H, W, 3), 1000, np.uint16)
    before = len(r.statuses)
    r.send("thermal", image_msg(rgb16, "rgb16", 1 * SEC))
    assert wait_for(lambda: r.node.counts.bad["thermal"] == 1), r.node.counts
    status = r.wait_status("thermal input", lambda s: "bad message" in s.message, since=before)
    assert "thermal image: unsupported encoding 'rgb16'" in status.message, status.message


# --- camera_info ------------------------------------------------------------------------------


def _info(width=W, height=H, k=(80.0, 0.0, 31.5, 0.0, 80.0, 23.5, 0.0, 0.0, 1.0)) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.k = list(k)
    info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return info


def test_camera_info_that_cannot_be_right_is_not_published_and_is_reported(rig):
    r = rig(process_width=32, process_height=24)
    cases = [
        (_info(0, 0), "camera_info size 0x0"),
        (_info(4294967295, 4294967295), "is above max_input_pixels"),
        (_info(k=(float("nan"), 0, 31.5, 0, 80, 23.5, 0, 0, 1)), "K has non-finite values"),
        (_info(640, 480), "camera_info describes 640x480 images"),  # not these images
    ]
    for k, (bad, text) in enumerate(cases, start=1):
        before = len(r.statuses)
        r.send("camera_info", bad)
        assert wait_for(lambda bad=bad: r.node.outputs.camera_info in (None, bad))
        r.pair(r.node.get_clock().now().nanoseconds)  # fresh stamps: only camera_info is wrong
        assert r.wait_outputs(k)
        status = r.wait_status(
            "visible input", lambda s, text=text: text in s.message, since=before
        )
        assert status.level == WARN and "camera_info refused" in status.message
    assert r.infos == []  # published as nothing rather than as something wrong
    r.send("camera_info", _info())
    assert wait_for(lambda: getattr(r.node.outputs.camera_info, "width", 0) == W)
    r.pair(r.node.get_clock().now().nanoseconds)
    assert r.infos.wait_count(1)
    assert (r.infos[0].width, r.infos[0].height) == (32, 24)


def test_roi_and_binning_follow_the_fused_size():
    """By hand: a 128x96 sensor, ROI 64x48 at (16, 8), binning 1 or 2, fused at half size."""
    from std_msgs.msg import Header

    from sosmaskfuse_ros.camera_info import fused_camera_info

    roi = _info(128, 96, k=(100.0, 0.0, 63.5, 0.0, 100.0, 47.5, 0.0, 0.0, 1.0))
    roi.roi = RegionOfInterest(x_offset=16, y_offset=8, width=64, height=48)
    out = fused_camera_info(roi, Header(), 32, 24, (64, 48))  # the images are the ROI: 64x48
    assert (out.width, out.height) == (64, 48)  # the calibrated size, halved as image_proc does
    assert (out.roi.x_offset, out.roi.y_offset, out.roi.width, out.roi.height) == (8, 4, 32, 24)
    # pixel centres aligned: c' = (c + 0.5) / 2 - 0.5
    np.testing.assert_allclose(out.k, [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1])
    binned = _info(128, 96, k=(100.0, 0.0, 63.5, 0.0, 100.0, 47.5, 0.0, 0.0, 1.0))
    binned.binning_x = binned.binning_y = 2  # the camera delivers 64x48
    out = fused_camera_info(binned, Header(), 32, 24, (64, 48))
    assert (out.width, out.height, out.binning_x, out.binning_y) == (64, 48, 2, 2)
    # full-resolution pixels with binning b: x' = x / 2 + b (1/2 - 1) / 2 = x / 2 - 0.5
    np.testing.assert_allclose(out.k, [50, 0, 31.25, 0, 50, 23.25, 0, 0, 1])
    with pytest.raises(ValueError, match="describes 64x48 images"):
        fused_camera_info(binned, Header(), 64, 48, (128, 96))  # binning ignored: refused
