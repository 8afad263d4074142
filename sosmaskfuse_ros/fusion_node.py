"""`sosmaskfuse_node`: a managed node; thermal + visible images in, mask and fused image out.

Topics (relative; remap them at launch):
  in   thermal/image_raw, visible/image_raw   sensor_msgs/Image (or <topic>/compressed with
                                              input_transport:=compressed)
  in   visible/camera_info                    the visible camera's calibration (optional)
  in   mask                                   sensor_msgs/Image mono8, with mask_source:=topic
  out  fused_image                            mono8, or bgr8 with color_output
  out  fused_image/compressed                 JPEG, with publish_compressed
  out  camera_info                            the visible calibration at the fused size
  out  sos_mask                               mono8 (publish_mask)
  out  /diagnostics                           diagnostic_msgs/DiagnosticArray

Lifecycle (rclpy's LifecycleNode; `<node>/change_state`, `<node>/get_state`): configure checks
every parameter and loads the models (with the fallbacks of `model_loading`), activate
subscribes and enables the publishers, deactivate unsubscribes (models stay loaded), cleanup
frees the models. With `autostart` (the default) the node walks to active by itself.

Output headers are the visible frame's header (stamp and frame_id): the fused image lives in
the visible camera's pixel grid. Inference runs on a worker thread behind a latest-wins slot:
when fusion is slower than the cameras, waiting pairs are replaced by newer ones (counted as
dropped), so no queue builds up.
"""

from __future__ import annotations

import functools
import re
import signal
import threading
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from sosmaskfuse_core.formats.approx_sync import stamp_to_ns
from sosmaskfuse_core.formats.image_codec import (
    fill_compressed_msg,
    fill_image_msg,
    message_to_array,
)
from sosmaskfuse_core.pipeline import FramePreparer, FusionPipeline, PairStage, builder
from sosmaskfuse_core.pipeline.builder import ModelSources
from sosmaskfuse_core.pipeline.devices import retain_freed_host_memory
from sosmaskfuse_core.pipeline.health import NonFiniteOutputError
from sosmaskfuse_core.pipeline.pair_stage import Frame
from sosmaskfuse_core.settings import table

from . import params
from .camera_info import fused_camera_info
from .diagnostics import InputMonitor, KeyedThrottle
from .latest_worker import LatestWorker
from .model_loading import load_models
from .node_report import NodeCounters, NodeReport
from .pair_sync import make_synchronizer

