"""The fusion pipeline: pre/post-processing, strategies, devices, frame preparation, pair stage.

`FusionPipeline` fuses same-sized thermal + visible images on one device (the IMV-F strategies
in `strategies`, the `imvf-contrast` mode's carry of the thermal contrast in
`thermal_contrast`); `FramePreparer`
turns camera frames into its inputs; `PairStage` is the one per-pair step the node, the bag
tool and the folder job share; `build_pipeline` / `build_stage` make them from checkpoint
paths and settings values; `SOSNetMasker` is the pipeline's SOS mask as a plain callable.
"""

from .builder import ModelSources, build_pipeline, build_stage, frame_preparer, pipeline_config
from .devices import autocast, check_precision, resolve_device
from .frames import FramePreparer, parse_homography, register_thermal
from .fusion_pipeline import (
    MASK_SOURCES,
    OUTPUTS,
    FusionPipeline,
    FusionResult,
    MaskFilter,
    PipelineConfig,
)
from .health import NonFiniteOutputError, probe
from .pair_stage import HEADER_FROM, Frame, PairOutputs, PairStage, PreparedPair
from .sos_masker import SOSNetMasker
from .strategies import addition, fuse_levels, imvf, spatial_channel_attention
from .thermal_contrast import (
    ContrastCarryConfig,
    ThermalStretch,
    carry_thermal_contrast,
    feature_strategy,
    local_background,
    minmax_like,
)

__all__ = [
    "HEADER_FROM",
    "MASK_SOURCES",
    "OUTPUTS",
    "ContrastCarryConfig",
    "Frame",
    "FramePreparer",
    "FusionPipeline",
    "FusionResult",
    "MaskFilter",
    "ModelSources",
    "NonFiniteOutputError",
    "PairOutputs",
    "PairStage",
    "PipelineConfig",
    "PreparedPair",
    "SOSNetMasker",
    "ThermalStretch",
    "addition",
    "autocast",
    "build_pipeline",
    "build_stage",
    "carry_thermal_contrast",
    "check_precision",
    "frame_preparer",
    "feature_strategy",
    "fuse_levels",
    "imvf",
    "local_background",
    "minmax_like",
    "parse_homography",
    "pipeline_config",
    "probe",
    "register_thermal",
    "resolve_device",
    "spatial_channel_attention",
]
