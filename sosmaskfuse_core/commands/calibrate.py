"""`sosmaskfuse calibrate`: find the thermal -> visible homography of a rig; write the node's file.

    sosmaskfuse calibrate --method target --board checkerboard --pattern 9x6 --square 40
                          (--ir DIR --vis DIR | --bag BAG --thermal-topic T --visible-topic V)
                          --out rig.yaml
    sosmaskfuse calibrate --method targetless (--ir DIR --vis DIR | --bag ...) --out rig.yaml

target: a checkerboard (COLSxROWS inner corners) or a symmetric circle grid (COLSxROWS circles)
seen by both cameras; in the thermal image it may be bright or dark (a heated or sun-warmed
board). targetless: synchronised frames of ordinary scenes with structure at the distance that
matters (buildings, poles, kerbs, vehicles), from many moments (the frames are spread over the
folder or bag). A homography is exact for one plane: calibrate on the distances that matter
(the far field for driving); README "Registering your rig" gives the parallax error.

Writes rig.yaml, a ROS 2 parameter file (`/**: ros__parameters: homography: [...]`) for
`sosmaskfuse_node --ros-args --params-file rig.yaml` and `sosmaskfuse bag|fuse|fleet
--params-file rig.yaml`, and beside it rig.report.json, rig.report.md (error figures, frames
used and set aside with the reason, confidence, run time), rig.edges.png (thermal edges on the
visible image) and rig.checker.png (thermal and visible tiles) to judge it by eye.

Exit codes: 0 written; 2 refused (too few usable frames, frames that disagree, a flat score
peak, a poor fit) or bad input, with a one-line reason. Nothing is written then.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from sosmaskfuse_core.calibration import (
    BOARD_KINDS,
    BoardSpec,
    CalibrationRefused,
    SearchSpace,
    SourceError,
    TargetlessOptions,
    calibrate_target,
    calibrate_targetless,
    from_bag,
    from_folders,
    write_all,
)
from sosmaskfuse_core.calibration.report import companion
from sosmaskfuse_core.settings import table

#: Frames read at most: targetless spreads its frames over the source; a board needs them all.
TARGETLESS_READ_FACTOR = 2


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `calibrate`."""
    p = subparsers.add_parser(
        "calibrate",
        help="find the thermal -> visible homography of a rig (board or targetless)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--method", choices=("target", "targetless"), required=True)
    p.add_argument("--out", required=True, type=Path, metavar="FILE.yaml", help="parameter file")
    src = p.add_argument_group("frames: two folders (paired by file stem) or a bag")
    src.add_argument("--ir", type=Path, metavar="DIR", help="folder of thermal images")
    src.add_argument("--vis", type=Path, metavar="DIR", help="folder of visible images")
    src.add_argument("--bag", type=Path, help="rosbag2 bag (folder or .mcap/.db3 file)")
    src.add_argument("--thermal-topic", help="thermal sensor_msgs/Image or CompressedImage")
    src.add_argument("--visible-topic", help="visible sensor_msgs/Image or CompressedImage")
    src.add_argument(
        "--sync-slop",
        type=float,
        default=table.default("sync_slop"),
        help="bag: largest stamp difference (s) of a pair (default %(default)s)",
    )
    board = p.add_argument_group("target")
    board.add_argument("--board", choices=BOARD_KINDS, default="checkerboard")
    board.add_argument(
        "--pattern",
        default="9x6",
        metavar="COLSxROWS",
        help="inner corners (checkerboard) or circles, across x down (default 9x6)",
    )
    board.add_argument(
        "--square", type=float, default=0.0, metavar="MM", help="square or circle pitch (report)"
    )
    board.add_argument(
        "--max-rms",
        type=float,
        default=1.5,
        metavar="PX",
        help="refuse a fit whose RMS reprojection error exceeds this (visible px; default 1.5)",
    )
    tl = p.add_argument_group("targetless")
    defaults = TargetlessOptions()
    tl.add_argument(
        "--max-frames",
        type=int,
        default=defaults.max_frames,
        metavar="N",
        help=f"frames used, spread over the source (default {defaults.max_frames})",
    )
    tl.add_argument(
        "--min-frames",
        type=int,
        default=defaults.min_frames,
        metavar="N",
        help=f"informative, agreeing frames needed (default {defaults.min_frames})",
    )
    tl.add_argument(
        "--scale-range",
        type=float,
        nargs=2,
        default=defaults.space.scale,
        metavar=("LO", "HI"),
        help="thermal scale relative to matching the image widths, searched "
        "(default %(default)s; a rig's is about tan(thermal HFOV/2) / tan(visible HFOV/2))",
    )
    tl.add_argument(
        "--max-rotation",
        type=float,
        default=defaults.space.rotation_deg,
        metavar="DEG",
        help="largest roll between the cameras searched (default %(default)s)",
    )
    p.set_defaults(func=run)
    return p


