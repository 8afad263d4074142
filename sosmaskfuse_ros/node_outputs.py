"""The fusion node's outputs: its lifecycle publishers, who listens, and one pair's messages.

fused_image, sos_mask, camera_info and (with `publish_compressed`) fused_image/compressed,
all with the visible frame's header (`PairStage.HEADER_FROM`); QoS overridable REP-2003
style. `has_subscribers` is what the node's lazy processing asks. camera_info is checked when
it arrives and when it is scaled to the fused size (`camera_info`): one that cannot be right
is not published, and `report(problem)` says why (None once it is fine again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from sosmaskfuse_core.formats.image_codec import fill_compressed_msg, fill_image_msg
from sosmaskfuse_core.pipeline.pair_stage import PairOutputs
from sosmaskfuse_core.pipeline.stage_clock import StageClock

from .camera_info import camera_info_problem, fused_camera_info

#: Today's QoS, overridable per topic with rclpy's qos_overrides parameters (REP-2003).
INPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT
)
OUTPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
)


def qos(profile: QoSProfile) -> QoSProfile:
    """A copy of `profile`: rclpy applies the QoS overrides to the profile object it is given."""
    return QoSProfile(
        history=profile.history,
        depth=profile.depth,
        reliability=profile.reliability,
        durability=profile.durability,
    )


class NodeOutputs:
    """The publishers of one configuration; `report(problem)` hears about camera_info."""

    def __init__(self, node: LifecycleNode, report: Callable[[str | None], None]) -> None:
        self.node = node
        self.report = report
        self.pubs: dict[str, Any] = {}
        self.camera_info: CameraInfo | None = None  # the visible camera's, once checked
        self.jpeg_quality = 90

    def create(self, values: Mapping[str, Any]) -> None:
        def pub(kind, topic):
            return self.node.create_lifecycle_publisher(
                kind,
                topic,
                qos(OUTPUT_QOS),
                qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            )

        self.pubs = {
            "fused": pub(Image, "fused_image"),
            "mask": pub(Image, "sos_mask"),
            "camera_info": pub(CameraInfo, "camera_info"),
        }
        if values["publish_compressed"]:
            self.pubs["compressed"] = pub(CompressedImage, "fused_image/compressed")
        self.jpeg_quality = values["jpeg_quality"]

    def destroy(self) -> None:
        for pub in self.pubs.values():
            self.node.destroy_lifecycle_publisher(pub)
        self.pubs = {}

    @property
    def fused_topic(self) -> str:
        return self.pubs["fused"].topic_name

    @property
    def has_subscribers(self) -> bool:
        """Whether some output (fused_image, sos_mask, camera_info, ...) has a subscriber."""
        return any(pub.get_subscription_count() > 0 for pub in list(self.pubs.values()))

    def camera_info_received(self, msg: CameraInfo, max_pixels: int) -> None:
        """Keep the visible camera's calibration, or refuse it (and say why)."""
        problem = camera_info_problem(msg, max_pixels)
        self.camera_info = msg if problem is None else None
        if problem is not None:
            self.report(problem)

    def publish(
        self, header, out: PairOutputs, visible_wh: tuple[int, int], clock: StageClock
    ) -> None:
        """The messages of one fused pair, all with `header` (the visible frame's).

        Made (`encode`), then published (`publish`), as `clock` times them.
        """
        with clock("encode"):
            messages = [("fused", fill_image_msg(Image(), out.fused, out.fused_encoding, header))]
            if out.mask is not None:
                messages.append(
                    ("mask", fill_image_msg(Image(), out.mask, out.mask_encoding, header))
                )
            if "compressed" in self.pubs:
                jpeg = fill_compressed_msg(
                    CompressedImage(), out.fused, "jpeg", header, jpeg_quality=self.jpeg_quality
                )
                messages.append(("compressed", jpeg))
            info = self.camera_info
            if info is not None:
                height, width = out.fused.shape[:2]
                try:
                    scaled = fused_camera_info(info, header, width, height, visible_wh)
                except ValueError as exc:
                    self.report(str(exc))
                else:
                    self.report(None)
                    messages.append(("camera_info", scaled))
        with clock("publish"):
            for name, msg in messages:
                self.pubs[name].publish(msg)
