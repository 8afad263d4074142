"""`sosmaskfuse_node`: time-synchronised thermal + visible images in, SOS mask and fused image out.

Topics (relative; remap them at launch):
  in   thermal/image_raw, visible/image_raw   sensor_msgs/Image (or <topic>/compressed with
                                              input_transport:=compressed)
  in   mask                                   sensor_msgs/Image mono8, with mask_source:=topic
  out  fused_image                            mono8, or bgr8 with color_output
  out  sos_mask                               mono8 (publish_mask)
  out  /diagnostics                           diagnostic_msgs/DiagnosticArray

Output headers are the visible frame's header (stamp and frame_id): the fused image lives
in the visible camera's pixel grid (the thermal image is warped or resized into it).

Inference runs on a worker thread behind a latest-wins slot: when fusion is slower than the
cameras, waiting pairs are replaced by newer ones (counted as dropped), so latency stays
bounded by one processing time.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from sosmaskfuse_core.formats.image_codec import ImageDecodeError, fill_image_msg, message_to_array
from sosmaskfuse_core.pipeline import builder
from sosmaskfuse_core.pipeline.devices import check_precision, resolve_device
from sosmaskfuse_core.pipeline.pair_stage import Frame as StageFrame
from sosmaskfuse_core.pipeline.pair_stage import PairStage
from sosmaskfuse_core.settings import table

from . import params
from .latest_worker import LatestWorker
from .pair_sync import Frame, make_synchronizer

_INPUTS = ("thermal", "visible", "mask")


def _qos(reliability: str, depth: int) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT
        if reliability == "best_effort"
        else ReliabilityPolicy.RELIABLE,
    )


class FusionNode(Node):
    """Pairs the thermal and visible inputs, fuses each pair, publishes the results.

    Each pair goes through a `PairStage`.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("sosmaskfuse", **kwargs)
        p = params.declare_all(self)
        self._p = p
        self.counts = {
            "received": dict.fromkeys(_INPUTS, 0),
            "bad": dict.fromkeys(_INPUTS, 0),
            "pairs": 0,
            "published": 0,
            "failed": 0,
        }
        self._latency_ms: list[float] = []
        self._last_error = ""

        self.stage, self.sources = self._build_stage(p)
        self.get_logger().info(
            f"fusing on {self.pipeline.device} ({self.pipeline.config.precision}); {self.sources}"
        )

        out_qos = _qos(p["output_reliability"], p["qos_depth"])
        self.fused_pub = self.create_publisher(Image, "fused_image", out_qos)
        self.mask_pub = self.create_publisher(Image, "sos_mask", out_qos)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        n_inputs = 3 if self.pipeline.mask_source == "topic" else 2
        self.sync = make_synchronizer(
            n_inputs, p["sync_queue_size"], p["sync_slop"], self._on_pair
        )
        self.worker: LatestWorker[tuple[Frame, ...]] = LatestWorker(
            self._process, name="sosmaskfuse-fusion"
        )

        in_qos = _qos(p["input_reliability"], p["qos_depth"])
        compressed = p["input_transport"] == "compressed"
        self._subs = []
        for index, (role, topic) in enumerate(
            (("thermal", "thermal/image_raw"), ("visible", "visible/image_raw"), ("mask", "mask"))[
                :n_inputs
            ]
        ):
            use_compressed = compressed and role != "mask"
            self._subs.append(
                self.create_subscription(
                    CompressedImage if use_compressed else Image,
                    topic + "/compressed" if use_compressed else topic,
                    lambda msg, i=index, r=role: self._on_image(i, r, msg),
                    in_qos,
                )
            )
        self.get_logger().info(
            f"pairing {', '.join(s.topic_name for s in self._subs)} "
            f"({self.sync.name} ApproximateTime, "
            f"queue {p['sync_queue_size']}, slop {p['sync_slop']} s)"
        )

        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._last_report = (self.get_clock().now().nanoseconds, self._snapshot())
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        if p["log_period"] > 0:
            self._last_log = self._last_report
            self.create_timer(p["log_period"], self._log_summary)

    @property
    def pipeline(self):
        """The stage's FusionPipeline (models, device, live fusion settings)."""
        return self.stage.pipeline

    @property
    def preparer(self):
        """The stage's FramePreparer (gain control, registration, processing size)."""
        return self.stage.preparer

    # --- start-up ---------------------------------------------------------------------------

    def _build_stage(self, p: dict) -> tuple[PairStage, builder.ModelSources]:
        """The configured stage; a bad device, precision or weights file does not stop the node.

        Only what failed is replaced by its default (device: CPU; precision: fp32; autoencoder: the
        shipped one; SOS network: none, mask from the best source left), with an error in the log
        and in the diagnostics. The user's other choices are kept.
        """
        errors: list[str] = []
        device, precision = p["device"], p["precision"]
        try:
            resolved = resolve_device(device)
        except ValueError as exc:
            errors.append(str(exc))
            device, resolved = "cpu", resolve_device("cpu")
        try:
            check_precision(precision, resolved)
        except ValueError as exc:
            errors.append(str(exc))
            precision = "fp32"
        for error in errors:
            self.get_logger().error(f"cannot use the configured device/precision: {error}")
        ae, sos, mask = (
            p["autoencoder_weights"] or None,
            p["sosnet_weights"] or None,
            p["mask_source"],
        )
        fallback_mask = "topic" if mask == "topic" else "auto"
        attempts = [(ae, sos, mask)]
        if ae:
            attempts.append((None, sos, mask))
        if sos or mask == "sosnet":
            attempts.append((ae, None, fallback_mask))
            if ae:
                attempts.append((None, None, fallback_mask))
        for ae_path, sos_path, mask_source in attempts:
            try:
                stage, sources = builder.build_stage(
                    p,
                    autoencoder_weights=ae_path or "",
                    sosnet_weights=sos_path or "",
                    mask_source=mask_source,
                    device=device,
                    precision=precision,
                )
            except (ValueError, OSError, RuntimeError) as exc:
                errors.append(str(exc))
                self.get_logger().error(f"cannot use the configured models: {exc}")
                continue
            if errors:
                self._last_error = (
                    f"running fallback ({sources}, {stage.pipeline.device} "
                    f"{stage.pipeline.config.precision}) because: {errors[0]}"
                )
                self.get_logger().error(self._last_error)
            return stage, sources
        raise RuntimeError("no usable models: " + "; ".join(errors))

    # --- executor thread: receive, validate, pair --------------------------------------------

    def _on_image(self, index: int, role: str, msg: Any) -> None:
        self.counts["received"][role] += 1
        try:
            image, encoding = message_to_array(
                msg, name=f"{role} image"
            )  # as `sosmaskfuse bag` decodes
            self.sync.add(index, Frame(msg.header, encoding, image, time.monotonic_ns()))
        except (
            ImageDecodeError,
            ValueError,
        ) as exc:  # bad pixels, or a stamp the synchroniser refuses
            self.counts["bad"][role] += 1
            self.get_logger().warning(
                f"dropped a {role} message: {exc}", throttle_duration_sec=5.0
            )

    def _on_pair(self, *frames: Frame) -> None:
        self.counts["pairs"] += 1
        self.worker.offer(frames)

    # --- worker thread: fuse and publish -----------------------------------------------------

    def _process(self, frames: tuple[Frame, ...]) -> None:
        thermal, visible = frames[0], frames[1]
        mask = StageFrame(frames[2].image, frames[2].encoding) if len(frames) > 2 else None
        try:
            out = self.stage(
                StageFrame(thermal.image, thermal.encoding),
                StageFrame(visible.image, visible.encoding),
                mask,
            )
        except (ValueError, RuntimeError) as exc:
            self.counts["failed"] += 1
            self._last_error = str(exc)
            self.get_logger().warning(f"could not fuse a pair: {exc}", throttle_duration_sec=5.0)
            return
        if not self.context.ok():  # shut down (Ctrl-C) while fusing: nothing left to publish to
            return
        header = (
            visible.header
        )  # PairStage.HEADER_FROM: the fused image lies in the visible camera's grid
        self.fused_pub.publish(fill_image_msg(Image(), out.fused, out.fused_encoding, header))
        if out.mask is not None:
            self.mask_pub.publish(fill_image_msg(Image(), out.mask, out.mask_encoding, header))
        self.counts["published"] += 1
        latency = (time.monotonic_ns() - max(thermal.received_ns, visible.received_ns)) / 1e6
        self._latency_ms = (self._latency_ms + [latency])[-100:]

    # --- parameters ----------------------------------------------------------------------------

    def _live_values(self, changes: list[Parameter]) -> dict:
        """The node's settings with `changes` merged in, as the table holds them (ValueError)."""
        values = dict(self._p)
        for change in changes:
            values[change.name] = params.to_setting(table.by_name(change.name), change.value)
        return values

    def _validate_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        try:
            builder.live_update(self.stage, self._live_values(changes))
        except (ValueError, TypeError, KeyError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, changes: list[Parameter]) -> None:
        values = self._live_values(changes)
        builder.live_update(self.stage, values)()
        self._p = values
        self.get_logger().info(
            "parameters set: " + ", ".join(f"{c.name}={c.value!r}" for c in changes)
        )

    # --- reporting -------------------------------------------------------------------------------

    def _snapshot(self) -> dict:
        return {
            "thermal": self.counts["received"]["thermal"],
            "visible": self.counts["received"]["visible"],
            "pairs": self.counts["pairs"],
            "published": self.counts["published"],
        }

    def _rates(self, last: tuple[int, dict]) -> tuple[dict, tuple[int, dict]]:
        now, snap = self.get_clock().now().nanoseconds, self._snapshot()
        dt = (now - last[0]) / 1e9
        rates = {k: (snap[k] - last[1][k]) / dt if dt > 0 else 0.0 for k in snap}
        return rates, (now, snap)

    def _publish_diagnostics(self) -> None:
        rates, self._last_report = self._rates(self._last_report)
        lat = sorted(self._latency_ms)
        bad = sum(self.counts["bad"].values())
        status = DiagnosticStatus(
            name=f"{self.get_fully_qualified_name()}: fusion",
            hardware_id=str(self.pipeline.device),
        )
        status.level, status.message = DiagnosticStatus.OK, "fusing"
        if self.counts["published"] == 0 and not self.counts["pairs"]:
            status.level, status.message = (
                DiagnosticStatus.WARN,
                "waiting for thermal/visible pairs",
            )
        if self._last_error:
            status.level, status.message = DiagnosticStatus.WARN, self._last_error[:200]
        values = {
            "thermal rate (Hz)": f"{rates['thermal']:.2f}",
            "visible rate (Hz)": f"{rates['visible']:.2f}",
            "pair rate (Hz)": f"{rates['pairs']:.2f}",
            "output rate (Hz)": f"{rates['published']:.2f}",
            "latency mean (ms)": f"{sum(lat) / len(lat):.1f}" if lat else "",
            "latency max (ms)": f"{lat[-1]:.1f}" if lat else "",
            "pairs": str(self.counts["pairs"]),
            "published": str(self.counts["published"]),
            "dropped pairs (stale)": str(self.worker.dropped),
            "failed pairs": str(self.counts["failed"]),
            "bad messages": str(bad),
            **{f"bad {k} messages": str(v) for k, v in self.counts["bad"].items()},
            "device": str(self.pipeline.device),
            "precision": self.pipeline.config.precision,
            "autoencoder": self.sources.autoencoder,
            "mask source": self.sources.mask,
            "fusion mode": self.pipeline.config.fusion_mode,
            "mu": str(self.pipeline.config.mu),
            "sync": self.sync.name,
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)

    def _log_summary(self) -> None:
        rates, self._last_log = self._rates(self._last_log)
        lat = self._latency_ms
        self.get_logger().info(
            f"in {rates['thermal']:.1f}/{rates['visible']:.1f} Hz, "
            f"out {rates['published']:.1f} Hz, "
            f"latency {sum(lat) / len(lat) if lat else 0:.0f} ms, dropped {self.worker.dropped}, "
            f"bad {sum(self.counts['bad'].values())}, failed {self.counts['failed']}"
        )

    def destroy_node(self) -> None:
        self.worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = FusionNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        # Ctrl-C under ros2 launch is two SIGINTs (the terminal's and the one launch forwards): the
        # second must not cut short stopping the fusion thread (exiting in mid-inference aborts).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