def _frames(args: argparse.Namespace, limit: int | None):
    folders = args.ir is not None or args.vis is not None
    if folders == (args.bag is not None):
        raise SourceError("give either --ir DIR --vis DIR or --bag B (with the two topics)")
    if folders:
        if args.ir is None or args.vis is None:
            raise SourceError("--ir and --vis go together")
        return from_folders(args.ir, args.vis, limit)
    if not args.thermal_topic or not args.visible_topic:
        raise SourceError("--bag needs --thermal-topic and --visible-topic")
    return from_bag(
        args.bag, args.thermal_topic, args.visible_topic, limit=limit, sync_slop=args.sync_slop
    )


def command_line(args: argparse.Namespace) -> str:
    """The command as a person would type it again (for the report and the file's comments)."""
    words = ["sosmaskfuse", "calibrate", "--method", args.method]
    if args.bag is not None:
        words += ["--bag", str(args.bag), "--thermal-topic", str(args.thermal_topic)]
        words += ["--visible-topic", str(args.visible_topic), "--sync-slop", str(args.sync_slop)]
    else:
        words += ["--ir", str(args.ir), "--vis", str(args.vis)]
    if args.method == "target":
        words += ["--board", args.board, "--pattern", args.pattern, "--square", f"{args.square:g}"]
    else:
        words += ["--max-frames", str(args.max_frames), "--min-frames", str(args.min_frames)]
        words += ["--scale-range", *(f"{v:g}" for v in args.scale_range)]
        words += ["--max-rotation", f"{args.max_rotation:g}"]
    return " ".join(shlex.quote(w) for w in [*words, "--out", str(args.out)])


def run(args: argparse.Namespace, *, stream=None) -> int:
    """Run `calibrate`; 0 when the file is written, 2 when refused or the input is bad."""
    stream = stream or sys.stderr
    command = command_line(args)
    try:
        if args.out.suffix not in (".yaml", ".yml"):
            raise ValueError(f"--out {args.out}: a parameter file ends in .yaml")
        if args.method == "target":
            spec = BoardSpec.parse(args.board, args.pattern, args.square)
            frames = _frames(args, None)
            result = calibrate_target(frames.pairs, spec, max_rms_px=args.max_rms)
        else:
            options = TargetlessOptions(
                space=SearchSpace(scale=tuple(args.scale_range), rotation_deg=args.max_rotation),
                max_frames=args.max_frames,
                min_frames=args.min_frames,
            )
            frames = _frames(args, args.max_frames * TARGETLESS_READ_FACTOR)
            result = calibrate_targetless(frames.pairs, options)
    except CalibrationRefused as exc:
        print(f"refused: {exc.reason}", file=stream)
        for verdict in exc.frames[:8]:
            print(f"  {verdict.name}: {verdict.reason}", file=stream)
        return 2
    except (SourceError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=stream)
        return 2
    result.frames = frames.skipped + result.frames
    written = write_all(result, args.out, frames.pairs, command)
    errors = ", ".join(f"{k} {v:.3g}" for k, v in result.errors.items())
    print(
        f"{args.out}: {result.method} homography from {len(result.used)} frames "
        f"({len(result.rejected)} set aside) in {result.seconds:.1f} s; {errors}; "
        f"confidence {result.confidence['level']}",
        file=stream,
    )
    print("  also wrote " + ", ".join(str(p) for p in written[1:]), file=stream)
    print(f"  judge it: open {companion(args.out, '.edges.png')}", file=stream)
    return 0
