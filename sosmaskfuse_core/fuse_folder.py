"""`sosmaskfuse fuse`: fuse every thermal/visible pair of two folders, writing masks and fused images.

Pairs are matched by file stem. A file with no partner, an unreadable file or a pair of
different sizes is reported by name and skipped; the other pairs are still written, and
the exit code is 1 if any pair failed.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import cv2

from .image_files import ImageReadError, pair_by_stem, read_image, write_image
from .devices import PRECISIONS
from .fusion import FUSION_MODES
from .pipeline import OUTPUT_SCALINGS, PipelineConfig
from .progress import Progress


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fuse", help="fuse the image pairs of two folders",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ir", required=True, type=Path, help="folder of thermal images")
    p.add_argument("--vis", required=True, type=Path, help="folder of visible images")
    p.add_argument("--out", required=True, type=Path, help="output folder (gets mask/ and fused/)")
    p.add_argument("--autoencoder", help="autoencoder checkpoint (default: the shipped weights)")
    p.add_argument("--sosnet", help="SOS network checkpoint (default: shipped, else the thermal mask)")
    p.add_argument("--mask-dir", type=Path, help="use these masks (same stems) instead of computing them")
    p.add_argument("--mask-source", choices=("auto", "sosnet", "thermal"), default="auto",
                   help="where masks come from without --mask-dir (default: auto)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--fusion-mode", choices=FUSION_MODES, default=PipelineConfig.fusion_mode)
    p.add_argument("--mu", type=float, default=PipelineConfig.mu,
                   help=f"IMV-F thermal foreground weight (default {PipelineConfig.mu})")
    p.add_argument("--mask-threshold", type=float, default=None,
                   help="binarise the mask at this probability (default: soft mask, as the paper)")
    p.add_argument("--output-scaling", choices=OUTPUT_SCALINGS, default="minmax",
                   help="minmax: the paper's per-image stretch (default); clip: the decoder's levels")
    p.add_argument("--color", action="store_true", help="write colour: fused luma + visible chroma")
    p.add_argument("--precision", choices=PRECISIONS, default=PipelineConfig.precision)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .weights import build_pipeline  # torch and the models load only when a job runs

    log = logging.getLogger("sosmaskfuse.fuse")
    folders = [args.ir, args.vis] + ([args.mask_dir] if args.mask_dir else [])
    try:
        pairing = pair_by_stem(*folders, names=("--ir", "--vis", "--mask-dir")[:len(folders)])
    except NotADirectoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        config = PipelineConfig(fusion_mode=args.fusion_mode, mu=args.mu, mask_threshold=args.mask_threshold,
                                output_scaling=args.output_scaling, precision=args.precision,
                                color_output=args.color)
        pipeline, sources = build_pipeline(args.autoencoder, args.sosnet,
                                           mask_source="external" if args.mask_dir else args.mask_source,
                                           device=args.device, config=config)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(pairing.pairs)} pairs on {pipeline.device}; {sources}", file=sys.stderr)

    failed: list[tuple[str, str]] = [(str(path), reason) for path, reason in pairing.unmatched]
    for path, reason in pairing.unmatched:
        log.warning("skipped %s: %s", path, reason)
    progress = Progress(len(pairing.pairs), "fuse")
    start = time.perf_counter()
    done = 0
    for stem, paths in pairing.pairs:
        try:
            thermal = read_image(paths[0], cv2.IMREAD_COLOR)
            visible = read_image(paths[1], cv2.IMREAD_COLOR)
            mask = read_image(paths[2], cv2.IMREAD_GRAYSCALE) if args.mask_dir else None
            if thermal.shape[:2] != visible.shape[:2]:
                raise ValueError(f"thermal {paths[0].name} is {thermal.shape[1]}x{thermal.shape[0]}, "
                                 f"visible {paths[1].name} is {visible.shape[1]}x{visible.shape[0]}")
            result = pipeline(thermal, visible, mask)
            write_image(args.out / "mask" / f"{stem}.png", result.mask_u8)
            write_image(args.out / "fused" / f"{stem}.png", result.fused)
        except (ImageReadError, ValueError, OSError, RuntimeError) as exc:
            failed.append((stem, str(exc)))
            log.warning("skipped %s: %s", stem, exc)
            progress.step(stem, ok=False)
            continue
        done += 1
        progress.step(stem)
    progress.close()
    elapsed = time.perf_counter() - start
    rate = f" ({elapsed / done:.2f} s/pair)" if done else ""
    print(f"fused {done} of {len(pairing.pairs)} pairs in {elapsed:.1f} s{rate} -> {args.out}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} failed:", file=sys.stderr)
        for what, reason in failed:
            print(f"  {what}: {reason}", file=sys.stderr)
        return 1
    return 0
