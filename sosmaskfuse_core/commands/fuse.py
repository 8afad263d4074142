"""`sosmaskfuse fuse`: fuse each thermal/visible pair of two folders; write masks and fused images.

    sosmaskfuse fuse --ir IR_DIR --vis VIS_DIR --out OUT_DIR [--mask-dir DIR] [node parameters]

Pairs are matched by file stem. With a homography (`--homography` or `--params-file` with the
file `sosmaskfuse calibrate` wrote) the thermal image is registered onto the visible one and the
two may differ in size. A file with no partner, an unreadable file (not a regular file, above
--max-input-pixels by its header or its size, not an image) or, without a homography, a pair of
different sizes is reported by name and skipped; the other pairs are still written, and the exit
code is 1 if any pair failed. A 16-bit single-channel thermal file holds raw counts and goes
through the thermal gain control (--thermal-agc), as a mono16 message does. `--mask-dir` uses
masks of the same stems instead of computing them (mask source `topic`: masks given with each
pair).

Nothing starts (exit code 2) when a folder is missing or holds no image files, when two of the
folders are one, or when --out (or its mask/ or fused/) is a file or cannot be written.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from sosmaskfuse_core.commands.options import add_setting_options, setting_values
from sosmaskfuse_core.formats.image_files import list_images, pair_by_stem
from sosmaskfuse_core.pipeline.builder import build_stage
from sosmaskfuse_core.pipeline.devices import retain_freed_host_memory, set_cpu_threads
from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.settings import FUSE
from sosmaskfuse_core.tools.fuse_folder import fuse_folder

log = logging.getLogger("sosmaskfuse.fuse")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `fuse`."""
    p = subparsers.add_parser(
        "fuse",
        help="fuse the image pairs of two folders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ir", required=True, type=Path, help="folder of thermal images")
    p.add_argument("--vis", required=True, type=Path, help="folder of visible images")
    p.add_argument("--out", required=True, type=Path, help="output folder (gets mask/ and fused/)")
    p.add_argument(
        "--mask-dir", type=Path, help="use these masks (same stems) instead of computing them"
    )
    add_setting_options(p, FUSE)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run `fuse` and return its exit code.

    0 when every pair was written, 1 when some were skipped, 2 when nothing could start.
    """
    folders = [args.ir, args.vis] + ([args.mask_dir] if args.mask_dir else [])
    names = ("--ir", "--vis", "--mask-dir")[: len(folders)]
    try:
        values = setting_values(args, FUSE)  # the options (and --params-file) first: no I/O
        check_folders(folders, names, args.out)
        pairing = pair_by_stem(*folders, names=names)
        if not pairing.pairs:
            for path, reason in pairing.unmatched:
                print(f"  {path}: {reason}", file=sys.stderr)
            raise ValueError(f"no pairs: no file stem is in all of {', '.join(names)}")
        if args.mask_dir:
            values["mask_source"] = "topic"
        elif values["mask_source"] == "topic":
            raise ValueError("mask_source 'topic' takes its masks from --mask-dir")
        stage, sources = build_stage(values)
        make_out(args.out)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    set_cpu_threads(values["cpu_threads"])
    if stage.pipeline.device.type == "cpu":
        retain_freed_host_memory()  # reuse freed buffers: no page faults per layer
    where = f"{stage.pipeline.device}, {stage.pipeline.backend.name} backend"
    print(f"{len(pairing.pairs)} pairs on {where}; {sources}", file=sys.stderr)
    for path, reason in pairing.unmatched:
        log.warning("skipped %s: %s", path, reason)
    progress = Progress(len(pairing.pairs), "fuse")

    done_at: list[float] = []

    def on_pair(stem: str, ok: bool) -> None:
        done_at.append(time.perf_counter())
        progress.step(stem, ok=ok)

    start = time.perf_counter()
    report = fuse_folder(pairing, stage, args.out, on_pair, values["max_input_pixels"])
    progress.close()
    elapsed = time.perf_counter() - start
    rate = f" ({elapsed / report.fused:.2f} s/pair" if report.fused else ""
    if len(done_at) > 2:  # the first pair also pays for one-time set-up (kernels, buffers)
        rate += f"; median after the first: {statistics.median(np.diff(done_at)):.3g} s"
    rate += ")" if rate else ""
    print(
        f"fused {report.fused} of {report.total} pairs in {elapsed:.1f} s{rate} -> {args.out}",
        file=sys.stderr,
    )
    if report.failed:
        print(f"{len(report.failed)} failed:", file=sys.stderr)
        for what, reason in report.failed:
            print(f"  {what}: {reason}", file=sys.stderr)
        return 1
    return 0


def check_folders(folders: list[Path], names: tuple[str, ...], out: Path) -> None:
    """Refuse what would make the run useless before anything is loaded (ValueError, OSError).

    Each input folder exists and holds image files, no two inputs are one folder, and neither
    `out` nor its mask/ or fused/ is a file.
    """
    for folder, name in zip(folders, names):
        if not list_images(folder):  # NotADirectoryError (an OSError) for a missing folder
            raise ValueError(f"{name} {folder}: no image files in this folder")
    for i, (a, name_a) in enumerate(zip(folders, names)):
        for b, name_b in zip(folders[i + 1 :], names[i + 1 :]):
            if os.path.samefile(a, b):
                raise ValueError(f"{name_a} and {name_b} are the same folder ({a})")
    for path in (out, out / "mask", out / "fused"):
        if path.exists() and not path.is_dir():
            raise ValueError(f"--out: {path} is a file, not a folder")


def make_out(out: Path) -> None:
    """Create `out` (and its parents); check that it can be written before a pair is fused."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"--out {out}: cannot create it: {exc.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: not writable")
