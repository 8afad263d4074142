"""The one table of user settings: name, type, default, range or choices, live or not, description.

Every setting of the fusion node and of the offline jobs is declared here once: the ROS
parameters (`sosmaskfuse_ros.params`), the `fuse`/`bag` options (`commands.options`),
`config/sosmaskfuse.yaml` (`settings.yaml_file`), the launch arguments, the settings ->
pipeline builder (`pipeline.builder`) and the library's config classes (`PipelineConfig`,
`ThermalAGC`) all read it. Plain Python (no torch, no ROS): launch files and --help stay quick.
"""

from __future__ import annotations

from typing import Any

from .presets import PRESET_NAMES, PRESETS, apply_preset, check_presets, preset_text  # noqa: F401
from .setting import (  # noqa: F401  (re-exported: the table is where callers look them up)
    BAG,
    EVERYWHERE,
    FUSE,
    GROUPS,
    KINDS,
    LIVE_STREAMS,
    NODE,
    Setting,
)
from .stream_settings import STREAM_SETTINGS
from .vocabulary import (  # noqa: F401  (re-exported, as above)
    AGC_MODES,
    BACKENDS,
    FUSION_MODES,
    MASK_SOURCES,
    OUTPUT_SCALINGS,
    PRECISIONS,
    TRANSPORTS,
)

