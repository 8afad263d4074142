"""Command-line options derived from the settings table, and the settings values they parse to.

Each option is the setting of the same name with dashes (`--sync-slop` is `sync_slop`), with the
node's default, so an offline run computes what the node would publish (unless the table gives
a front end its own default: `fuse` does not smooth masks across a folder of stills).
`add_setting_options` adds the settings of one front end (`bag` or `fuse`) and `--params-file`
(the node's ROS 2 parameter file, e.g. what `sosmaskfuse calibrate` writes); `setting_values`
reads them back as the name -> value mapping that
`sosmaskfuse_core.pipeline.builder.build_stage` takes. Precedence: an option given on the
command line beats the parameter file, which beats the `--preset`, which beats the default (the
options record which settings were given).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from sosmaskfuse_core.settings import table
from sosmaskfuse_core.settings.params_file import settings_from_file

log = logging.getLogger("sosmaskfuse.options")
_TYPES = {"str": str, "int": int, "float": float, "optional_float": float, "floats": float}
#: Namespace attribute: the settings whose options were given on the command line.
GIVEN = "_settings_given"


def _remember(namespace: argparse.Namespace, dest: str) -> None:
    setattr(namespace, GIVEN, set(getattr(namespace, GIVEN, None) or ()) | {dest})


class _Store(argparse.Action):
    """Store the value, and remember that the option was given (it beats --params-file)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _remember(namespace, self.dest)


class _Flag(argparse.Action):
    """A flag storing `const`, remembering that it was given."""

    def __init__(self, option_strings, dest, const, default=None, help=None):
        super().__init__(option_strings, dest, nargs=0, const=const, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const)
        _remember(namespace, self.dest)


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
            action=_Flag,
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
    """Every setting of `scope` (table.BAG or table.FUSE), in the YAML file's argument groups.

    Also `--params-file`: the node's parameter file as defaults under the command line's options.
    """
    parser.add_argument(
        "--params-file",
        metavar="FILE.yaml",
        help="the node's ROS 2 parameter file (sections /**, sosmaskfuse or /ns/sosmaskfuse), "
        "e.g. the homography `sosmaskfuse calibrate` wrote; options given here win",
    )
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

    With `--params-file`, the file's values replace the defaults of the options not given; the
    preset (`--preset`) then sets its settings, except those given here or in the file.
    """
    values = {s.name: getattr(args, s.name) for s in table.for_scope(scope)}
    given = given_settings(args)
    path = getattr(args, "params_file", None)
    if path:
        from_file, unused = settings_from_file(path, scope)
        if unused:
            log.info("%s: not used offline: %s", path, ", ".join(unused))
        values.update({k: v for k, v in from_file.items() if k not in given})
        given |= set(from_file)
    return table.check_values(table.apply_preset(values, given))
