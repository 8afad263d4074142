"""The one table of user settings: name, type, default, range or choices, live or not, description.

Every setting of the fusion node and of the offline jobs is declared here once. The ROS
parameter descriptors (`sosmaskfuse_ros.params`), the command-line options of `fuse` and
`bag` (`sosmaskfuse_core.commands.options`), `config/sosmaskfuse.yaml`
(`sosmaskfuse_core.settings.yaml_file`), the launch arguments and the settings -> pipeline
builder (`sosmaskfuse_core.settings.build`) all read it; so do the library's own config
classes for their defaults and checks (`PipelineConfig`, `ThermalAGC`).

This module is plain Python (no torch, no ROS), so launch files and `--help` stay quick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# --- vocabularies --------------------------------------------------------------------------------

FUSION_MODES = ("imvf", "sca", "addition")
OUTPUT_SCALINGS = ("minmax", "clip")
PRECISIONS = ("fp32", "fp16", "bf16")
#: What runs the networks: PyTorch, ONNX Runtime (the optional `onnx` extra; CPU, fp32), or
#: `auto` (ONNX Runtime where it is installed and the run is fp32 on the CPU, else PyTorch).
BACKENDS = ("torch", "onnxruntime", "auto")
#: Where the mask comes from: the SOS network, the classical thermal mask, masks supplied with
#: each pair (the node's `mask` topic, a bag's mask topic, `fuse --mask-dir`), or `auto`
#: (the SOS network when weights are given or shipped, else the classical mask).
MASK_SOURCES = ("auto", "sosnet", "thermal", "topic")
AGC_MODES = ("minmax", "percentile", "fixed")
TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")

#: Where a setting applies: the ROS node, `sosmaskfuse bag`, `sosmaskfuse fuse`.
NODE, BAG, FUSE = "node", "bag", "fuse"
EVERYWHERE = frozenset({NODE, BAG, FUSE})
LIVE_STREAMS = frozenset({NODE, BAG})  # settings about camera streams (16-bit counts, pairing)

#: The kinds a setting can have; `optional_float` is a number or unset (None), `floats` a list.
KINDS = ("str", "bool", "int", "float", "optional_float", "floats")

#: Groups in the order they are listed (YAML sections, --help groups), each with its title.
GROUPS = {
    "models": "models",
    "fusion": "fusion",
    "geometry": "processing size and registration",
    "agc": "thermal gain control for 16-bit counts",
    "inputs": "inputs",
    "reporting": "reporting",
    # the synthetic_cameras node's own settings (sosmaskfuse_ros)
    "synthetic": "synthetic cameras",
}


@dataclass(frozen=True)
class Setting:
    """One setting. `check` is the validation every front end applies."""

    name: str
    kind: str
    default: Any
    description: str
    group: str
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | None = None  # inclusive bounds
    open_range: bool = False  # the bounds themselves are excluded
    length: int | None = None  # for `floats`: the number of values
    live: bool = False  # may change while the node runs
    scopes: frozenset[str] = EVERYWHERE
    flag: str | None = None  # command-line option, when it is not --name-with-dashes
    aliases: tuple[str, ...] = ()  # further command-line spellings kept for compatibility

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.group not in GROUPS:
            raise ValueError(
                f"setting {self.name}: group {self.group!r} is not one of {tuple(GROUPS)}"
            )
        if self.default is not None:
            self.check(self.default)

    @property
    def option(self) -> str:
        """The command-line option: `flag`, or the name with dashes."""
        return self.flag or "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """`value` as this setting holds it, then checked.

        For `optional_float`, "" (how a ROS parameter or YAML file says "unset") is None and a
        numeric string is its number.
        """
        if self.kind == "optional_float":
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise ValueError(
                        f"{self.name}: {value!r} is not a number (empty = unset)"
                    ) from None
            elif isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
        return self.check(value)

    def check(self, value: Any) -> Any:
        """`value` if valid for this setting, else ValueError naming the setting and the rule."""
        if value is None:
            if self.kind in ("optional_float", "floats"):
                return None
            raise ValueError(f"{self.name}: a value is required")
        if self.kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"{self.name}: expected a string, got {value!r}")
            if self.choices and value not in self.choices:
                raise ValueError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name}: expected true or false, got {value!r}")
            return value
        if self.kind == "floats":
            values = list(value)
            if self.length is not None and len(values) != self.length:
                raise ValueError(f"{self.name}: expected {self.length} numbers, got {len(values)}")
            for v in values:
                self._check_number(v)
            return value
        return self._check_number(value)

    def _check_number(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.name}: expected a number, got {value!r}")
        if self.kind == "int" and not isinstance(value, int):
            raise ValueError(f"{self.name}: expected an integer, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: {value} is not a finite number")
        if self.range is not None:
            lo, hi = self.range
            inside = lo < value < hi if self.open_range else lo <= value <= hi
            if not inside:
                brackets = "()" if self.open_range else "[]"
                raise ValueError(
                    f"{self.name}: {value} is outside {brackets[0]}{lo:g}, {hi:g}{brackets[1]}"
                )
        return value


SETTINGS: tuple[Setting, ...] = (
    # models (start-up)
    Setting(
        "autoencoder_weights",
        "str",
        "",
        'IMV-F autoencoder checkpoint (authors\' or ours); "" = shipped default, '
        '"lite" = the shipped lite model (fewer channels, for CPUs and small GPUs)',
        "models",
        flag="--autoencoder",
    ),
    Setting(
        "sosnet_weights",
        "str",
        "",
        'SOS network checkpoint (authors\' or ours); "" = shipped default if any',
        "models",
        flag="--sosnet",
    ),
    Setting("device", "str", "auto", "auto, cpu, cuda or cuda:N", "models"),
    Setting(
        "precision",
        "str",
        "fp32",
        "network precision: fp32, fp16 (CUDA only) or bf16",
        "models",
        choices=PRECISIONS,
    ),
    Setting(
        "backend",
        "str",
        "torch",
        "what runs the networks: torch, onnxruntime (CPU fp32; pip extra 'onnx') or auto "
        "(onnxruntime when installed and the run is CPU fp32, else torch)",
        "models",
        choices=BACKENDS,
    ),
    Setting(
        "mask_source",
        "str",
        "auto",
        "sosnet (SOS network), thermal (classical hot-object mask, no "
        "network), topic (masks on the 'mask' topic), "
        "auto (sosnet if weights exist, else thermal)",
        "models",
        choices=MASK_SOURCES,
    ),
    # fusion (live)
    Setting(
        "fusion_mode",
        "str",
        "imvf",
        "imvf (the paper), or the mask-free baselines sca and addition",
        "fusion",
        choices=FUSION_MODES,
        live=True,
    ),
    Setting(
        "mu",
        "float",
        0.8,
        "IMV-F weight of the thermal foreground features",
        "fusion",
        range=(0.0, 1.0),
        live=True,
    ),
    Setting(
        "mask_threshold",
        "optional_float",
        None,
        "unset = soft mask (as the paper's code), or a probability in (0, 1) that binarises it",
        "fusion",
        range=(0.0, 1.0),
        open_range=True,
        live=True,
    ),
    Setting(
        "output_scaling",
        "str",
        "minmax",
        "minmax (the paper's per-frame stretch) or clip (the "
        "decoder's gray levels: no flicker between frames)",
        "fusion",
        choices=OUTPUT_SCALINGS,
        live=True,
    ),
    Setting(
        "color_output",
        "bool",
        False,
        "fused image as bgr8: the fused luma with the visible image's chroma",
        "fusion",
        live=True,
        aliases=("--color",),
    ),
    Setting(
        "publish_mask",
        "bool",
        True,
        "publish the mask on sos_mask (bag: write it; --no-mask)",
        "fusion",
        live=True,
        scopes=frozenset({NODE, BAG}),
        flag="--no-mask",
    ),
    # processing size and registration (start-up)
    Setting(
        "process_width",
        "int",
        0,
        "fuse at this width (0 = the visible image's)",
        "geometry",
        range=(0, 8192),
    ),
    Setting(
        "process_height",
        "int",
        0,
        "fuse at this height (0 = the visible image's)",
        "geometry",
        range=(0, 8192),
    ),
    Setting(
        "homography",
        "floats",
        None,
        "row-major 3x3 thermal pixel -> visible pixel; unset = resize "
        "the thermal image to the visible size",
        "geometry",
        length=9,
        scopes=LIVE_STREAMS,
    ),
    # thermal gain control for 16-bit counts (live)
    Setting(
        "thermal_agc",
        "str",
        "percentile",
        "16-bit thermal to 8 bit: minmax, percentile or fixed",
        "agc",
        choices=AGC_MODES,
        live=True,
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "agc_low_percent",
        "float",
        1.0,
        "percentile mode: count mapped to black",
        "agc",
        range=(0.0, 100.0),
        live=True,
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "agc_high_percent",
        "float",
        99.0,
        "percentile mode: count mapped to white",
        "agc",
        range=(0.0, 100.0),
        live=True,
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "agc_min",
        "float",
        0.0,
        "fixed mode: count mapped to black",
        "agc",
        live=True,
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "agc_max",
        "float",
        65535.0,
        "fixed mode: count mapped to white",
        "agc",
        live=True,
        scopes=LIVE_STREAMS,
    ),
    # inputs (start-up)
    Setting(
        "input_transport",
        "str",
        "raw",
        "raw (sensor_msgs/Image on <topic>) or compressed (CompressedImage on <topic>/compressed)",
        "inputs",
        choices=TRANSPORTS,
        scopes=frozenset({NODE}),
    ),
    Setting(
        "sync_queue_size",
        "int",
        10,
        "ApproximateTime queue size per input",
        "inputs",
        range=(1, 1000),
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "sync_slop",
        "float",
        0.05,
        "largest stamp difference (s) of a thermal/visible pair",
        "inputs",
        range=(0.0, 10.0),
        scopes=LIVE_STREAMS,
    ),
    Setting(
        "input_reliability",
        "str",
        "best_effort",
        "input QoS reliability: best_effort (REP-2003 sensor data) or reliable",
        "inputs",
        choices=RELIABILITIES,
        scopes=frozenset({NODE}),
    ),
    Setting(
        "output_reliability",
        "str",
        "reliable",
        "output QoS reliability: best_effort or reliable",
        "inputs",
        choices=RELIABILITIES,
        scopes=frozenset({NODE}),
    ),
    Setting(
        "qos_depth",
        "int",
        5,
        "history depth of inputs and outputs",
        "inputs",
        range=(1, 1000),
        scopes=frozenset({NODE}),
    ),
    # reporting (start-up)
    Setting(
        "diagnostics_period",
        "float",
        1.0,
        "seconds between /diagnostics messages",
        "reporting",
        range=(0.05, 3600.0),
        scopes=frozenset({NODE}),
    ),
    Setting(
        "log_period",
        "float",
        10.0,
        "seconds between one-line summaries in the log (0 = never)",
        "reporting",
        range=(0.0, 86400.0),
        scopes=frozenset({NODE}),
    ),
)


def by_name(name: str) -> Setting:
    """The setting called `name` (KeyError naming it if there is none)."""
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    raise KeyError(f"no setting {name!r}")


def default(name: str) -> Any:
    """The default value of a setting."""
    return by_name(name).default


def for_scope(scope: str) -> tuple[Setting, ...]:
    """The settings that apply to one front end (`node`, `bag` or `fuse`), in table order."""
    return tuple(s for s in SETTINGS if scope in s.scopes)


def defaults(scope: str = NODE) -> dict[str, Any]:
    """Name -> default of every setting of a front end."""
    return {s.name: s.default for s in for_scope(scope)}


def check_values(values: dict[str, Any]) -> dict[str, Any]:
    """Validate a name -> value mapping against the table (ValueError for the first bad one)."""
    for name, value in values.items():
        by_name(name).check(value)
    if bool(values.get("process_width")) != bool(values.get("process_height")):
        raise ValueError("process_width and process_height go together: set both, or neither")
    return values