SETTINGS: tuple[Setting, ...] = (  # the fusion's groups, then the streams' (stream_settings)
    Setting(
        "preset",
        "str",
        "none",
        f"values for other settings ({preset_text()}); values you give (node: not defaults) win",
        "preset",
        choices=PRESET_NAMES,
    ),
    # models (start-up)
    Setting(
        "autoencoder_weights",
        "str",
        "auto",
        'IMV-F autoencoder: "auto" (the shipped full model on a GPU, the shipped lite model on a '
        'CPU), "full", "lite", or a checkpoint file (authors\' or ours)',
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
    Setting(
        "device",
        "str",
        "auto",
        "auto, cpu, cuda or cuda:N",
        "models",
        pattern=r"(?i)auto|cpu|cuda(:[0-9]+)?",
        pattern_text="auto, cpu, cuda or cuda:N",
    ),
    Setting(
        "precision",
        "str",
        "auto",
        "network precision: auto (bf16 on CPUs that compute it "
        "natively, AVX512-BF16 or AMX; else fp32), fp32, fp16 (CUDA only) or bf16",
        "models",
        choices=("auto", *PRECISIONS),
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
        "sosnet (SOS network), thermal (classical hot-object mask, no network), ensemble "
        "(the mean of the two), topic (masks on the 'mask' topic), auto (the shipped network: "
        "ensemble; weights you give: sosnet; no network: thermal)",
        "models",
        choices=MASK_SOURCES,
    ),
    Setting(
        "cpu_threads",
        "int",
        0,
        "torch's CPU threads (0 = torch's default, one per core): leave cores to the others",
        "models",
        range=(0, 1024),
    ),
    Setting(
        "fusion_memory_mb",
        "int",
        0,
        "memory the autoencoder pass may use (MiB): a larger frame is fused in bands with the "
        "same output; 0 = auto (512 on the CPU, a quarter of the GPU's memory)",
        "models",
        range=(0, 1 << 20),
    ),
    Setting(
        "allow_fallback",
        "bool",
        True,
        "a device, precision, backend or weights that cannot run: run the nearest that can "
        "(CPU, fp32, shipped weights) and say so; false: configure fails with the reason",
        "models",
        scopes=frozenset({NODE}),
    ),
    # fusion (live)
    Setting(
        "fusion_mode",
        "str",
        "imvf-contrast",
        "imvf-contrast (IMV-F whose thermal targets keep their contrast and polarity, mask or "
        "not, whatever the cameras' gains; docs/thermal_contrast.md), imvf (the paper, exactly), "
        "or the mask-free baselines sca and addition",
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
        "target_contrast",
        "float",
        1.0,
        "imvf-contrast: share of each thermal target's (gain-normalised) contrast the fused image "
        "keeps at least, with the thermal polarity, wherever the mask or what it is made of "
        "sees a target (0 = no guard: IMV-F as is)",
        "fusion",
        range=(0.0, 4.0),
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
        "mask_input_stretch",
        "bool",
        True,
        "stretch the thermal frame's robust range (percentiles 0.5 to 99.5, gain 1-4x) before "
        "the SOS network, so that its mask does not depend on the camera's gain and offset (on "
        "dim 8-bit thermal the network otherwise loses the targets); false = the paper's input "
        "(--no-mask-input-stretch)",
        "fusion",
        live=True,
        flag="--no-mask-input-stretch",
    ),
    Setting(
        "mask_smoothing",
        "float",
        0.6,
        "video: weight of the previous frames' mask where the thermal image did not change "
        "(an EMA over ~1/(1 - x) frames; moving targets follow at once; reset on a scene cut "
        "or a size change; 0 = off). Masks given with each pair are used as given. fuse "
        "defaults to 0: a folder of stills is not a video (set it for a folder of frames)",
        "fusion",
        range=(0.0, 0.95),
        live=True,
        scope_defaults=((FUSE, 0.0),),
    ),
    Setting(
        "output_scaling",
        "str",
        "clip",
        "clip (the decoder's gray levels: no flicker between frames; the video default) or "
        "minmax (the paper's per-frame stretch, which makes the fused video change ~1.9x as "
        "much as its inputs; fuse's default for stills)",
        "fusion",
        choices=OUTPUT_SCALINGS,
        live=True,
        scope_defaults=((FUSE, "minmax"),),
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
    # processing size (start-up)
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
    # registration (live) and its check (node)
    Setting(
        "homography",
        "floats",
        None,
        "row-major 3x3 thermal pixel -> visible pixel (sosmaskfuse calibrate writes it); "
        "unset = resize the thermal image to the visible size",
        "registration",
        length=9,
        live=True,
    ),
    Setting(
        "alignment_check_every",
        "int",
        5,
        "once every N thermal/visible pairs, measure "
        "how far the registered thermal frame sits from the visible one on the next pair "
        "fused, off the fusion thread (the 'alignment' diagnostics status; 0 = off)",
        "registration",
        range=(0, 100000),
        live=True,
        scopes=frozenset({NODE}),
    ),
    Setting(
        "alignment_max_shift",
        "float",
        8.0,
        "the 'alignment' status is WARN while the "
        "median of its last readings is further than this from aligned (visible camera "
        "pixels)",
        "registration",
        range=(0.5, 10000.0),
        live=True,
        scopes=frozenset({NODE}),
    ),
    # thermal gain control for 16-bit counts (live; fuse: 16-bit thermal files)
    Setting(
        "thermal_agc",
        "str",
        "percentile",
        "16-bit thermal to 8 bit: minmax, percentile or fixed",
        "agc",
        choices=AGC_MODES,
        live=True,
    ),
    Setting(
        "agc_low_percent",
        "float",
        1.0,
        "percentile mode: count mapped to black",
        "agc",
        range=(0.0, 100.0),
        live=True,
    ),
    Setting(
        "agc_high_percent",
        "float",
        99.0,
        "percentile mode: count mapped to white",
        "agc",
        range=(0.0, 100.0),
        live=True,
    ),
    Setting(
        "agc_min",
        "float",
        0.0,
        "fixed mode: count mapped to black",
        "agc",
        live=True,
    ),
    Setting(
        "agc_max",
        "float",
        65535.0,
        "fixed mode: count mapped to white",
        "agc",
        live=True,
    ),
) + STREAM_SETTINGS


def by_name(name: str) -> Setting:
    """The setting called `name` (KeyError naming it if there is none)."""
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    raise KeyError(f"no setting {name!r}")


def is_setting(name: str) -> bool:
    """Whether `name` is a setting of the table."""
    return any(setting.name == name for setting in SETTINGS)


def default(name: str, scope: str = NODE) -> Any:
    """The default value of a setting (in one front end: some differ, e.g. mask_smoothing)."""
    return by_name(name).default_in(scope)


def for_scope(scope: str) -> tuple[Setting, ...]:
    """The settings that apply to one front end (`node`, `bag` or `fuse`), in table order."""
    return tuple(s for s in SETTINGS if scope in s.scopes)


def defaults(scope: str = NODE) -> dict[str, Any]:
    """Name -> default of every setting of a front end."""
    return {s.name: s.default_in(scope) for s in for_scope(scope)}


def check_values(values: dict[str, Any]) -> dict[str, Any]:
    """Validate a name -> value mapping against the table (ValueError for the first bad one)."""
    for name, value in values.items():
        by_name(name).check(value)
    if bool(values.get("process_width")) != bool(values.get("process_height")):
        raise ValueError("process_width and process_height go together: set both, or neither")
    low, high = values.get("input_min_rate"), values.get("input_max_rate")
    if low is not None and high is not None and low >= high:
        raise ValueError(f"input_min_rate ({low}) must be below input_max_rate ({high})")
    return values


check_presets(by_name)
