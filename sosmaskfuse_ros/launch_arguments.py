"""Launch arguments for node settings: defaults, choices and descriptions from the settings table.

    DeclareLaunchArgument("device", **setting_argument("device"))

Plain data (no `launch` import), so launch files stay declarative and the table stays the one
place a setting is described.
"""

from __future__ import annotations

from typing import Any

from sosmaskfuse_core.settings import table


def launch_text(value: Any) -> str:
    """A value as launch writes it (`true`/`false`, numbers as text, "" for unset)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def setting_argument(name: str, default: Any = None) -> dict[str, Any]:
    """`default_value`, `description` and (for choices) `choices` of a setting's launch argument.

    `default` replaces the table's default (e.g. the demo's device:=cpu).
    """
    setting = table.by_name(name)
    value = setting.default if default is None else setting.check(default)
    kwargs: dict[str, Any] = {
        "default_value": launch_text(value),
        "description": setting.description,
    }
    if setting.choices:
        kwargs["choices"] = list(setting.choices)
    elif setting.kind == "bool":
        kwargs["choices"] = ["true", "false"]
    return kwargs
