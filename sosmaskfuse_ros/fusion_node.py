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
frees the models. With `autostart` (the default) the node walks to active by itself, at
start-up and, if a start-up value stopped it, after the configure that follows the fix (`ros2
param set` while unconfigured). An invalid transition, by label or by id, is answered
success=false (`lifecycle.guard_change_state`).

Lazy: while no output has a subscriber (a viewer, a bag recorder, another node), messages are
counted and their rate and stamps checked, but nothing is decoded, paired or fused; the first
subscriber starts it again with the next message.

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
from contextlib import nullcontext
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from sosmaskfuse_core.formats.approx_sync import stamp_to_ns
from sosmaskfuse_core.formats.image_codec import message_to_array
from sosmaskfuse_core.pipeline import FramePreparer, FusionPipeline, PairStage
from sosmaskfuse_core.pipeline.builder import ModelSources
from sosmaskfuse_core.pipeline.devices import (
    describe_device,
    retain_freed_host_memory,
    set_cpu_threads,
)
from sosmaskfuse_core.pipeline.frames import check_thermal_encoding
from sosmaskfuse_core.pipeline.pair_stage import Frame

from .alignment_status import AlignmentMonitor
from .camera_checks import CameraChecks, pair_sizes
from .diagnostics import WARN, InputMonitor, KeyedThrottle, OutputMonitor
from .latest_worker import LatestWorker
from .lifecycle import guard_change_state, logged
from .model_loading import load_models
from .node_outputs import INPUT_QOS, OUTPUT_QOS, NodeOutputs, qos
from .node_parameters import NodeParameters
from .node_report import NO_HARDWARE, NodeCounters, NodeReport, name_clash, running_values
from .pair_sync import make_synchronizer

__all__ = ["INPUT_QOS", "OUTPUT_QOS", "FusionNode", "main"]

_INPUTS = ("thermal", "visible", "mask")
_TOPICS = {"thermal": "thermal/image_raw", "visible": "visible/image_raw", "mask": "mask"}
_SUCCESS, _FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
#: The reporting settings read before configure (and again at configure).
_REPORTING = ("diagnostic_updater.period", "diagnostic_updater.use_fqn", "log_period")


