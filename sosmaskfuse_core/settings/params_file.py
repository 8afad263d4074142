"""The node's ROS 2 parameter file (`--params-file`), read as the node reads it, offline.

The file is the one the node takes (`ros2 run ... --ros-args --params-file FILE`), such as
`config/sosmaskfuse.yaml` or what `sosmaskfuse calibrate` writes. Its sections are node names
(`/**`, `sosmaskfuse`, `/ns/sosmaskfuse`, nested `ns: sosmaskfuse:`, wildcards `*` and `**`),
each with `ros__parameters`. The sections that apply to a node called `sosmaskfuse` in any
namespace are merged in file order (a later value wins, as in rcl). Each value is checked
against the settings table with the node's types (an integer for a double is refused, as
rclpy refuses it); a parameter of the node that a tool does not use (e.g. a
diagnostics period for `bag`) is reported and left out; an unknown name is an error (a typo
must not pass silently).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from . import table

#: The fusion node's name (sosmaskfuse_ros.fusion_node).
NODE_NAME = "sosmaskfuse"
#: Parameters every ROS 2 node may take, which are not settings of ours.
ROS_PARAMETERS = frozenset({"use_sim_time", "qos_overrides", "start_type_description_service"})
PARAMS_KEY = "ros__parameters"


class ParamsFileError(ValueError):
    """The file cannot be read, is not a parameter file, or holds a bad value (named)."""


def _sections(data: Any, path: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """(node name pattern, parameters) of every `ros__parameters` in the file, in file order."""
    found: list[tuple[str, dict]] = []
    if not isinstance(data, dict):
        return found
    for key, value in data.items():
        if key == PARAMS_KEY:
            name = "/" + "/".join(p.strip("/") for p in path if p.strip("/"))
            found.append((name, value if isinstance(value, dict) else {}))
        else:
            found.extend(_sections(value, (*path, str(key))))
    return found


def applies(pattern: str, node_name: str = NODE_NAME) -> bool:
    """Whether a section name matches a node called `node_name` in some namespace.

    `**` matches any number of name parts, `*` one; the namespace is not known offline, so
    any namespace matches.
    """
    last = pattern.rstrip("/").rsplit("/", 1)[-1]
    return last in (node_name, "*", "**")


def _flatten(params: dict, prefix: str = "") -> dict[str, Any]:
    """Nested parameter maps as dotted names (ROS 2 reads `a: {b: 1}` as `a.b`)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "qos_overrides":
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def node_parameters(path: str | os.PathLike, node_name: str = NODE_NAME) -> dict[str, Any]:
    """The parameters a node called `node_name` takes from the file, merged in file order."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ParamsFileError(f"--params-file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        text = str(exc).replace("\n", " ")
        raise ParamsFileError(f"--params-file {path}: not YAML ({text})") from None
    sections = _sections(data)
    if not sections:
        raise ParamsFileError(
            f"--params-file {path}: no ros__parameters (expected '/**: ros__parameters: ...')"
        )
    mine = [(name, params) for name, params in sections if applies(name, node_name)]
    concrete = sorted({n for n, _ in mine if "*" not in n})
    if len(concrete) > 1:
        raise ParamsFileError(
            f"--params-file {path}: sections for several {node_name} nodes "
            f"({', '.join(concrete)}); keep the one to use"
        )
    merged: dict[str, Any] = {}
    for _, params in mine:
        merged.update(_flatten(params))
    return merged


def settings_from_file(
    path: str | os.PathLike, scope: str, node_name: str = NODE_NAME
) -> tuple[dict[str, Any], list[str]]:
    """(name -> checked value of the settings of `scope` in the file, node settings left out).

    ParamsFileError names the file and the parameter for an unknown name or a bad value.
    """
    values: dict[str, Any] = {}
    unused: list[str] = []
    for name, value in node_parameters(path, node_name).items():
        if name in ROS_PARAMETERS or name.startswith("qos_overrides."):
            continue
        try:
            setting = table.by_name(name)
        except KeyError:
            raise ParamsFileError(
                f"--params-file {path}: unknown parameter {name!r} (not a setting of the "
                f"{node_name} node)"
            ) from None
        if scope not in setting.scopes:
            unused.append(name)
            continue
        try:
            values[name] = setting.parse(_as_setting_type(setting, value))
        except (TypeError, ValueError) as exc:
            raise ParamsFileError(f"--params-file {path}: {exc}") from None
    return values, unused


def _double(name: str, value: Any) -> Any:
    """A double as rcl's YAML parser reads it: 1e-05 or 1E3 is a double, 1 is an integer.

    (YAML 1.1, which PyYAML follows, reads a number without a dot, such as 1e-05, as text.)
    An integer is refused as the node refuses it (rclpy does not take an int for a double).
    """
    if type(value) is int:
        raise ValueError(
            f"{name}: {value} is an integer; the node takes a double: write {value}.0"
        )
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _as_setting_type(setting: table.Setting, value: Any) -> Any:
    """A YAML value as the setting holds it (doubles read as the node reads them)."""
    if setting.kind == "floats" and isinstance(value, list):
        return [_double(setting.name, v) for v in value]
    if setting.kind in ("float", "optional_float"):
        return _double(setting.name, value)
    return value
