"""Settings: the one table of user-facing settings, and the node's YAML file generated from it.

Plain Python (no torch, no ROS): the library's config classes, the ROS node, the command line
and the launch files all read `table.SETTINGS`.
"""

from .table import (
    AGC_MODES,
    BACKENDS,
    BAG,
    FUSE,
    FUSION_MODES,
    GROUPS,
    MASK_SOURCES,
    NODE,
    OUTPUT_SCALINGS,
    PRECISIONS,
    PRESET_NAMES,
    PRESETS,
    SETTINGS,
    TRANSPORTS,
    Setting,
    apply_preset,
    by_name,
    check_values,
    default,
    defaults,
    for_scope,
)
from .yaml_file import render as render_yaml

__all__ = [
    "AGC_MODES",
    "BACKENDS",
    "BAG",
    "FUSE",
    "FUSION_MODES",
    "GROUPS",
    "MASK_SOURCES",
    "NODE",
    "OUTPUT_SCALINGS",
    "PRECISIONS",
    "PRESETS",
    "PRESET_NAMES",
    "SETTINGS",
    "TRANSPORTS",
    "Setting",
    "apply_preset",
    "by_name",
    "check_values",
    "default",
    "defaults",
    "for_scope",
    "render_yaml",
]
