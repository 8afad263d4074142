"""The `sosmaskfuse eval` sub-command: fusion metrics of fused-image folders against their sources.

    sosmaskfuse eval --ir DIR --vis DIR --fused DIR [--fused DIR ...] [--csv F] [--markdown F]
                     [--per-image]

Each ``--fused`` folder holds one method's results; its name is the method's name. Every fused
image is paired by file stem with the infrared and visible image of the same stem, and all
three are read as 8-bit gray. The table has one row per method (means over its images, with
``n`` images), and with ``--per-image`` also one row per image. Missing partners, size
mismatches and unreadable files are reported on stderr by name; that image is skipped and the
exit code is 1. Bad folders give exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from sosmaskfuse_core.evaluation.fusion_quality import (
    Row,
    evaluate_image,
    format_markdown,
    mean_row,
    write_csv,
)
from sosmaskfuse_core.formats.image_files import list_images, single

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 2


def method_names(folders: Sequence[Path]) -> list[str]:
    """Folder names as method names; the folders as given where two names coincide."""
    names = [folder.resolve().name for folder in folders]
    return [str(folder) if names.count(name) > 1 else name for folder, name in zip(folders, names)]


def run(args: argparse.Namespace) -> int:
    """Run `sosmaskfuse eval`; returns the exit code (0 ok, 1 images skipped, 2 bad folders)."""
    folders = [("--ir", args.ir), ("--vis", args.vis)] + [("--fused", f) for f in args.fused]
    missing = [f"{flag} {folder}" for flag, folder in folders if not folder.is_dir()]
    if missing:
        print("error: not a folder: " + ", ".join(missing), file=sys.stderr)
        return EXIT_USAGE
    ir_images, vis_images = list_images(args.ir), list_images(args.vis)
    fused_images = [list_images(folder) for folder in args.fused]
    total = sum(len(images) for images in fused_images)
    done = skipped = 0
    rows: list[Row] = []
    for method, folder, images in zip(method_names(args.fused), args.fused, fused_images):
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

    table = format_markdown(rows, args.per_image)
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")
    if args.csv:
        write_csv(rows, args.csv, args.per_image)
    print(table, end="")
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
    parser.add_argument("--vis", type=Path, required=True, metavar="DIR", help="visible sources")
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
    parser.set_defaults(func=run)
    return parser
