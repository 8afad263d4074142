"""Launch arguments for node settings: defaults, choices and descriptions from the settings table.

    DeclareLaunchArgument("device", **setting_argument("device"))
    parameters=[params_file, given_overrides(context.launch_configurations, OVERRIDES)]

An argument left empty (its default) is not given: the parameter file's value stands; an
argument given on the command line (`device:=cuda`) overrides that one key of the file.
`given_overrides` turns the given ones into typed parameter values. Plain data (no `launch`
import), so launch files stay declarative and the table stays the one place a setting is
described.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sosmaskfuse_core.settings import table

#: The node settings the launch files offer as arguments (they override `params_file`).
OVERRIDES = (
    "preset",
    "device",
    "mask_source",
    "autoencoder_weights",
    "sosnet_weights",
    "autostart",
)
#: Launch arguments of ROS parameters that are not settings of the table.
ROS_BOOLS = ("use_sim_time",)


def launch_text(value: Any) -> str:
    """A value as launch writes it (`true`/`false`, numbers as text, "" for unset)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def setting_argument(name: str, default: Any = None) -> dict[str, Any]:
    """`default_value`, `description` and (for choices) `choices` of a setting's launch argument.

    Without `default` the argument is empty unless given, and the parameter file's value
    stands; a `default` (e.g. the demo's device:=cpu) is always applied.
    """
    setting = table.by_name(name)
    given = default is not None
    value = setting.check(default) if given else None
    description = setting.description
    if not given:
        description += (
            f" (empty: the params_file's value; the node's default is "
            f"{launch_text(setting.default) or '(empty)'})"
        )
    kwargs: dict[str, Any] = {"default_value": launch_text(value), "description": description}
    choices = list(setting.choices) or (["true", "false"] if setting.kind == "bool" else [])
    if choices:
        kwargs["choices"] = choices if given else ["", *choices]
    return kwargs


def parse_text(name: str, text: str) -> Any:
    """A launch argument's text as the parameter's type (ValueError names a bad one)."""
    kind = "bool" if name in ROS_BOOLS else table.by_name(name).kind
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{name}:={text!r}: expected true or false")
        value: Any = lowered == "true"
    elif kind == "int":
        value = int(text)
    elif kind in ("float", "optional_float"):
        value = float(text)
    else:
        value = text
    return value if name in ROS_BOOLS else table.by_name(name).check(value)


def given_overrides(configurations: Mapping[str, str], names: Iterable[str]) -> dict[str, Any]:
    """Name -> typed value of the arguments among `names` that were given (not empty)."""
    return {
        name: parse_text(name, configurations[name])
        for name in names
        if configurations.get(name, "") != ""
    }
