"""The fusion node's parameters: each declared once, with its descriptor, range and default.

`declare_all` declares the table on a node and returns the values; `config/sosmaskfuse.yaml`
lists the same parameters with comments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from sosmaskfuse_core.fusion import FUSION_MODES
from sosmaskfuse_core.pipeline import OUTPUT_SCALINGS
from sosmaskfuse_core.thermal_agc import MODES as AGC_MODES

MASK_SOURCES = ("auto", "sosnet", "thermal", "topic")
RELIABILITY = ("best_effort", "reliable")
TRANSPORTS = ("raw", "compressed")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Param:
    name: str
    default: Any  # a value, or a Parameter.Type for "no default"
    description: str
    read_only: bool = True
    choices: tuple[str, ...] = ()
    float_range: tuple[float, float] | None = None
    int_range: tuple[int, int] | None = None
    dynamic_typing: bool = False

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(name=self.name, description=self.description, read_only=self.read_only,
                                dynamic_typing=self.dynamic_typing)
        if self.choices:
            d.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.float_range:
            d.floating_point_range = [FloatingPointRange(from_value=float(self.float_range[0]),
                                                         to_value=float(self.float_range[1]), step=0.0)]
        if self.int_range:
            d.integer_range = [IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1], step=1)]
        return d


PARAMETERS: tuple[Param, ...] = (
    # models
    Param("autoencoder_weights", "", "IMV-F autoencoder checkpoint (authors' or ours); empty = shipped default"),
    Param("sosnet_weights", "", "SOS network checkpoint (authors' or ours); empty = shipped default if any"),
    Param("device", "auto", "auto, cpu, cuda or cuda:N"),
    Param("precision", "fp32", "network precision (fp16 needs CUDA)", choices=PRECISIONS),
    Param("mask_source", "auto", "sosnet: SOS network; thermal: classical hot-object mask (no network); "
          "topic: masks on the 'mask' topic; auto: the SOS network if weights exist, else thermal",
          choices=MASK_SOURCES),
    # fusion (live)
    Param("fusion_mode", "imvf", "imvf (the paper) or the mask-free baselines addition and sca",
          read_only=False, choices=FUSION_MODES),
    Param("mu", 0.8, "IMV-F weight of the thermal foreground features", read_only=False, float_range=(0.0, 1.0)),
    Param("mask_threshold", "", "empty = soft mask (as the paper's code); a number in (0, 1) binarises the mask",
          read_only=False, dynamic_typing=True),
    Param("output_scaling", "minmax", "minmax: the paper's per-frame stretch; clip: the decoder's gray levels "
          "(no flicker between frames)", read_only=False, choices=OUTPUT_SCALINGS),
    Param("color_output", False, "publish bgr8: fused luma with the visible image's chroma", read_only=False),
    Param("publish_mask", True, "publish the mask on sos_mask", read_only=False),
    # processing size and registration
    Param("process_width", 0, "fuse at this width (0 = the visible image's)", int_range=(0, 8192)),
    Param("process_height", 0, "fuse at this height (0 = the visible image's)", int_range=(0, 8192)),
    Param("homography", Parameter.Type.DOUBLE_ARRAY, "3x3 row-major thermal pixel -> visible pixel; "
          "unset = resize the thermal image to the visible size"),
    # thermal gain control for 16-bit counts (live)
    Param("thermal_agc", "percentile", "16-bit thermal to 8 bit: minmax, percentile or fixed",
          read_only=False, choices=AGC_MODES),
    Param("agc_low_percent", 1.0, "percentile mode: count mapped to black", read_only=False,
          float_range=(0.0, 100.0)),
    Param("agc_high_percent", 99.0, "percentile mode: count mapped to white", read_only=False,
          float_range=(0.0, 100.0)),
    Param("agc_min", 0.0, "fixed mode: count mapped to black", read_only=False),
    Param("agc_max", 65535.0, "fixed mode: count mapped to white", read_only=False),
    # inputs
    Param("input_transport", "raw", "raw: sensor_msgs/Image on <topic>; compressed: CompressedImage on "
          "<topic>/compressed", choices=TRANSPORTS),
    Param("sync_queue_size", 10, "ApproximateTime queue size per input", int_range=(1, 1000)),
    Param("sync_slop", 0.05, "largest stamp difference (s) of a thermal/visible pair", float_range=(0.0, 10.0)),
    Param("input_reliability", "best_effort", "input QoS reliability (REP-2003 sensor data: best_effort)",
          choices=RELIABILITY),
    Param("output_reliability", "reliable", "output QoS reliability", choices=RELIABILITY),
    Param("qos_depth", 5, "history depth of inputs and outputs", int_range=(1, 1000)),
    # reporting
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", float_range=(0.05, 3600.0)),
    Param("log_period", 10.0, "seconds between one-line summaries in the log (0 = never)",
          float_range=(0.0, 86400.0)),
)
BY_NAME = {p.name: p for p in PARAMETERS}


def declare_all(node: Node) -> dict[str, Any]:
    """Declare every parameter on `node`; returns name -> value (None for an unset typed parameter)."""
    values = {}
    for p in PARAMETERS:
        param = node.declare_parameter(p.name, p.default, p.descriptor())
        values[p.name] = param.value
    return values


def parse_mask_threshold(value: Any) -> float | None:
    """'' or None -> soft mask; a number (or a numeric string) in (0, 1) -> that threshold."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("mask_threshold: expected a number in (0, 1) or empty, got a bool")
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"mask_threshold: {value!r} is not a number (empty = soft mask)") from None
    if not 0.0 < t < 1.0:
        raise ValueError(f"mask_threshold: {t} is outside (0, 1) (empty = soft mask)")
    return t
