"""`synthetic_cameras`: a moving synthetic street as thermal (mono16) and visible (rgb8) cameras.

For trying the fusion node with no cameras. Topics (relative; remap them at launch):
  out  thermal/image_raw     sensor_msgs/Image mono16 raw counts
  out  visible/image_raw     sensor_msgs/Image rgb8, the same scene
  out  thermal/camera_info, visible/camera_info   pinhole, no distortion (publish_camera_info)

Stamps come from the node clock (sim time with use_sim_time); the thermal stamp is
`time_offset` seconds after the visible one, so the receiver's approximate pairing is
exercised. All publishers use the sensor-data QoS (best effort).
"""

from __future__ import annotations

import signal

import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from sosmaskfuse_core.formats.image_codec import fill_image_msg
from sosmaskfuse_core.settings.table import Setting
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene

from .params import declare

_OWN = frozenset({"synthetic_cameras"})
PARAMETERS: tuple[Setting, ...] = tuple(
    Setting(name, kind, default, description, "synthetic", range=rng, scopes=_OWN)
    for name, kind, default, description, rng in (
        ("width", "int", 320, "visible image width (px)", (16, 4096)),
        ("height", "int", 256, "visible image height (px)", (16, 4096)),
        (
            "thermal_scale",
            "float",
            1.0,
            "thermal resolution relative to the visible one (0.5: half width and height)",
            (0.05, 4.0),
        ),
        ("rate", "float", 10.0, "frames per second of both cameras (node clock)", (0.1, 200.0)),
        (
            "thermal_frame_id",
            "str",
            "thermal_optical_frame",
            "frame_id of the thermal images",
            None,
        ),
        (
            "visible_frame_id",
            "str",
            "visible_optical_frame",
            "frame_id of the visible images",
            None,
        ),
        (
            "seed",
            "int",
            0,
            "scene layout and noise seed: the same seed gives the same frames",
            (0, 2**31 - 1),
        ),
        ("time_offset", "float", 0.004, "thermal stamp minus visible stamp (s)", (-1.0, 1.0)),
        (
            "publish_camera_info",
            "bool",
            True,
            "also publish thermal/camera_info and visible/camera_info",
            None,
        ),
    )
)


def camera_info(k, width: int, height: int) -> CameraInfo:
    """A distortion-free pinhole CameraInfo from a 3x3 K (header left to the caller)."""
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    return CameraInfo(
        width=width,
        height=height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )


class SyntheticCameras(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("synthetic_cameras", **kwargs)
        p = self._params = declare(self, PARAMETERS)
        scale = p["thermal_scale"]
        thermal_size = (max(1, round(p["width"] * scale)), max(1, round(p["height"] * scale)))
        self.scene = SyntheticScene(
            p["width"], p["height"], seed=p["seed"], thermal_size=thermal_size
        )
        # a negative offset delays the visible stamp instead, so no stamp goes below the clock
        self._offsets = (
            Duration(nanoseconds=round(max(p["time_offset"], 0.0) * 1e9)),
            Duration(nanoseconds=round(max(-p["time_offset"], 0.0) * 1e9)),
        )

        self.image_pubs = (
            self.create_publisher(Image, "thermal/image_raw", qos_profile_sensor_data),
            self.create_publisher(Image, "visible/image_raw", qos_profile_sensor_data),
        )
        self.info_pubs: tuple[Publisher, ...] = ()
        if p["publish_camera_info"]:
            self.info_pubs = (
                self.create_publisher(CameraInfo, "thermal/camera_info", qos_profile_sensor_data),
                self.create_publisher(CameraInfo, "visible/camera_info", qos_profile_sensor_data),
            )
            self._infos = (
                camera_info(self.scene.camera_matrix("thermal"), *thermal_size),
                camera_info(self.scene.camera_matrix("visible"), p["width"], p["height"]),
            )
        self._start: Time | None = None
        self.frames = 0
        self.create_timer(1.0 / p["rate"], self._tick)
        self.get_logger().info(
            f"publishing a synthetic street at {p['rate']:g} Hz: {self.image_pubs[0].topic_name} "
            f"{thermal_size[0]}x{thermal_size[1]} mono16, {self.image_pubs[1].topic_name} "
            f"{p['width']}x{p['height']} rgb8 (thermal stamps {p['time_offset'] * 1e3:+.1f} ms)"
        )

    def _tick(self) -> None:
        now = self.get_clock().now()
        if self._start is None or now < self._start:  # first frame, or the (sim) clock went back
            self._start = now
        frame = self.scene.render((now - self._start).nanoseconds / 1e9)
        for index, (image, encoding) in enumerate(
            ((frame.thermal, "mono16"), (frame.visible, "rgb8"))
        ):
            header = Header(
                stamp=(now + self._offsets[index]).to_msg(),
                frame_id=self._params[("thermal_frame_id", "visible_frame_id")[index]],
            )
            self.image_pubs[index].publish(fill_image_msg(Image(), image, encoding, header))
            if self.info_pubs:
                self._infos[index].header = header
                self.info_pubs[index].publish(self._infos[index])
        self.frames += 1


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = SyntheticCameras()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(
            signal.SIGINT, signal.SIG_IGN
        )  # ros2 launch forwards Ctrl-C: a second SIGINT
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
