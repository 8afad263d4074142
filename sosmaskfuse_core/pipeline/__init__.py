"""The fusion pipeline: pre/post-processing, strategies, devices, frame preparation, pair stage.

`FusionPipeline` fuses same-sized 8-bit thermal + visible images on one device (the modes of
`fusion_modes`, their strategies in `strategies`, the `imvf-contrast` mode's guard of the
thermal contrast in `contrast_guard`; the networks run by a `backends.Backend`);
`FramePreparer` turns camera frames into its inputs (gain control, registration, processing
size); `PairStage` is the one per-pair step the node, the bag tool and the folder job share;
`build_pipeline` / `build_stage` make them from checkpoint paths and settings values;
`SOSNetMasker` is the pipeline's SOS mask as a plain callable.
"""

from .backends import Backend, TorchBackend, choose_backend, make_backend
from .builder import (
    LiveSettings,
    ModelSources,
    Networks,
    build_pipeline,
    build_stage,
    describe_sources,
    frame_preparer,
    load_networks,
    pipeline_config,
)
from .contrast_guard import ContrastGuardConfig, guard_thermal_contrast, target_map
from .devices import autocast, check_precision, resolve_device
from .frames import FramePreparer, parse_homography, register_thermal
from .fusion_modes import FusionMode, fusion_mode
from .fusion_pipeline import OUTPUTS, FusionPipeline, FusionResult, MaskFilter, PipelineConfig
from .health import NonFiniteOutputError, UselessWeightsError, probe
from .mask_source import MASK_SOURCES, resolve_mask_source
from .pair_stage import HEADER_FROM, Frame, PairOutputs, PairStage, PreparedPair
from .sos_masker import SOSNetMasker
from .strategies import addition, imvf, spatial_channel_attention

__all__ = [
    "HEADER_FROM",
    "MASK_SOURCES",
    "OUTPUTS",
    "Backend",
    "ContrastGuardConfig",
    "Frame",
    "FramePreparer",
    "FusionMode",
    "FusionPipeline",
    "FusionResult",
    "LiveSettings",
    "MaskFilter",
    "ModelSources",
    "Networks",
    "NonFiniteOutputError",
    "PairOutputs",
    "PairStage",
    "PipelineConfig",
    "PreparedPair",
    "SOSNetMasker",
    "TorchBackend",
    "UselessWeightsError",
    "addition",
    "autocast",
    "build_pipeline",
    "build_stage",
    "guard_thermal_contrast",
    "check_precision",
    "choose_backend",
    "describe_sources",
    "frame_preparer",
    "fusion_mode",
    "imvf",
    "load_networks",
    "make_backend",
    "parse_homography",
    "pipeline_config",
    "probe",
    "register_thermal",
    "resolve_device",
    "resolve_mask_source",
    "spatial_channel_attention",
    "target_map",
]
