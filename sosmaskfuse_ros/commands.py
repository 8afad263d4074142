"""The `sosmaskfuse play` and `sosmaskfuse demo` sub-commands, registered from the ROS side.

setup.py lists `add_play_parser` and `add_demo_parser` in the `sosmaskfuse.commands` entry-point
group, which `sosmaskfuse_core.cli` reads. This module imports no ROS package itself: rclpy
and the message packages load when a command runs, and a missing one is reported with how to
install it, so `sosmaskfuse --help` lists both commands on any install.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CLOCK_HZ = 100.0

PLAY_DOC = """Publish a bag's topics on ROS 2 at their recorded pace, with /clock for use_sim_time.

    sosmaskfuse play BAG [--rate R] [--clock [HZ]] [--topics T ...] [--loop] [--start-offset S]

For installs without `ros2 bag` (a pip install of the Jazzy wheels has rclpy but not rosbag2).
Messages go out as the recorded serialized bytes, each topic with the reliability and durability
it was recorded with (reliable and volatile when the bag does not say, or its publishers
disagreed), and with --clock a rosgraph_msgs/Clock on /clock (HZ times a second, default 100,
and just before every message) so nodes with use_sim_time run on the bag's time:

    sosmaskfuse play demo_bag --clock &
    ros2 run sosmaskfuse_ros sosmaskfuse_node --ros-args -r __ns:=/camera -p use_sim_time:=true

Ctrl-C stops; the summary says what was published.
"""

DEMO_DOC = """Run the fusion node on synthetic cameras over DDS; record a bag, \
write a contact sheet.

    sosmaskfuse demo [--out DIR] [--frames N] [--rate HZ] [--camera-size W H]
        [--process-size W H] [--device D] [--autoencoder A] [--precision P]

Starts the synthetic cameras and the fusion node (the device's shipped defaults) as two ROS 2
processes on real DDS, records the cameras, the mask, the fused images and /diagnostics to
an MCAP bag (DIR/demo_bag), writes DIR/contact_sheet.png (thermal | visible | mask | fused)
and prints throughput, latency and the time of each stage of the node's path. The cameras
publish 320x256 at 10 Hz by default; the node fuses at the cameras' size unless
--process-size says otherwise.
"""


def _needs_ros(command: str, exc: ImportError) -> int:
    print(
        f"error: `sosmaskfuse {command}` needs rclpy and the message packages "
        f"({exc.name or exc} is "
        "missing): source a ROS 2 Jazzy install, or pip install the package with its 'ros' extra",
        file=sys.stderr,
    )
    return 2


def add_play_parser(subparsers) -> argparse.ArgumentParser:
    """Register `play`."""
    p = subparsers.add_parser(
        "play",
        help="publish a bag's topics on ROS 2 (needs rclpy), with /clock for use_sim_time",
        description=PLAY_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bag", type=Path, metavar="BAG", help="bag folder, or an .mcap/.db3 file")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument(
        "--clock",
        type=float,
        nargs="?",
        const=DEFAULT_CLOCK_HZ,
        metavar="HZ",
        help=f"publish /clock at HZ (default {DEFAULT_CLOCK_HZ:g} when given without a value)",
    )
    p.add_argument(
        "--topics", nargs="+", metavar="TOPIC", help="play only these topics (default: all)"
    )
    p.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    p.add_argument(
        "--start-offset",
        type=float,
        default=0.0,
        metavar="SEC",
        help="skip this many seconds from the start of the bag",
    )
    p.add_argument(
        "--delay",
        type=float,
        default=0.5,
        metavar="SEC",
        help="wait after creating the publishers, so subscribers are matched (default 0.5)",
    )
    p.add_argument(
        "--wait-for-subscribers",
        action="store_true",
        help="start as soon as every topic has a subscriber, waiting at most --delay seconds",
    )
    p.set_defaults(func=run_play)
    return p


def run_play(args: argparse.Namespace) -> int:
    """Run `play` (rclpy loads here)."""
    try:
        from sosmaskfuse_ros import bag_player
    except ImportError as exc:
        return _needs_ros("play", exc)
    return bag_player.run(args)


def add_demo_parser(subparsers) -> argparse.ArgumentParser:
    """Register `demo`."""
    p = subparsers.add_parser(
        "demo",
        help="run the node on synthetic cameras over DDS; record, contact sheet",
        description=DEMO_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="output folder (default demo_output)"
    )
    p.add_argument(
        "--frames", type=int, default=12, help="stop after this many fused frames (default 12)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="give up after this many seconds (default 300)",
    )
    p.add_argument("--rate", type=float, default=10.0, help="camera rate, Hz (default 10)")
    p.add_argument(
        "--camera-size",
        type=int,
        nargs=2,
        default=(320, 256),
        metavar=("W", "H"),
        help="the synthetic cameras' size (default 320 256)",
    )
    p.add_argument(
        "--process-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="fusion size (default: the cameras')",
    )
    p.add_argument("--autoencoder", default="auto", help="auto, full, lite or a checkpoint")
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--output-scaling", choices=("minmax", "clip"), default="clip")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument(
        "--sheet-rows", type=int, default=4, help="frames on the contact sheet (default 4)"
    )
    p.set_defaults(func=run_demo)
    return p


def run_demo(args: argparse.Namespace) -> int:
    """Run `demo` (rclpy loads here)."""
    try:
        from sosmaskfuse_ros import demo
    except ImportError as exc:
        return _needs_ros("demo", exc)
    return demo.run(args)
