"""`sosmaskfuse demo`: the command's options; the demo itself (rclpy) is imported only when it runs.

    sosmaskfuse demo [--out DIR] [--frames N] [--process-size W H] [--device D]

Starts the synthetic cameras and the fusion node (shipped default weights) as two ROS 2
processes on real DDS, records the cameras, the mask, the fused images and /diagnostics to
an MCAP bag (DIR/demo_bag), writes DIR/contact_sheet.png (thermal | visible | mask | fused)
and prints throughput and latency. Fusion runs at a reduced size (default 160x128) so a
2-core CPU keeps up; the cameras publish 320x256.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="run the node on synthetic cameras over DDS; record, contact sheet",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default demo_output)")
    p.add_argument("--frames", type=int, default=12, help="stop after this many fused frames (default 12)")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)")
    p.add_argument("--rate", type=float, default=5.0, help="camera rate, Hz (default 5)")
    p.add_argument("--process-size", type=int, nargs=2, default=(160, 128), metavar=("W", "H"),
                   help="fusion size (default 160 128)")
    p.add_argument("--output-scaling", choices=("minmax", "clip"), default="clip")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--sheet-rows", type=int, default=4, help="frames on the contact sheet (default 4)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from sosmaskfuse_ros import demo
    except ImportError as exc:
        print(f"error: `sosmaskfuse demo` needs rclpy and the message packages ({exc.name or exc} is missing): "
              "source a ROS 2 Jazzy install, or pip install the package with its 'ros' extra", file=sys.stderr)
        return 2
    return demo.run(args)
