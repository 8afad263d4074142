"""The fusion pipeline: pre/post-processing, strategies, devices, frame preparation, pair stage.

`FusionPipeline` fuses same-sized thermal + visible images on one device; `FramePreparer`
turns camera frames into its inputs; `PairStage` is the one per-pair step the node, the bag
tool and the folder job share; `build_pipeline` / `build_stage` make them from checkpoint
paths and settings values; `SOSNetMasker` is the pipeline's SOS mask as a plain callable.
"""

from .builder import ModelSources, build_pipeline, build_stage, frame_preparer, pipeline_config
from .devices import autocast, check_precision, resolve_device
from .frames import FramePreparer, parse_homography, register_thermal
from .fusion_pipeline import MASK_SOURCES, OUTPUTS, FusionPipeline, FusionResult, PipelineConfig
from .health import NonFiniteOutputError, probe
from .pair_stage import HEADER_FROM, Frame, PairOutputs, PairStage, PreparedPair
from .sos_masker import SOSNetMasker
from .strategies import addition, fuse_levels, imvf, spatial_channel_attention

__all__ = [
    "HEADER_FROM",
    "MASK_SOURCES",
    "OUTPUTS",
    "Frame",
    "FramePreparer",
    "FusionPipeline",
    "FusionResult",
    "ModelSources",
    "NonFiniteOutputError",
    "PairOutputs",
    "PairStage",
    "PipelineConfig",
    "PreparedPair",
    "SOSNetMasker",
    "addition",
    "autocast",
    "build_pipeline",
    "build_stage",
    "check_precision",
    "frame_preparer",
    "fuse_levels",
    "imvf",
    "parse_homography",
    "pipeline_config",
    "probe",
    "register_thermal",
    "resolve_device",
    "spatial_channel_attention",
]