_INPUTS = ("thermal", "visible", "mask")
_TOPICS = {"thermal": "thermal/image_raw", "visible": "visible/image_raw", "mask": "mask"}
#: Today's QoS, overridable per topic with rclpy's qos_overrides parameters (REP-2003).
INPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT
)
OUTPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
)
_SETTING_NAMES = frozenset(s.name for s in params.node_settings())
_SUCCESS, _FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def _logged(transition):
    """A transition callback that logs what it raised (rclpy turns it into a silent ERROR)."""

    @functools.wraps(transition)
    def callback(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return transition(self, state)
        except Exception as exc:
            self.report.config_error = f"{transition.__name__[3:]} failed: {exc!r}"
            self.get_logger().error(self.report.config_error)
            return TransitionCallbackReturn.ERROR

    return callback


def _qos(profile: QoSProfile) -> QoSProfile:
    """A copy of `profile`: rclpy applies the QoS overrides to the profile object it is given."""
    return QoSProfile(
        history=profile.history,
        depth=profile.depth,
        reliability=profile.reliability,
        durability=profile.durability,
    )


class FusionNode(LifecycleNode):
    """Pairs the thermal and visible inputs, fuses each pair, publishes the results."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sosmaskfuse", **kwargs)
        self._declare_errors = params.declare_parameters(self, params.node_settings())
        self._settings: dict[str, Any] = {}  # the values the node was configured with
        self.counts = NodeCounters.for_inputs(_INPUTS)
        self.stage: PairStage | None = None
        self.sources: ModelSources | None = None
        self.sync: Any = None  # make_synchronizer's: message_filters' or ours
        self.monitors: dict[str, InputMonitor] = {}
        self._pubs: dict[str, Any] = {}
        self._subs: list = []
        self._active = False
        self._camera_info: CameraInfo | None = None
        self._stage_lock = threading.Lock()  # cleanup waits for a pair in flight
        self._throttle = KeyedThrottle(5.0)
        self.report = NodeReport(
            self.counts,
            lambda: self.get_clock().now().nanoseconds,
            self.get_name(),
            self.get_fully_qualified_name(),
        )
        self.worker: LatestWorker[tuple[Frame, ...]] = LatestWorker(
            self._process, name="sosmaskfuse-fusion"
        )
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self._start_value("diagnostics_period"), self._publish_diagnostics)
        if self._start_value("log_period") > 0:
            self.create_timer(self._start_value("log_period"), self._log_summary)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        if self._start_value("autostart") and self.trigger_configure() == _SUCCESS:
            self.trigger_activate()

    @property
    def pipeline(self) -> FusionPipeline:
        """The stage's FusionPipeline (models, device, live fusion settings); once configured."""
        assert self.stage is not None, "not configured"
        return self.stage.pipeline

    @property
    def preparer(self) -> FramePreparer:
        """The stage's FramePreparer (gain control, registration, processing size)."""
        assert self.stage is not None, "not configured"
        return self.stage.preparer

    @property
    def state(self) -> str:
        """The lifecycle state's label: unconfigured, inactive, active, finalized."""
        return self._state_machine.current_state[1]

    def _start_value(self, name: str) -> Any:
        """A parameter needed before configure: its value, or the default if it is refused."""
        setting = table.by_name(name)
        try:
            return params.to_setting(setting, self.get_parameter(name).value)
        except (ValueError, ParameterUninitializedException):  # refused, or an unset list
            return setting.default

    # --- lifecycle -------------------------------------------------------------------------------

    @_logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.report.config_error = ""
        try:
            if self._declare_errors:
                raise ValueError("; ".join(f"{k}: {v}" for k, v in self._declare_errors.items()))
            values = table.check_values(params.read_values(self, params.node_settings()))
            loaded = load_models(values, self.get_logger().error)
            self._create_publishers(values)
        except (ValueError, RuntimeError, InvalidQosOverridesError) as exc:
            self.report.config_error = f"cannot configure: {exc}"
            self.get_logger().error(self.report.config_error)
            self._destroy_publishers()
            return _FAILURE
        self._settings = values
        with self._stage_lock:
            self.stage, self.sources = loaded.stage, loaded.sources
        self.report.fallback = loaded.fallback
        n_inputs = 3 if self.pipeline.mask_source == "topic" else 2
        self.monitors = {
            role: InputMonitor(
                self.resolve_topic_name(_TOPICS[role]),
                values["input_min_rate"],
                values["input_max_rate"],
                values["max_stamp_age"],
            )
            for role in _INPUTS[:n_inputs]
        }
        self.get_logger().info(
            f"fusing on {self.pipeline.device} ({self.pipeline.config.precision}); {self.sources}"
        )
        return _SUCCESS

    @_logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p, stage = self._settings, self.stage
        assert stage is not None  # activate follows a successful configure
        self.sync = make_synchronizer(
            len(self.monitors), p["sync_queue_size"], p["sync_slop"], self._on_pair
        )
        compressed = p["input_transport"] == "compressed"
        try:
            for index, role in enumerate(self.monitors):
                use_compressed = compressed and role != "mask"
                self._subs.append(
                    self.create_subscription(
                        CompressedImage if use_compressed else Image,
                        _TOPICS[role] + ("/compressed" if use_compressed else ""),
                        functools.partial(self._on_image, index, role),
                        _qos(INPUT_QOS),
                        qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                    )
                )
            self._subs.append(
                self.create_subscription(
                    CameraInfo, "visible/camera_info", self._on_camera_info, _qos(INPUT_QOS)
                )
            )
        except (RuntimeError, InvalidQosOverridesError) as exc:
            self.report.config_error = f"cannot activate: {exc}"
            self.get_logger().error(self.report.config_error)
            self._destroy_subscriptions()
            return _FAILURE
        stage.restart_stream()  # no mask smoothing across an inactive gap
        self._active = True
        self.report.config_error = ""
        self.get_logger().info(
            f"pairing {', '.join(s.topic_name for s in self._subs[:-1])} "
            f"({self.sync.name} ApproximateTime, "
            f"queue {p['sync_queue_size']}, slop {p['sync_slop']} s)"
        )
        return super().on_activate(state)

    @_logged
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_subscriptions()
        self.get_logger().info("inactive: not fusing (models stay loaded)")
        return super().on_deactivate(state)

    @_logged
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: models freed")
        return _SUCCESS

    @_logged
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_subscriptions()
        self._release()
        return _SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_shutdown(state)
        return _SUCCESS

    def _release(self) -> None:
        self._destroy_publishers()
        with self._stage_lock:
            self.stage = self.sources = None
        self.monitors = {}
        self.report.fallback = ""

    def _create_publishers(self, values: dict) -> None:
        def pub(kind, topic):
            return self.create_lifecycle_publisher(
                kind,
                topic,
                _qos(OUTPUT_QOS),
                qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            )

        self._pubs = {
            "fused": pub(Image, "fused_image"),
            "mask": pub(Image, "sos_mask"),
            "camera_info": pub(CameraInfo, "camera_info"),
        }
        if values["publish_compressed"]:
            self._pubs["compressed"] = pub(CompressedImage, "fused_image/compressed")

    def _destroy_publishers(self) -> None:
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}

    def _destroy_subscriptions(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []

    # --- executor thread: receive, validate, pair --------------------------------------------

    def _on_image(self, index: int, role: str, msg: Any) -> None:
        """Decode, check and pair one message; a bad one is counted and logged, never raised."""
        self.counts.received[role] += 1
        try:
            monitor = self.monitors[role]
            monitor.message(stamp_to_ns(msg.header.stamp) / 1e9, self._now_s())
            image, encoding = message_to_array(
                msg, name=f"{role} image", max_pixels=self._settings["max_input_pixels"]
            )  # as `sosmaskfuse bag` decodes
            self.sync.add(index, Frame(image, encoding, msg.header))
        except Exception as exc:  # a bad message (ImageDecodeError, a refused stamp) or worse
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.counts.bad[role] += 1
            if role in self.monitors:
                self.monitors[role].bad(reason)
            if self._throttle.allow((role, re.sub(r"\d+", "#", reason)[:60])):
                self.get_logger().warning(f"dropped a {role} message: {reason}")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_pair(self, *frames: Frame) -> None:
        self.counts.pairs += 1
        if not self.worker.offer(frames):
            self.counts.dropped += 1  # it replaced a pair the fusion thread had not taken

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    # --- worker thread: fuse and publish -----------------------------------------------------

    def _process(self, frames: tuple[Frame, ...]) -> None:
        thermal, visible = frames[0], frames[1]
        mask = frames[2] if len(frames) > 2 else None
        with self._stage_lock:
            if self.stage is None or not self._active:
                return  # deactivated (or cleaned up) while the pair waited
            try:
                out = self.stage(thermal, visible, mask)
            except (ValueError, RuntimeError) as exc:
                self.counts.failed += 1
                self.report.pair_failed(exc, error=isinstance(exc, NonFiniteOutputError))
                if self._throttle.allow(("fusion", type(exc).__name__)):
                    self.get_logger().warning(f"could not fuse a pair: {exc}")
                return
            if not self.context.ok() or not self._active:
                return  # shut down (Ctrl-C) or deactivated while fusing: nothing to publish
            self._publish(visible.header, out)

    def _publish(self, header, out) -> None:
        """The outputs of one pair, all with the visible frame's header (PairStage.HEADER_FROM)."""
        self._pubs["fused"].publish(fill_image_msg(Image(), out.fused, out.fused_encoding, header))
        if out.mask is not None:
            self._pubs["mask"].publish(
                fill_image_msg(Image(), out.mask, out.mask_encoding, header)
            )
        if "compressed" in self._pubs:
            msg = fill_compressed_msg(
                CompressedImage(),
                out.fused,
                "jpeg",
                header,
                jpeg_quality=self._settings["jpeg_quality"],
            )
            self._pubs["compressed"].publish(msg)
        info = self._camera_info
        if info is not None:
            height, width = out.fused.shape[:2]
            self._pubs["camera_info"].publish(fused_camera_info(info, header, width, height))
        self.counts.published += 1
        self.report.pair_published(stamp_to_ns(header.stamp))

    # --- parameters ----------------------------------------------------------------------------

    def _current_values(self) -> dict:
        """The configured settings; before configure, each parameter's value or its default."""
        if self._settings:
            return dict(self._settings)
        return {s.name: self._start_value(s.name) for s in params.node_settings()}

    def _live_values(self, changes: list[Parameter]) -> dict:
        """The node's settings with `changes` merged in, as the table holds them (ValueError)."""
        values = self._current_values()
        for change in changes:
            if change.name in values:
                values[change.name] = params.check_change(table.by_name(change.name), change)
        return values

    def _validate_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        changes = [c for c in changes if c.name in _SETTING_NAMES]  # not qos_overrides.*
        if not changes:
            return SetParametersResult(successful=True)
        try:
            values = self._live_values(changes)
            if self.stage is not None:
                builder.LiveSettings.check(self.stage, values)
            else:
                builder.frame_preparer(values)  # the combinations (e.g. agc_min < agc_max)
        except (ValueError, TypeError, KeyError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, changes: list[Parameter]) -> None:
        changes = [c for c in changes if c.name in _SETTING_NAMES]
        if not changes:
            return
        values = self._live_values(changes)
        stage = self.stage
        if stage is not None:  # applied between two pairs (the pipeline's own lock)
            builder.LiveSettings.check(stage, values).apply(stage)
            self._settings = values
        for change in changes:
            self._declare_errors.pop(change.name, None)
        self.get_logger().info(
            "parameters set: " + ", ".join(f"{c.name}={c.value!r}" for c in changes)
        )

    # --- reporting -----------------------------------------------------------------------------

    def _running(self) -> dict[str, Any]:
        """What runs, for the fusion status: device, precision, models, mode, pairing."""
        stage, sources = self.stage, self.sources
        if stage is None or sources is None:
            return {}
        config = stage.pipeline.config
        return {
            "device": str(stage.pipeline.device),
            "precision": config.precision,
            "autoencoder": sources.autoencoder,
            "mask source": sources.mask,
            "fusion mode": config.fusion_mode,
            "mu": config.mu,
            "sync": self.sync.name if self.sync is not None else "",
        }

    def _publish_diagnostics(self) -> None:
        self.diag_pub.publish(self.report.array(self.state, self._running(), self.monitors))

    def _log_summary(self) -> None:
        self.get_logger().info(self.report.log_line(self.state))

    def destroy_node(self) -> None:
        self.worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the node until Ctrl-C (the `sosmaskfuse_node` executable)."""
    retain_freed_host_memory()  # long-running: reuse freed buffers, no page faults per frame
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
