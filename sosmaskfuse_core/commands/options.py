"""Command-line options derived from the settings table, and the settings values they parse to.

Each option is the setting of the same name with dashes (`--sync-slop` is `sync_slop`), with the
node's default, so an offline run computes what the node would publish (unless the table gives
a front end its own default: `fuse` does not smooth masks across a folder of stills).
`add_setting_options` adds the settings of one front end (`bag` or `fuse`); `setting_values`
reads them back as the name -> value mapping that
`sosmaskfuse_core.pipeline.builder.build_stage` takes, with the `--preset` applied to every
setting not given on the command line (the options record which were given).
"""

from __future__ import annotations

import argparse
from typing import Any

from sosmaskfuse_core.settings import table

_TYPES = {"str": str, "int": int, "float": float, "optional_float": float, "floats": float}
#: The namespace attribute that holds the names of the settings given on the command line.
GIVEN = "given_settings"


def _note_given(namespace: argparse.Namespace, dest: str) -> None:
    given = getattr(namespace, GIVEN, None)
    if given is None:
        given = set()
        setattr(namespace, GIVEN, given)
    given.add(dest)


class _Store(argparse._StoreAction):
    """`store`, noting that the setting was given (a preset leaves it alone)."""

    def __call__(self, parser, namespace, values, option_string=None):
        _note_given(namespace, self.dest)
        super().__call__(parser, namespace, values, option_string)


class _StoreConst(argparse._StoreConstAction):
    """`store_true` / `store_false`, noting that the setting was given."""

    def __call__(self, parser, namespace, values, option_string=None):
        _note_given(namespace, self.dest)
        super().__call__(parser, namespace, values, option_string)


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
        group.add_argument(
            *names,
            dest=setting.name,
            action=_StoreConst,
            const=not default,
            default=default,
            help=_help(setting, scope),
        )
        return
    kwargs: dict[str, Any] = {
        "action": _Store,
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


def given_settings(args: argparse.Namespace) -> set[str]:
    """The settings given on the command line (not left at their defaults)."""
    return set(getattr(args, GIVEN, ()) or ())


def setting_values(args: argparse.Namespace, scope: str) -> dict[str, Any]:
    """Name -> value of every setting of `scope`, validated (ValueError names the bad one).

    The preset (`--preset`) sets its settings, except those given on the command line.
    """
    values = {s.name: getattr(args, s.name) for s in table.for_scope(scope)}
    return table.check_values(table.apply_preset(values, given_settings(args)))
