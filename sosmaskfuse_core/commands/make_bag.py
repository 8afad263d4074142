"""`sosmaskfuse make-bag`: a rosbag2 bag of thermal + visible camera topics, made from two sources.

The two sources are two videos or two image folders.

    sosmaskfuse make-bag --ir-video IR.mp4 --vis-video VIS.mp4 --out BAG [options]
    sosmaskfuse make-bag --ir-dir IR_DIR --vis-dir VIS_DIR --out BAG [options]

Videos are read frame by frame in step (frame i of one with frame i of the other) until the
shorter ends or --max-frames; folders are paired by file stem, in sorted order (files without a
partner and unreadable files are reported and skipped). Frame i of both cameras is stamped
start + i / rate, where rate is --rate, else the video's frame rate (the visible one's if they
differ), else 10 Hz for folders; start is --start-time (seconds since the epoch), else now.
Each message is written at its stamp as log time, the thermal one first.

    thermal   mono8: the frame as 8-bit gray.
              mono16: raw-count-like 16-bit values, counts = 7000 + 16 * gray (7000..11080,
              the range of an uncooled 14-bit microbolometer looking at an indoor/outdoor scene);
              the node's percentile gain control maps them back to the full 8-bit range.
              A 16-bit image file is kept as it is for mono16 (and scaled by 1/257 for mono8).
    visible   rgb8 (default) or bgr8.

With --compressed the topics are sensor_msgs/CompressedImage on <topic>/compressed (what
image_transport's compressed plugin publishes): thermal PNG (8 or 16 bit), visible JPEG.
Topics offer --reliability (default reliable, so a replay loses no frames) with depth 5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rosbags.rosbag2 import WriterError

from sosmaskfuse_core.formats.rosbag_io import (
    NS_PER_SECOND,
    STORAGES,
    format_time,
)
from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.tools.make_bag import (
    FRAME_IDS,
    THERMAL_ENCODINGS,
    THERMAL_TOPIC,
    VISIBLE_ENCODINGS,
    VISIBLE_TOPIC,
    BagLayout,
    folder_frames,
    video_frames,
    write_bag,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "make-bag",
        help="make a thermal + visible rosbag2 bag from two videos or two image folders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inputs = p.add_argument_group("input (two videos or two folders)")
    inputs.add_argument("--ir-video", type=Path, metavar="FILE", help="thermal video")
    inputs.add_argument("--vis-video", type=Path, metavar="FILE", help="visible video")
    inputs.add_argument("--ir-dir", type=Path, metavar="DIR", help="folder of thermal images")
    inputs.add_argument("--vis-dir", type=Path, metavar="DIR", help="folder of visible images")
    p.add_argument(
        "--out", required=True, type=Path, metavar="BAG", help="output bag folder (must not exist)"
    )
    p.add_argument("--storage", choices=tuple(STORAGES), default="mcap", help="default: mcap")
    p.add_argument(
        "--rate", type=float, help="frames per second (default: the video's; 10 for folders)"
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="write at most N pairs")
    p.add_argument(
        "--start-time",
        type=float,
        metavar="SEC",
        help="stamp of the first pair, seconds since the epoch (default: now)",
    )
    p.add_argument(
        "--thermal-encoding",
        choices=THERMAL_ENCODINGS,
        default="mono8",
        help="mono8, or mono16 counts = 7000 + 16 * gray (default: mono8)",
    )
    p.add_argument(
        "--visible-encoding", choices=VISIBLE_ENCODINGS, default="rgb8", help="default: rgb8"
    )
    p.add_argument(
        "--compressed",
        action="store_true",
        help="sensor_msgs/CompressedImage on <topic>/compressed (thermal PNG, visible JPEG)",
    )
    p.add_argument("--thermal-topic", default=THERMAL_TOPIC, help=f"default: {THERMAL_TOPIC}")
    p.add_argument("--visible-topic", default=VISIBLE_TOPIC, help=f"default: {VISIBLE_TOPIC}")
    p.add_argument(
        "--frame-ids",
        nargs=2,
        default=FRAME_IDS,
        metavar=("THERMAL", "VISIBLE"),
        help=f"header frame_ids (default: {' '.join(FRAME_IDS)})",
    )
    p.add_argument(
        "--reliability",
        choices=("reliable", "best_effort"),
        default="reliable",
        help="offered QoS reliability recorded for the topics (default: reliable)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, *, stream=None) -> int:
    stream = stream or sys.stderr
    videos, folders = (args.ir_video, args.vis_video), (args.ir_dir, args.vis_dir)
    try:
        if any(videos) == any(folders) or not (all(videos) or all(folders)):
            raise ValueError("give --ir-video and --vis-video, or --ir-dir and --vis-dir")
        if args.out.exists():
            raise ValueError(f"{args.out} exists; choose a new output bag")
        if args.max_frames is not None and args.max_frames < 1:
            raise ValueError(f"--max-frames {args.max_frames}: must be at least 1")
        layout = BagLayout(
            thermal_topic=args.thermal_topic,
            visible_topic=args.visible_topic,
            frame_ids=tuple(args.frame_ids),
            thermal_encoding=args.thermal_encoding,
            visible_encoding=args.visible_encoding,
            compressed=args.compressed,
            reliability=args.reliability,
            storage=args.storage,
        )
        source = video_frames(*videos) if all(videos) else folder_frames(*folders)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=stream)
        return 2
    start_ns = None if args.start_time is None else round(args.start_time * NS_PER_SECOND)
    expected = [n for n in (source.count, args.max_frames) if n is not None]
    progress = Progress(
        min(expected) if expected else None, "make-bag", unit="pairs", stream=stream
    )
    try:
        report = write_bag(
            args.out,
            source,
            layout,
            rate=args.rate,
            start_ns=start_ns,
            max_frames=args.max_frames,
            progress=progress,
        )
    except (ValueError, WriterError, OSError) as exc:
        print(f"error: {exc}", file=stream)
        return 2
    finally:
        progress.close()
    (tw, th), (vw, vh) = report.sizes
    thermal = "png" if layout.compressed else layout.thermal_encoding
    visible = "jpeg" if layout.compressed else layout.visible_encoding
    duration = (report.last_stamp - report.first_stamp) / NS_PER_SECOND
    print(
        f"wrote {report.pairs} pairs ({2 * report.pairs} messages) at {report.rate:g} Hz, "
        f"{format_time(report.first_stamp)} + {duration:.2f} s -> {args.out} ({layout.storage})\n"
        f"  {report.topics[0]}: {thermal} {tw}x{th}, frame_id {layout.frame_ids[0]}\n"
        f"  {report.topics[1]}: {visible} {vw}x{vh}, frame_id {layout.frame_ids[1]}",
        file=stream,
    )
    if report.note:
        print(f"  {report.note}", file=stream)
    if report.skipped:
        print(f"  {len(report.skipped)} skipped:", file=stream)
        for what, reason in report.skipped:
            print(f"    {what}: {reason}", file=stream)
        return 1
    return 0
