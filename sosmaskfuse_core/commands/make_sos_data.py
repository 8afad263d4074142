r"""`sosmaskfuse make-sos-data`: SOS training folders from HIT-UAV, M3SVD, RoadScene, VOC boxes.

    sosmaskfuse make-sos-data --source hit_uav --root ../shared/data/hit_uav --out DIR
    sosmaskfuse make-sos-data --source m3svd --root ../shared/data/m3svd_video/infrared_only \
        [--hold-out VIDEO ...] --out DIR
    sosmaskfuse make-sos-data --source roadscene --root ../shared/data/roadscene/ir \
        [--held-out-fraction 0.2] --out DIR
    sosmaskfuse make-sos-data --source boxes --root IMAGES LABELS --out DIR   (VOC xml or YOLO txt)

Writes DIR/<part>/{ir,mask,weight}/<stem>.png (parts: HIT-UAV's train/val/test split, else
train/heldout) and DIR/make_sos_data_<source>.json (counts, skipped files, settings).
`train-sosnet --data DIR/train` reads the result. The work is done by
`sosmaskfuse_core.training.sosnet.sources`; this module is its command line only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sosmaskfuse_core.training.sosnet.sources import (
    SOURCES,
    SourceError,
    make_boxes,
    make_frames,
    make_hit_uav,
    make_videos,
    save_report,
)
from sosmaskfuse_core.training.sosnet.video_labels import VideoLabelConfig


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "make-sos-data",
        help="SOS training folders from HIT-UAV, M3SVD, RoadScene, boxes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument(
        "--root",
        required=True,
        nargs="+",
        type=Path,
        help="hit_uav: the data set folder; m3svd: video folders or files; "
        "roadscene: ir/ folder; boxes (or voc): an image folder and its annotation "
        "folder, VOC xml or YOLO txt with classes.txt (all -> DIR/all)",
    )
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--hold-out",
        nargs="*",
        default=[],
        metavar="VIDEO",
        help="m3svd: videos (file stems) written to DIR/heldout instead of DIR/train",
    )
    p.add_argument(
        "--held-out-fraction",
        type=float,
        default=0.2,
        help="roadscene: seeded fraction of frames written to DIR/heldout (default 0.2)",
    )
    p.add_argument(
        "--label-every",
        type=int,
        default=VideoLabelConfig.label_every,
        help=f"m3svd: frames between labelled frames (default {VideoLabelConfig.label_every})",
    )
    p.add_argument(
        "--parts",
        nargs="*",
        default=["train", "val", "test"],
        help="hit_uav: which of the authors' splits to write (default all three)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="at most N samples (per video for m3svd)"
    )
    p.add_argument("--seed", type=int, default=118)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        if args.source == "hit_uav":
            if len(args.root) != 1:
                raise SourceError("hit_uav takes one --root")
            report = make_hit_uav(args.root[0], args.out, parts=args.parts, limit=args.limit)
        elif args.source in ("boxes", "voc"):
            if len(args.root) != 2:
                raise SourceError(f"{args.source} takes --root IMAGES ANNOTATIONS")
            report = make_boxes(args.root[0], args.root[1], args.out, limit=args.limit)
        elif args.source == "m3svd":
            cfg = VideoLabelConfig(label_every=args.label_every)
            report = make_videos(args.root, args.out, args.hold_out, cfg, limit=args.limit)
        else:
            if len(args.root) != 1:
                raise SourceError("roadscene takes one --root")
            report = make_frames(
                args.root[0], args.out, args.held_out_fraction, args.seed, limit=args.limit
            )
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = save_report(report, args.out)
    counts = ", ".join(f"{part} {n}" for part, n in sorted(report.written.items())) or "nothing"
    print(
        f"{args.source}: wrote {counts} samples to {args.out} ({len(report.skipped)} skipped; "
        f"report {path})",
        file=sys.stderr,
    )
    return 0 if report.written else 2
