"""Thermal images: 16-bit to 8-bit gain control, and the classical hot-object mask (no network)."""

from .agc import MODES as AGC_MODES
from .agc import ThermalAGC, stretch_to_uint8
from .hot_object_mask import ThermalHotObjectMasker, normalize_thermal, thermal_hot_object_mask
from .mask_config import ThermalMaskConfig

__all__ = [
    "AGC_MODES",
    "ThermalAGC",
    "ThermalHotObjectMasker",
    "ThermalMaskConfig",
    "normalize_thermal",
    "stretch_to_uint8",
    "thermal_hot_object_mask",
]
