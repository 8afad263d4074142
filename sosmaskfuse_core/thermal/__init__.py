"""Thermal images: 16-bit to 8-bit gain control, the classical hot-object mask, mask smoothing.

`ThermalAGC` turns counts into gray levels, `ThermalHotObjectMasker` makes the classical mask
(no network), `MaskSmoother` smooths a video's masks over time (moving targets pass through).
"""

from .agc import MODES as AGC_MODES
from .agc import ThermalAGC, stretch_to_uint8
from .hot_object_mask import ThermalHotObjectMasker, normalize_thermal, thermal_hot_object_mask
from .mask_config import ThermalMaskConfig
from .temporal_mask import MaskSmoother, MaskSmootherConfig

__all__ = [
    "AGC_MODES",
    "MaskSmoother",
    "MaskSmootherConfig",
    "ThermalAGC",
    "ThermalHotObjectMasker",
    "ThermalMaskConfig",
    "normalize_thermal",
    "stretch_to_uint8",
    "thermal_hot_object_mask",
]
