"""The fusion node's ROS parameters, from the settings table: descriptors, declaration, values.

Every node setting of `sosmaskfuse_core.settings.table` becomes one parameter of the same name:
its type, default, description, range (FloatingPointRange / IntegerRange) and choices or
pattern (in the descriptor's additional_constraints and checked on every set) all come from
the table. `config/sosmaskfuse.yaml` is generated from the same table. Parameters are never
undeclared and keep their type (`check_change`).

No parameter is read-only: a start-up setting (not `live`) can be set while the node is
unconfigured, and configure reads it (the node refuses it, with the reason, once configured),
so a bad start-up value is fixed with `ros2 param set` and a configure, without a restart.
Every parameter has a value, so `get_parameters` answers for all of them (`ros2 param dump`,
rqt_reconfigure, Foxglove): an unset list (the homography) is an empty DOUBLE_ARRAY.
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from sosmaskfuse_core.settings import table

#: How each kind of setting is held as a ROS parameter.
_PARAMETER_TYPES = {
    "str": Parameter.Type.STRING,
    "bool": Parameter.Type.BOOL,
    "int": Parameter.Type.INTEGER,
    "float": Parameter.Type.DOUBLE,
    "floats": Parameter.Type.DOUBLE_ARRAY,
}
#: The types a dynamically typed setting may take ("" = unset, or a number).
_ALLOWED_TYPES = {
    "optional_float": (Parameter.Type.STRING, Parameter.Type.DOUBLE, Parameter.Type.INTEGER),
}


#: Said of each start-up parameter in its description.
START_UP_NOTE = " (start-up: set it while the node is unconfigured; configure reads it)"


def node_settings() -> tuple[table.Setting, ...]:
    """The settings the node declares, in table order."""
    return table.for_scope(table.NODE)


def descriptor(setting: table.Setting) -> ParameterDescriptor:
    """The ParameterDescriptor of a setting (ranges, choices, read-only, dynamic typing)."""
    d = ParameterDescriptor(
        name=setting.name,
        description=setting.description + ("" if setting.live else START_UP_NOTE),
        dynamic_typing=setting.kind == "optional_float",
    )
    if setting.choices:
        d.additional_constraints = "one of: " + ", ".join(setting.choices)
    elif setting.pattern:
        d.additional_constraints = setting.pattern_text or setting.pattern
    elif setting.open_low or setting.open_range:
        d.additional_constraints = f"in {setting.range_text}"
    if setting.range is not None and setting.kind == "float":
        lo, hi = setting.range
        d.floating_point_range = [
            FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)
        ]
    elif setting.range is not None and setting.kind == "int":
        lo, hi = setting.range
        d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return d


def parameter_default(setting: table.Setting) -> Any:
    """What `declare_parameter` gets: the default, or a stand-in when there is none.

    The stand-in is "" for an unset number and the type for an unset list (which
    `declare_parameters` then sets to an empty list).
    """
    if setting.kind == "optional_float":
        return "" if setting.default is None else setting.default
    if setting.default is None:
        return _PARAMETER_TYPES[setting.kind]
    return setting.default


def declare_parameters(node: Node, settings: tuple[table.Setting, ...]) -> dict[str, str]:
    """Declare `settings` on `node`, never failing; returns setting name -> what was wrong.

    A value rclpy itself refuses (the wrong type, outside the descriptor's range) is reported
    and the parameter is declared with its default instead, so the node still comes up (and
    stays unconfigured, saying why).
    """
    errors: dict[str, str] = {}
    for setting in settings:
        try:
            node.declare_parameter(setting.name, parameter_default(setting), descriptor(setting))
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            errors[setting.name] = str(exc)
            node.declare_parameter(
                setting.name,
                parameter_default(setting),
                descriptor(setting),
                ignore_override=True,
            )
        if setting.kind == "floats" and not _is_set(node, setting.name):
            # an empty list of the parameter's type: get_parameters answers for every name
            node.set_parameters([Parameter(setting.name, _PARAMETER_TYPES["floats"], [])])
    return errors


def _is_set(node: Node, name: str) -> bool:
    try:
        node.get_parameter(name)
    except ParameterUninitializedException:
        return False
    return True


def read_values(node: Node, settings: tuple[table.Setting, ...]) -> dict[str, Any]:
    """The declared parameters' values as the table holds them (ValueError names a bad one).

    An empty list (the unset homography) is None.
    """
    values = {}
    for setting in settings:
        try:
            value = node.get_parameter(setting.name).value
        except ParameterUninitializedException:
            value = None
        values[setting.name] = to_setting(setting, value)
    return values


def declare(node: Node, settings: tuple[table.Setting, ...]) -> dict[str, Any]:
    """Declare `settings` on `node`; returns name -> value as the table holds it.

    The value is None for an unset number or list. ValueError names a start-up value the
    setting refuses.
    """
    errors = declare_parameters(node, settings)
    if errors:
        name, error = next(iter(errors.items()))
        raise ValueError(f"{name}: {error}")
    return read_values(node, settings)


def declare_all(node: Node) -> dict[str, Any]:
    """Declare every setting of the fusion node on `node` (see `declare`), checked together."""
    return table.check_values(declare(node, node_settings()))


def to_setting(setting: table.Setting, value: Any) -> Any:
    """A parameter's value as the table holds it, checked.

    ValueError names the setting and the rule.
    """
    if setting.kind == "floats" and value is not None:
        value = [float(v) for v in value]  # an empty list is unset: Setting.parse
    if setting.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return setting.parse(value)


def check_change(setting: table.Setting, param: Parameter) -> Any:
    """A live change's value as the table holds it; ValueError for one that is refused.

    Parameters keep their type and are never undeclared: a NOT_SET value, or a value of
    another type for a dynamically typed parameter (`mask_threshold`: "" or a double), is
    refused with the reason.
    """
    if param.type_ == Parameter.Type.NOT_SET:
        unset = ' (set it to "" to unset it)' if setting.kind == "optional_float" else ""
        raise ValueError(f"{setting.name} cannot be undeclared{unset}")
    allowed = _ALLOWED_TYPES.get(setting.kind) or (_PARAMETER_TYPES[setting.kind],)
    if param.type_ not in allowed:
        names = " or ".join(t.name.lower() for t in allowed)
        raise ValueError(f"{setting.name} is a {names} parameter, not {param.type_.name.lower()}")
    return to_setting(setting, param.value)
