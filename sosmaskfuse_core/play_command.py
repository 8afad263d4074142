"""`sosmaskfuse play`: the command's options; the player itself (rclpy) is imported only when it runs.

    sosmaskfuse play BAG [--rate R] [--clock [HZ]] [--topics T ...] [--loop] [--start-offset S]

Publishes a bag's topics on ROS 2 at their recorded pace, for installs without `ros2 bag`
(a pip install of the Jazzy wheels has rclpy but not rosbag2). Messages go out as the
recorded serialized bytes, each topic with the reliability and durability it was recorded
with (reliable and volatile when the bag does not say, or its publishers disagreed), and
with --clock a rosgraph_msgs/Clock on /clock (HZ times a second, default 100, and just
before every message) so nodes with use_sim_time run on the bag's time:

    sosmaskfuse play demo_bag --clock &
    ros2 run sosmaskfuse_ros sosmaskfuse_node --ros-args -r __ns:=/camera -p use_sim_time:=true

Ctrl-C stops; the summary says what was published.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CLOCK_HZ = 100.0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "play", help="publish a bag's topics on ROS 2 (needs rclpy), with /clock for use_sim_time",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bag", type=Path, metavar="BAG", help="bag folder, or an .mcap/.db3 file")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--clock", type=float, nargs="?", const=DEFAULT_CLOCK_HZ, metavar="HZ",
                   help=f"publish /clock at HZ (default {DEFAULT_CLOCK_HZ:g} when given without a value)")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics (default: all)")
    p.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    p.add_argument("--start-offset", type=float, default=0.0, metavar="SEC",
                   help="skip this many seconds from the start of the bag")
    p.add_argument("--delay", type=float, default=0.5, metavar="SEC",
                   help="wait after creating the publishers, so subscribers are matched (default 0.5)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from sosmaskfuse_ros import bag_player
    except ImportError as exc:
        missing = exc.name or str(exc)
        print(f"error: `sosmaskfuse play` needs rclpy and the message packages ({missing} is missing): "
              "source a ROS 2 Jazzy install, or pip install the package with its 'ros' extra", file=sys.stderr)
        return 2
    return bag_player.run(args)
