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

from sosmaskfuse_core.frames import FramePreparer, parse_homography
from sosmaskfuse_core.image_codec import ImageDecodeError, fill_image_msg, message_to_array
from sosmaskfuse_core.pipeline import PipelineConfig
from sosmaskfuse_core.thermal_agc import ThermalAGC
from sosmaskfuse_core.weights import build_pipeline

from . import params
from .latest_worker import LatestWorker
from .pair_sync import Frame, make_synchronizer

_AGC_PARAMS = {"thermal_agc": "mode", "agc_low_percent": "low_percent", "agc_high_percent": "high_percent",
               "agc_min": "fixed_min", "agc_max": "fixed_max"}
_PIPELINE_PARAMS = {"fusion_mode", "mu", "mask_threshold", "output_scaling", "color_output"}
_MASK_SOURCE = {"auto": "auto", "sosnet": "sosnet", "thermal": "thermal", "topic": "external"}
_INPUTS = ("thermal", "visible", "mask")


def _qos(reliability: str, depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort"
                      else ReliabilityPolicy.RELIABLE)


class FusionNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sosmaskfuse", **kwargs)
        p = params.declare_all(self)
        self._p = p
        self.counts = {"received": dict.fromkeys(_INPUTS, 0), "bad": dict.fromkeys(_INPUTS, 0),
                       "pairs": 0, "published": 0, "failed": 0}
        self._latency_ms: list[float] = []
        self._last_error = ""

        self.preparer = FramePreparer(agc=self._agc_from(p), homography=parse_homography(p["homography"]))
        config = PipelineConfig(
            fusion_mode=p["fusion_mode"], mu=p["mu"], mask_threshold=params.parse_mask_threshold(p["mask_threshold"]),
            output_scaling=p["output_scaling"], precision=p["precision"], color_output=p["color_output"],
            process_size=(p["process_width"], p["process_height"]) if p["process_width"] and p["process_height"]
            else None)
        self.pipeline, self.sources = self._build_pipeline(p, config)
        self.get_logger().info(f"fusing on {self.pipeline.device} ({p['precision']}); {self.sources}")

        out_qos = _qos(p["output_reliability"], p["qos_depth"])
        self.fused_pub = self.create_publisher(Image, "fused_image", out_qos)
        self.mask_pub = self.create_publisher(Image, "sos_mask", out_qos)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        with_mask = self.pipeline.mask_source == "external"
        n_inputs = 3 if with_mask else 2
        self.sync = make_synchronizer(n_inputs, p["sync_queue_size"], p["sync_slop"], self._on_pair)
        self.worker: LatestWorker[tuple[Frame, ...]] = LatestWorker(self._process, name="sosmaskfuse-fusion")

        in_qos = _qos(p["input_reliability"], p["qos_depth"])
        compressed = p["input_transport"] == "compressed"
        self._subs = []
        for index, (role, topic) in enumerate((("thermal", "thermal/image_raw"), ("visible", "visible/image_raw"),
                                               ("mask", "mask"))[:n_inputs]):
            use_compressed = compressed and role != "mask"
            self._subs.append(self.create_subscription(
                CompressedImage if use_compressed else Image, topic + "/compressed" if use_compressed else topic,
                lambda msg, i=index, r=role: self._on_image(i, r, msg), in_qos))
        self.get_logger().info(
            f"pairing {', '.join(s.topic_name for s in self._subs)} ({self.sync.name} ApproximateTime, "
            f"queue {p['sync_queue_size']}, slop {p['sync_slop']} s)")

        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._last_report = (self.get_clock().now().nanoseconds, self._snapshot())
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        if p["log_period"] > 0:
            self._last_log = self._last_report
            self.create_timer(p["log_period"], self._log_summary)

    # --- start-up ---------------------------------------------------------------------------

    def _build_pipeline(self, p: dict, config: PipelineConfig):
        """The configured pipeline. A bad weights file, device or precision does not stop the node:
        each is replaced by its default in turn (weights: shipped; mask: best available; device:
        CPU), with an error in the log and in the diagnostics."""
        ae, sos = p["autoencoder_weights"] or None, p["sosnet_weights"] or None
        mask = _MASK_SOURCE[p["mask_source"]]
        fallback_mask = "external" if mask == "external" else "auto"
        attempts = [(ae, sos, mask, p["device"], config)]
        if ae:
            attempts.append((None, sos, mask, p["device"], config))
        if sos or mask == "sosnet":
            attempts.append((ae, None, fallback_mask, p["device"], config))
        attempts.append((None, None, fallback_mask, "cpu", config.replace(precision="fp32")))
        errors = []
        for ae_path, sos_path, mask_source, device, cfg in attempts:
            try:
                pipeline, sources = build_pipeline(ae_path, sos_path, mask_source=mask_source, device=device,
                                                   config=cfg)
            except (ValueError, OSError, RuntimeError) as exc:
                errors.append(str(exc))
                self.get_logger().error(f"cannot use the configured models: {exc}")
                continue
            if errors:
                self._last_error = f"running fallback models ({sources}) because: {errors[0]}"
                self.get_logger().error(self._last_error)
            return pipeline, sources
        raise RuntimeError("no usable models: " + "; ".join(errors))

    @staticmethod
    def _agc_from(values: dict) -> ThermalAGC:
        return ThermalAGC(**{field: values[name] for name, field in _AGC_PARAMS.items()})

    # --- executor thread: receive, validate, pair --------------------------------------------

    def _on_image(self, index: int, role: str, msg: Any) -> None:
        self.counts["received"][role] += 1
        try:
            image, encoding = message_to_array(msg, name=f"{role} image")  # as `sosmaskfuse bag` decodes
            if role == "mask" and image.ndim != 2:
                raise ImageDecodeError(f"mask image: encoding {encoding} is not single-channel")
            self.sync.add(index, Frame(msg.header, encoding, image, time.monotonic_ns()))
        except (ImageDecodeError, ValueError) as exc:  # bad pixels, or a stamp the synchroniser refuses
            self.counts["bad"][role] += 1
            self.get_logger().warning(f"dropped a {role} message: {exc}", throttle_duration_sec=5.0)

    def _on_pair(self, *frames: Frame) -> None:
        self.counts["pairs"] += 1
        self.worker.offer(frames)

    # --- worker thread: fuse and publish -----------------------------------------------------

    def _process(self, frames: tuple[Frame, ...]) -> None:
        thermal, visible = frames[0], frames[1]
        try:
            ir, vis = self.preparer.prepare(thermal.image, thermal.encoding, visible.image, visible.encoding)
            mask = frames[2].image if len(frames) > 2 else None
            if mask is not None and mask.shape[:2] != vis.shape[:2]:
                raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, visible is {vis.shape[1]}x{vis.shape[0]}")
            result = self.pipeline(ir, vis, mask)
        except (ValueError, RuntimeError) as exc:
            self.counts["failed"] += 1
            self._last_error = str(exc)
            self.get_logger().warning(f"could not fuse a pair: {exc}", throttle_duration_sec=5.0)
            return
        if not self.context.ok():  # shut down (Ctrl-C) while fusing: nothing left to publish to
            return
        header = visible.header
        self.fused_pub.publish(fill_image_msg(Image(), result.fused,
                                              "bgr8" if result.fused.ndim == 3 else "mono8", header))
        if self._p["publish_mask"]:
            self.mask_pub.publish(fill_image_msg(Image(), result.mask_u8, "mono8", header))
        self.counts["published"] += 1
        latency = (time.monotonic_ns() - max(thermal.received_ns, visible.received_ns)) / 1e6
        self._latency_ms = (self._latency_ms + [latency])[-100:]

    # --- parameters ----------------------------------------------------------------------------

    def _validate_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        values = {c.name: c.value for c in changes}
        try:
            if values.keys() & _PIPELINE_PARAMS:
                self._pipeline_changes(values)
            if values.keys() & _AGC_PARAMS.keys():
                self._agc_from({**self._p, **values})
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _pipeline_changes(self, values: dict) -> dict:
        changes = {k: v for k, v in values.items() if k in _PIPELINE_PARAMS}
        if "mask_threshold" in changes:
            changes["mask_threshold"] = params.parse_mask_threshold(changes["mask_threshold"])
        self.pipeline.config.replace(**changes)  # validates, raises ValueError
        return changes

    def _apply_parameters(self, changes: list[Parameter]) -> None:
        values = {c.name: c.value for c in changes}
        self._p = {**self._p, **values}
        if values.keys() & _PIPELINE_PARAMS:
            self.pipeline.update(**self._pipeline_changes(values))
        if values.keys() & _AGC_PARAMS.keys():
            self.preparer = FramePreparer(agc=self._agc_from(self._p), homography=self.preparer.homography)
        self.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))

    # --- reporting -------------------------------------------------------------------------------

    def _snapshot(self) -> dict:
        return {"thermal": self.counts["received"]["thermal"], "visible": self.counts["received"]["visible"],
                "pairs": self.counts["pairs"], "published": self.counts["published"]}

    def _rates(self, last: tuple[int, dict]) -> tuple[dict, tuple[int, dict]]:
        now, snap = self.get_clock().now().nanoseconds, self._snapshot()
        dt = (now - last[0]) / 1e9
        rates = {k: (snap[k] - last[1][k]) / dt if dt > 0 else 0.0 for k in snap}
        return rates, (now, snap)

    def _publish_diagnostics(self) -> None:
        rates, self._last_report = self._rates(self._last_report)
        lat = sorted(self._latency_ms)
        bad = sum(self.counts["bad"].values())
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: fusion",
                                  hardware_id=str(self.pipeline.device))
        status.level, status.message = DiagnosticStatus.OK, "fusing"
        if self.counts["published"] == 0 and not self.counts["pairs"]:
            status.level, status.message = DiagnosticStatus.WARN, "waiting for thermal/visible pairs"
        if self._last_error:
            status.level, status.message = DiagnosticStatus.WARN, self._last_error[:200]
        values = {
            "thermal rate (Hz)": f"{rates['thermal']:.2f}", "visible rate (Hz)": f"{rates['visible']:.2f}",
            "pair rate (Hz)": f"{rates['pairs']:.2f}", "output rate (Hz)": f"{rates['published']:.2f}",
            "latency mean (ms)": f"{sum(lat) / len(lat):.1f}" if lat else "",
            "latency max (ms)": f"{lat[-1]:.1f}" if lat else "",
            "pairs": str(self.counts["pairs"]), "published": str(self.counts["published"]),
            "dropped pairs (stale)": str(self.worker.dropped), "failed pairs": str(self.counts["failed"]),
            "bad messages": str(bad), **{f"bad {k} messages": str(v) for k, v in self.counts["bad"].items()},
            "device": str(self.pipeline.device), "precision": self.pipeline.config.precision,
            "autoencoder": self.sources.autoencoder, "mask source": self.sources.mask,
            "fusion mode": self.pipeline.config.fusion_mode, "mu": str(self.pipeline.config.mu),
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
            f"in {rates['thermal']:.1f}/{rates['visible']:.1f} Hz, out {rates['published']:.1f} Hz, "
            f"latency {sum(lat) / len(lat) if lat else 0:.0f} ms, dropped {self.worker.dropped}, "
            f"bad {sum(self.counts['bad'].values())}, failed {self.counts['failed']}")

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
