"""From a training run to shipped weights: `export-weights` and `eval-autoencoder`.

`export-weights` strips a run and optionally stores fp16; `eval-autoencoder` re-measures it.

    sosmaskfuse export-weights --run RUN.pt --out WEIGHTS.pt [--half]
    sosmaskfuse eval-autoencoder [--weights WEIGHTS.pt] --images DIR [DIR ...] [--held-out]

`eval-autoencoder --held-out` scores only the images whose stems the run held out (they are
listed in the checkpoint's metadata), so the model card's figures can be reproduced exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sosmaskfuse_core.models.checkpoints import (
    CheckpointError,
    load_autoencoder,
)
from sosmaskfuse_core.pipeline.devices import resolve_device
from sosmaskfuse_core.training.data import DataError, find_images, load_gray
from sosmaskfuse_core.training.release import export_weights


def add_parser(subparsers) -> None:
    """Registers two sub-commands: export-weights and eval-autoencoder."""
    p = subparsers.add_parser(
        "export-weights",
        help="strip a training run to a release checkpoint (optionally fp16)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--run",
        required=True,
        type=Path,
        help="checkpoint written by train-autoencoder / train-sosnet",
    )
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--half", action="store_true", help="store the weights as float16 (half the size)"
    )
    p.set_defaults(func=run_export)

    e = subparsers.add_parser(
        "eval-autoencoder",
        help="PSNR/SSIM of the autoencoder's reconstructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "--weights",
        default="",
        help='autoencoder: "auto" (default: the shipped full model on a GPU, lite on a CPU), '
        '"full", "lite", or a checkpoint',
    )
    e.add_argument(
        "--images", nargs="+", required=True, help="folders of images (searched recursively)"
    )
    e.add_argument(
        "--held-out", action="store_true", help="only the stems the training run held out"
    )
    e.add_argument("--device", default="auto")
    e.set_defaults(func=run_eval)


def run_export(args: argparse.Namespace) -> int:
    try:
        meta = export_weights(args.run, args.out, args.half)
    except (CheckpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = args.out.stat().st_size / 2**20
    print(
        f"wrote {args.out} ({size:.1f} MB, {meta['stored_as']}; "
        f"{meta.get('steps', '?')} training steps)",
        file=sys.stderr,
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from sosmaskfuse_core.models.shipped import resolve_autoencoder
    from sosmaskfuse_core.training.autoencoder import reconstruction_quality

    try:
        on_gpu = resolve_device(args.device).type == "cuda"
        weights, _ = resolve_autoencoder(args.weights, on_gpu)
        model, meta = load_autoencoder(weights)
        paths = find_images(args.images)
    except (CheckpointError, DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.held_out:
        stems = set(meta.get("data", {}).get("held_out_stems", []))
        if not stems:
            print(f"error: {weights} lists no held-out stems", file=sys.stderr)
            return 2
        paths = [p for p in paths if p.stem in stems]
    images, skipped = load_gray(paths, min_size=16)
    if not images:
        print("error: no images to score", file=sys.stderr)
        return 2
    device = resolve_device(args.device)  # checked above
    quality = reconstruction_quality(model.to(device), images, device)
    print(
        f"{weights}: PSNR {quality['psnr']:.2f} dB, SSIM {quality['ssim']:.4f} "
        f"on {quality['images']} full-resolution images"
        + (f" ({len(skipped)} skipped)" if skipped else "")
    )
    return 0
