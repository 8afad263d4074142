"""The `sosmaskfuse eval` sub-command: fusion metrics of fused-image folders against their sources.

    sosmaskfuse eval --ir DIR --vis DIR --fused DIR [--fused DIR ...] [--csv F] [--markdown F]
                     [--per-image]
    sosmaskfuse eval --ir DIR --fused DIR [...] --boxes DIR [--box-format yolo|voc]
                     [--class-names person,bicycle,car] [--classes person,car] [--box-csv F]

Each ``--fused`` folder holds one method's results; its name is the method's name. Every fused
image is paired by file stem with the infrared and visible image of the same stem, and all
three are read as 8-bit gray. The table has one row per method (means over its images, with
``n`` images), and with ``--per-image`` also one row per image. Missing partners, size
mismatches and unreadable files are reported on stderr by name; that image is skipped and the
exit code is 1. Bad folders give exit code 2.

With ``--boxes`` (YOLO txt or VOC xml per image stem) it also prints the thermal target
contrast kept box by box (`sosmaskfuse_core.evaluation.box_contrast`, the definition of
../shared/tools/box_contrast.py): per class and per size (small < 32 px tall, medium, large
>= 96 px) the boxes that stand out in the IR image, the shares kept (TCR >= 0.5) and inverted
(TCR < 0) and the median TCR, for each fused folder. Without ``--vis`` only this table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from sosmaskfuse_core.evaluation import box_contrast
from sosmaskfuse_core.evaluation.fusion_quality import (
    Row,
    evaluate_image,
    format_markdown,
    mean_row,
    write_csv,
)
from sosmaskfuse_core.formats.box_folder import BOX_FORMATS, BoxFolder
from sosmaskfuse_core.formats.image_files import list_images, single
from sosmaskfuse_core.formats.voc_boxes import BoxFileError

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2


def method_names(folders: Sequence[Path]) -> list[str]:
    """Folder names as method names; the folders as given where two names coincide."""
    names = [Path(os.path.abspath(folder)).name for folder in folders]  # links keep their name
    return [str(folder) if names.count(name) > 1 else name for folder, name in zip(folders, names)]


def fusion_metrics(args: argparse.Namespace, methods: Sequence[str]) -> tuple[str, int]:
    """The metrics table of every ``--fused`` folder; the number of images or folders skipped."""
    ir_images, vis_images = list_images(args.ir), list_images(args.vis)
    fused_images = [list_images(folder) for folder in args.fused]
    total = sum(len(images) for images in fused_images)
    done = skipped = 0
    rows: list[Row] = []
    for method, folder, images in zip(methods, args.fused, fused_images):
        if not images:
            print(f"error: {method}: no images in {folder}", file=sys.stderr)
            skipped += 1
        image_rows = []
        for stem in images:
            done += 1
            print(f"[{done}/{total}] {method}/{stem}", file=sys.stderr, flush=True)
            try:
                values = evaluate_image(
                    single(images, stem, "fused", folder),
                    single(ir_images, stem, "infrared", args.ir),
                    single(vis_images, stem, "visible", args.vis),
                )
            except ValueError as error:
                print(f"error: {method}/{stem}: {error}; skipped", file=sys.stderr)
                skipped += 1
                continue
            image_rows.append(Row(method, stem, 1, values))
        rows.extend(image_rows if args.per_image else [])
        rows.append(mean_row(method, image_rows))
    if args.csv:
        write_csv(rows, args.csv, args.per_image)
    return format_markdown(rows, args.per_image), skipped


def box_table(args: argparse.Namespace, methods: Sequence[str]) -> tuple[str, int]:
    """The box-contrast table of every ``--fused`` folder and the number of problems."""
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    labels = BoxFolder(args.boxes, args.box_format, names)
    classes = labels.class_filter(args.classes.split(",")) if args.classes else None
    if not labels.stems():
        raise ValueError(f"no {labels.format} annotation files in {args.boxes}")
    config = box_contrast.BoxContrastConfig(min_contrast=args.min_contrast)
    results, problems = {}, 0
    for method, folder in zip(methods, args.fused):
        found = box_contrast.evaluate_folder(folder, args.ir, labels, classes, config)
        for error in found.errors:
            print(f"error: {method}/{error}; its boxes left out", file=sys.stderr)
        problems += len(found.errors)
        print(
            f"{method}: {found.images} images, {len(found.tcrs)} boxes with |IR contrast| >= "
            f"{config.min_contrast:g}, {found.left_out} left out (flat in the IR image or "
            f"under {config.min_side} px)",
            file=sys.stderr,
        )
        results[method] = found.tcrs
    if found.no_image:
        print(
            f"note: {len(found.no_image)} annotation file(s) in {args.boxes} have no image in "
            f"{args.ir} (e.g. {found.no_image[0]})",
            file=sys.stderr,
        )
    if args.box_csv:
        box_contrast.write_box_csv(results, args.box_csv)
    what = f"{labels.format} boxes of {args.boxes}" + (
        f", classes {', '.join(sorted(classes))}" if classes else ""
    )
    return (
        f"Thermal target contrast kept per box ({what}; kept: TCR >= 0.5, inverted: TCR < 0)\n\n"
        + box_contrast.format_markdown(results, config),
        problems,
    )


def run(args: argparse.Namespace) -> int:
    """Run `sosmaskfuse eval`; returns the exit code (0 ok, 1 images skipped, 2 bad folders)."""
    folders = [("--ir", args.ir)] + [("--fused", f) for f in args.fused]
    folders += [("--vis", args.vis)] if args.vis else []
    folders += [("--boxes", args.boxes)] if args.boxes else []
    missing = [f"{flag} {folder}" for flag, folder in folders if not folder.is_dir()]
    if missing:
        print("error: not a folder: " + ", ".join(missing), file=sys.stderr)
        return EXIT_USAGE
    if not args.vis and not args.boxes:
        print("error: give --vis (fusion metrics) and/or --boxes (box contrast)", file=sys.stderr)
        return EXIT_USAGE
    methods = method_names(args.fused)
    tables, skipped = [], 0
    if args.vis:
        table, count = fusion_metrics(args, methods)
        tables.append(table)
        skipped += count
    if args.boxes:
        try:
            table, count = box_table(args, methods)
        except (ValueError, BoxFileError) as exc:
            print(f"error: --boxes: {exc}", file=sys.stderr)
            return EXIT_USAGE
        tables.append(table)
        skipped += count
    text = "\n".join(tables)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    print(text, end="")
    if skipped:
        print(f"error: {skipped} image(s) or folder(s) skipped, see above", file=sys.stderr)
        return EXIT_SKIPPED
    return EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `eval` sub-command on ``subparsers`` (``func=run``); returns its parser."""
    parser = subparsers.add_parser(
        "eval",
        help="fusion-quality metrics of folders of fused images",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--ir", type=Path, required=True, metavar="DIR", help="infrared sources")
    parser.add_argument(
        "--vis", type=Path, metavar="DIR", help="visible sources (needed for the fusion metrics)"
    )
    parser.add_argument(
        "--fused",
        type=Path,
        required=True,
        action="append",
        metavar="DIR",
        help="fused images of one method (the folder name); repeat for several",
    )
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write the table as CSV")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the markdown table")
    parser.add_argument("--per-image", action="store_true", help="also one row per image")
    boxes = parser.add_argument_group("box contrast (issue 19: every thermal target kept)")
    boxes.add_argument(
        "--boxes",
        type=Path,
        metavar="DIR",
        help="labelled boxes of the IR images, one file per stem: prints the thermal target "
        "contrast kept per class and size",
    )
    boxes.add_argument(
        "--box-format",
        choices=BOX_FORMATS,
        default="auto",
        help="yolo (txt), voc (xml) or auto (voc when the folder has only .xml files)",
    )
    boxes.add_argument(
        "--class-names",
        metavar="NAMES",
        help="YOLO class names in id order, comma-separated (default: DIR/classes.txt, "
        "else the ids)",
    )
    boxes.add_argument(
        "--classes",
        metavar="NAMES",
        help="only these classes, comma-separated names or YOLO ids (default: all but DontCare)",
    )
    boxes.add_argument(
        "--min-contrast",
        type=float,
        default=box_contrast.BoxContrastConfig.min_contrast,
        metavar="LEVELS",
        help="|IR contrast| a box needs to count, gray levels (default: %(default)s)",
    )
    boxes.add_argument("--box-csv", type=Path, metavar="FILE", help="write every box's TCR as CSV")
    parser.set_defaults(func=run)
    return parser
