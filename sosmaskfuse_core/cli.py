"""The `sosmaskfuse` command line: the core sub-commands, plus those other packages register.

A package adds sub-commands through the `sosmaskfuse.commands` entry-point group: each entry
point is a function `add_parser(subparsers)` that registers one sub-command (with `func` set).
`sosmaskfuse_ros` registers `play` and `demo` this way, so sosmaskfuse_core never imports ROS
and `sosmaskfuse --help` lists every command a given install has.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points

from sosmaskfuse_core import __version__
from sosmaskfuse_core.commands import CORE_COMMANDS

ENTRY_POINT_GROUP = "sosmaskfuse.commands"
log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every core sub-command and every registered one."""
    parser = argparse.ArgumentParser(
        prog="sosmaskfuse", description="SOSMaskFuse infrared + visible image fusion."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in CORE_COMMANDS:
        module.add_parser(sub)
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            entry.load()(sub)
        except Exception as exc:  # a broken plug-in must not take the other commands down
            log.warning("sub-command %s (%s) is unavailable: %s", entry.name, entry.value, exc)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: the process's arguments) and run the sub-command; its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