class FusionNode(LifecycleNode):
    """Pairs the thermal and visible inputs, fuses each pair, publishes the results."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sosmaskfuse", **kwargs)
        self.counts = NodeCounters.for_inputs(_INPUTS)
        self.stage: PairStage | None = None
        self.sources: ModelSources | None = None
        self.sync: Any = None  # make_synchronizer's: message_filters' or ours
        self.monitors: dict[str, InputMonitor] = {}
        self.output: OutputMonitor | None = None
        self.cameras = CameraChecks()
        self.alignment = AlignmentMonitor()  # the `alignment` status
        self.outputs = NodeOutputs(self, self._camera_info_refused)
        self.parameters = NodeParameters(self)
        self._subs: list = []
        self._active = False
        self._stage_lock = threading.Lock()  # cleanup waits for a pair in flight
        self._throttle = KeyedThrottle(5.0)
        self._listen_lock = threading.Lock()
        self._listening = False  # some output has a subscriber (see _outputs_wanted)
        self._restart_stream = False  # the next pair starts a new stream (after a lazy gap)
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
        self._report_timers: dict[str, tuple[float, Any]] = {}
        self._reporting({name: self.parameters.start_value(name) for name in _REPORTING})
        guard_change_state(self, self._after_transition)
        # autostart walks to active (or the configure after a start-up value's fix does)
        self._autostart_pending = bool(self.parameters.start_value("autostart"))
        if self._autostart_pending and self.trigger_configure() == _SUCCESS:
            self._autostart_pending = self.trigger_activate() != _SUCCESS

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

    @property
    def has_subscribers(self) -> bool:
        """Whether some output has a subscriber (the node decodes and fuses only then)."""
        return self.outputs.has_subscribers

    def _reporting(self, values: dict) -> None:
        """The diagnostics and log timers and the status names, from their settings."""
        self.report.use_fqn = values["diagnostic_updater.use_fqn"]
        for name, callback in (
            ("diagnostic_updater.period", self._publish_diagnostics),
            ("log_period", self._log_summary),
        ):
            period = values[name]
            old = self._report_timers.pop(name, None)
            if old is not None and old[0] == period:
                self._report_timers[name] = old
                continue
            if old is not None:
                self.destroy_timer(old[1])
            if period > 0:
                self._report_timers[name] = (period, self.create_timer(period, callback))

    # --- lifecycle -------------------------------------------------------------------------------

    def _after_transition(self, transition, success: bool) -> None:
        """With autostart pending, a successful configure (over the service) goes on to active."""
        configure = transition.id == Transition.TRANSITION_CONFIGURE or (
            transition.label == "configure"
        )
        if success and configure and self._autostart_pending:
            self.get_logger().info("autostart: configured at last, activating")
            self._autostart_pending = self.trigger_activate() != _SUCCESS

    @logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.report.config_error = ""
        try:
            values = self.parameters.configure_values()
            self._reporting(values)
            set_cpu_threads(values["cpu_threads"])
            loaded = load_models(values, self.get_logger().error)
            self.cameras.at_configure(loaded.stage, values)
            self.alignment.configure(values)
            self.outputs.create(values)
        except (ValueError, RuntimeError, InvalidQosOverridesError) as exc:
            self.report.config_error = f"cannot configure: {exc}"
            self.get_logger().error(self.report.config_error)
            self.outputs.destroy()
            return _FAILURE
        self.parameters.configured = values
        with self._stage_lock:
            self.stage, self.sources = loaded.stage, loaded.sources
        self.parameters.show_preset(values)
        self.report.fallback = loaded.fallback
        self.report.hardware_id = describe_device(self.pipeline.device)
        self.report.sync_slop = values["sync_slop"]
        self.get_logger().info(
            f"fusing on {self.pipeline.device} ({self.pipeline.config.precision}); {self.sources}"
        )
        return _SUCCESS

    @logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p, stage = self.parameters.configured, self.stage
        assert stage is not None  # activate follows a successful configure
        n_inputs = 3 if self.pipeline.mask_source == "topic" else 2
        now_s = self._now_s()
        self.monitors = {
            role: InputMonitor(
                self.resolve_topic_name(_TOPICS[role]),
                p["input_min_rate"],
                p["input_max_rate"],
                p["max_stamp_age"],
                now_s,
            )
            for role in _INPUTS[:n_inputs]
        }
        self.output = OutputMonitor(
            self.outputs.fused_topic, p["output_min_rate"], p["max_stamp_age"], now_s
        )
        self.report.pairs.clear(now_s)
        self.sync = make_synchronizer(
            len(self.monitors), p["sync_queue_size"], p["sync_slop"], self._on_pair
        )
        compressed = p["input_transport"] == "compressed"
        overriding = QoSOverridingOptions.with_default_policies
        try:
            for index, role in enumerate(self.monitors):
                use_compressed = compressed and role != "mask"
                self._subs.append(
                    self.create_subscription(
                        CompressedImage if use_compressed else Image,
                        _TOPICS[role] + ("/compressed" if use_compressed else ""),
                        functools.partial(self._on_image, index, role),
                        qos(INPUT_QOS),
                        qos_overriding_options=overriding(),
                    )
                )
            self._subs.append(
                self.create_subscription(
                    CameraInfo,
                    "visible/camera_info",
                    self._on_camera_info,
                    qos(INPUT_QOS),
                    qos_overriding_options=overriding(),
                )
            )
        except (RuntimeError, InvalidQosOverridesError) as exc:
            self.report.config_error = f"cannot activate: {exc}"
            self.get_logger().error(self.report.config_error)
            self._destroy_subscriptions()
            return _FAILURE
        stage.restart_stream()  # no mask smoothing across an inactive gap
        self.alignment.reset(stage.preparer.homography)  # nor old alignment readings
        self._listening = False
        self._active = True
        self.report.config_error = ""
        self.get_logger().info(
            f"pairing {', '.join(s.topic_name for s in self._subs[:-1])} "
            f"({self.sync.name} ApproximateTime, "
            f"queue {p['sync_queue_size']}, slop {p['sync_slop']} s)"
        )
        self._outputs_wanted(announce=True)  # says whether it fuses or waits for a subscriber
        return super().on_activate(state)

    @logged
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_subscriptions()
        self.get_logger().info("inactive: not fusing (models stay loaded)")
        return super().on_deactivate(state)

    @logged
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: models freed")
        return _SUCCESS

    @logged
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_subscriptions()
        self._release()
        return _SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.on_shutdown(state)
        return _SUCCESS

    def _release(self) -> None:
        self.outputs.destroy()
        with self._stage_lock:
            self.stage = self.sources = None
        self.parameters.configured = {}
        self.monitors, self.output = {}, None
        self.report.fallback = ""
        self.report.hardware_id = NO_HARDWARE

    def _destroy_subscriptions(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []

    # --- executor thread: receive, validate, pair --------------------------------------------

    def _outputs_wanted(self, announce: bool = False) -> bool:
        """Whether some output has a subscriber; logs when that changes (or `announce`)."""
        listening = self.outputs.has_subscribers
        with self._listen_lock:
            changed, self._listening = listening != self._listening, listening
            if changed and listening:
                self._restart_stream = True  # no mask smoothing across the idle gap
        if changed or announce:
            self.get_logger().info(
                "a subscriber: decoding and fusing"
                if listening
                else "no subscriber on any output: not decoding or fusing until one subscribes"
            )
        return listening

    def _on_image(self, index: int, role: str, msg: Any) -> None:
        """Decode, check and pair one message; a bad one is counted and logged, never raised."""
        self.counts.received[role] += 1
        try:
            monitor = self.monitors[role]
            monitor.message(stamp_to_ns(msg.header.stamp) / 1e9, self._now_s())
            if not self._outputs_wanted():
                self.counts.idle += 1  # nobody listens: nothing to decode or fuse for
                return
            with self.stage.clock("decode") if self.stage else nullcontext():
                image, encoding = message_to_array(
                    msg,
                    name=f"{role} image",
                    max_pixels=self.parameters.configured["max_input_pixels"],
                )  # as `sosmaskfuse bag` decodes
            if role == "thermal":
                check_thermal_encoding(image, encoding)
                low, high = image.min(), image.max()
                monitor.frame(bool(low == high), float(low))
            self.sync.add(index, Frame(image, encoding, msg.header))
        except Exception as exc:  # a bad message (ImageDecodeError, a refused stamp) or worse
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.counts.bad[role] += 1
            if role in self.monitors:
                self.monitors[role].bad(reason)
            if self._throttle.allow((role, re.sub(r"\d+", "#", reason)[:60])):
                self.get_logger().warning(f"dropped a {role} message: {reason}")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        max_pixels = self.parameters.configured.get("max_input_pixels", 1 << 30)
        self.outputs.camera_info_received(msg, max_pixels)

    def _camera_info_refused(self, problem: str | None) -> None:
        """Report (or clear, with None) why camera_info is not published, on the visible input."""
        monitor = self.monitors.get("visible")
        if monitor is not None:
            monitor.extra = None if problem is None else (WARN, f"camera_info refused: {problem}")
        if problem and self._throttle.allow(("camera_info", re.sub(r"\d+", "#", problem)[:60])):
            self.get_logger().warning(f"camera_info refused: {problem}")

    def _on_pair(self, *frames: Frame) -> None:
        self.counts.pairs += 1
        self.report.pair_made()
        if not self.worker.offer(frames):
            self.counts.dropped += 1  # it replaced a pair the fusion thread had not taken

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    # --- worker thread: fuse and publish -----------------------------------------------------

    def _process(self, frames: tuple[Frame, ...]) -> None:
        thermal, visible = frames[0], frames[1]
        mask = frames[2] if len(frames) > 2 else None
        with self._stage_lock:
            stage = self.stage
            if stage is None or not self._active:
                return  # deactivated (or cleaned up) while the pair waited
            if self._restart_stream:
                self._restart_stream = False
                stage.restart_stream()
                self.alignment.reset(stage.preparer.homography)
            sizes = pair_sizes(thermal.image, visible.image)
            try:  # any failure of one pair is counted and reported, never raised
                self.cameras.before_pair(stage, sizes)
                homography = stage.preparer.homography  # what `prepared` is registered with
                prepared = stage.prepare(thermal, visible, mask)
                out = stage.fuse([prepared])[0]
            except Exception as exc:  # ValueError, RuntimeError, cv2.error, MemoryError, ...
                reason = self.report.pair_failed(exc)  # counted; the fusion status says why
                if self._throttle.allow(("fusion", type(exc).__name__)):
                    self.get_logger().warning(f"could not fuse a pair: {reason}")
                return
            warning = self.cameras.shape_warning(stage, sizes)
            if warning is not None and self.report.warn("geometry", warning):
                self.get_logger().warning(warning)
            if not self.context.ok() or not self._active:
                return  # shut down (Ctrl-C) or deactivated while fusing: nothing to publish
            self.outputs.publish(visible.header, out, sizes[1], stage.clock)
            self.counts.published += 1
            stamp = stamp_to_ns(visible.header.stamp)
            self.report.pair_published(stamp)
            if self.output is not None:
                self.output.published(stamp / 1e9, self._now_s())
            self.alignment.pair_fused(prepared, homography, sizes, self.counts.pairs)

    # --- reporting -----------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        listening = self._outputs_wanted() if self._active else True
        graph = self.get_node_names_and_namespaces()
        name, fqn = self.get_name(), self.get_fully_qualified_name()
        if self.report.warn("duplicate", name_clash(graph, name, self.get_namespace(), fqn)):
            self.get_logger().warning(self.report.duplicate)
        preset = self.parameters.configured.get("preset", "")
        running = running_values(self.stage, self.sources, self.sync, preset)
        checks = (self.monitors, self.output, self.alignment.summary(listening))
        self.diag_pub.publish(self.report.array(self.state, running, *checks, listening=listening))

    def _log_summary(self) -> None:
        self.get_logger().info(self.report.log_line(self.state))

    def destroy_node(self) -> None:
        self.worker.stop()
        self.alignment.stop()
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
        # ros2 launch's Ctrl-C is two SIGINTs: the second must not cut the fusion thread's stop
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
