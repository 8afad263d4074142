"""The `sosmaskfuse` command line: one sub-command per job, each defined in its own module."""
from __future__ import annotations

import argparse
import logging
import sys

from . import (__version__, bag_fusion, bag_maker, demo_command, evaluate, fuse_folder, mask_eval,
               play_command)
from .training import autoencoder as train_autoencoder
from .training import release
from .training import sosnet as train_sosnet

# play_command and demo_command import rclpy only when they run: sosmaskfuse_core never needs ROS.
COMMANDS = (fuse_folder, evaluate, mask_eval, train_autoencoder, train_sosnet, release, bag_fusion, bag_maker,
            play_command, demo_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sosmaskfuse",
                                     description="SOSMaskFuse infrared + visible image fusion.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
