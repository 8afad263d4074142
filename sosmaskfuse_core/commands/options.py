"""Command-line options derived from the settings table, and the settings values they parse to.

Each option is the setting of the same name with dashes (`--sync-slop` is `sync_slop`), with the
node's default, so an offline run computes what the node would publish (unless the table gives
a front end its own default: `fuse` does not smooth masks across a folder of stills).
`add_setting_options` adds the settings of one front end (`bag` or `fuse`); `setting_values`
reads them back as the name -> value mapping that
`sosmaskfuse_core.pipeline.builder.build_stage` takes.
"""

from __future__ import annotations

import argparse
from typing import Any

from sosmaskfuse_core.settings import table

_TYPES = {"str": str, "int": int, "float": float, "optional_float": float, "floats": float}


def _help(setting: table.Setting, scope: str) -> str:
    text = setting.description.replace("%", "%%")  # argparse formats help with %
    if setting.kind == "bool":
        return text
    default = setting.default_in(scope)
    shown = "unset" if default in (None, "") else default
    return f"{text} (default: {shown})"


def add_setting_option(
    group: argparse._ActionsContainer, setting: table.Setting, scope: str = table.NODE
) -> None:
    """One setting as an option of `group` (dest = the setting's name), with `scope`'s default."""
    names = [setting.option, *setting.aliases]
    default = setting.default_in(scope)
    if setting.kind == "bool":
        # a flag says the opposite of the default: --color-output (default off),
        # --no-mask (default on)
        action = "store_false" if default else "store_true"
        group.add_argument(
            *names, dest=setting.name, action=action, default=default, help=_help(setting, scope)
        )
        return
    kwargs: dict[str, Any] = {
        "dest": setting.name,
        "type": _TYPES[setting.kind],
        "default": default,
        "help": _help(setting, scope),
    }
    if setting.choices:
        kwargs["choices"] = setting.choices
    if setting.kind == "floats":
        kwargs.update(nargs=setting.length or "+", metavar="X")
    elif not setting.choices:
        kwargs["metavar"] = (
            "CKPT" if setting.name.endswith("_weights") else setting.name.split("_")[-1].upper()
        )
    group.add_argument(*names, **kwargs)


def add_setting_options(parser: argparse.ArgumentParser, scope: str) -> None:
    """Every setting of `scope` (table.BAG or table.FUSE), in the YAML file's argument groups."""
    settings = table.for_scope(scope)
    for group, title in table.GROUPS.items():
        members = [s for s in settings if s.group == group]
        if members:
            container = parser.add_argument_group(f"{title} (node parameters)")
            for setting in members:
                add_setting_option(container, setting, scope)


def setting_values(args: argparse.Namespace, scope: str) -> dict[str, Any]:
    """Name -> value of every setting of `scope`, validated (ValueError names the bad one)."""
    values = {s.name: getattr(args, s.name) for s in table.for_scope(scope)}
    return table.check_values(values)
