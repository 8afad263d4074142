"""`config/sosmaskfuse.yaml`, written from the settings table (the file is generated, not edited).

    python -m sosmaskfuse_core.settings > config/sosmaskfuse.yaml

`test/test_settings.py` regenerates the text and compares it with the file in the repository.
"""

from __future__ import annotations

import textwrap

from . import table

HEADER = """\
# Parameters of the SOSMaskFuse fusion node (sosmaskfuse_node), with their defaults.
# Generated from sosmaskfuse_core/settings/table.py: python -m sosmaskfuse_core.settings
# `/**` applies them to the node whatever its name or namespace; pass this file to that node only.
#   ros2 run sosmaskfuse_ros sosmaskfuse_node --ros-args --params-file sosmaskfuse.yaml
#   ros2 launch sosmaskfuse_ros sosmaskfuse.launch.py params_file:=sosmaskfuse.yaml
# "live" parameters can be changed while the node runs (ros2 param set /sosmaskfuse mu 0.5);
# "start-up" ones can be set while the node is unconfigured, and configure reads them (fix a bad
# value with ros2 param set, then ros2 lifecycle set /sosmaskfuse configure: no restart).
# preset: paper sets the settings it names unless you give them a value other than their default.
# The launch files' arguments device, mask_source, autoencoder_weights, sosnet_weights, preset and
# autostart override the values below when they are given.
# QoS: inputs are best effort, outputs reliable, keep last 5 (REP-2003). Change them per topic with
# rclpy's read-only QoS override parameters (fully qualified topic names; history, depth,
# reliability), for example under ros__parameters:
#   qos_overrides:
#     /camera/thermal/image_raw:
#       subscription:
#         reliability: reliable
#         depth: 10
/**:
  ros__parameters:
"""
_INDENT = " " * 4
_COMMENT_COLUMN = 35  # where the comments start, counted from the indent
_WIDTH = 110


def yaml_value(setting: table.Setting) -> str:
    """The setting's default as YAML text (unset optional numbers are "", unset lists [])."""
    value = setting.default
    if setting.kind == "floats":
        return "[" + ", ".join(repr(float(v)) for v in (value or ())) + "]"
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return (
            value if value and value.replace("_", "").replace(":", "").isalnum() else f'"{value}"'
        )
    return str(value)


def kind_text(setting: table.Setting) -> str:
    """`double in [0, 1]`, `string`, `double[9]`, ...: the type as the comment states it."""
    names = {
        "str": "string",
        "bool": "bool",
        "int": "int",
        "float": "double",
        "optional_float": "double",
    }
    if setting.kind == "floats":
        return f"double[{setting.length}]" if setting.length else "double[]"
    text = names[setting.kind]
    if setting.range is not None and setting.kind != "optional_float":
        text += f" in {setting.range_text}"
    return text


def _entry(setting: table.Setting) -> list[str]:
    key = f"{setting.name}: {yaml_value(setting)}"
    comment = f"{kind_text(setting)}: {setting.description}"
    if setting.kind == "optional_float":
        comment = f'"" or {kind_text(setting)}: {setting.description}'
    elif setting.kind == "floats" and setting.default is None:
        comment = f"[] or {kind_text(setting)}: {setting.description}"
    width = _WIDTH - len(_INDENT) - _COMMENT_COLUMN - 2
    lines = textwrap.wrap(comment, width) or [""]
    pad = " " * _COMMENT_COLUMN
    first = _INDENT + key.ljust(_COMMENT_COLUMN - 1) + " # " + lines[0]
    return [first] + [_INDENT + pad + "#   " + line for line in lines[1:]]


def section_liveness(settings: list[table.Setting]) -> str:
    """`live` or `start-up` for a group; its settings must agree."""
    kinds = {s.live for s in settings}
    if len(kinds) != 1:
        raise ValueError(f"group of {[s.name for s in settings]} mixes live and start-up settings")
    return "live" if kinds.pop() else "start-up"


def render(scope: str = table.NODE) -> str:
    """The YAML parameter file of the node: every node setting, with its default and a comment."""
    settings = table.for_scope(scope)
    out = [HEADER.rstrip("\n")]
    for group, title in table.GROUPS.items():
        members = [s for s in settings if s.group == group]
        if not members:
            continue
        out.append("")
        out.append(f"{_INDENT}# --- {title} ({section_liveness(members)}) ---")
        for setting in members:
            out.extend(_entry(setting))
    return "\n".join(out) + "\n"
