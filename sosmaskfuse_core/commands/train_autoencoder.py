"""`sosmaskfuse train-autoencoder`: train the IMV-F autoencoder to reconstruct gray images.

Loss MSE(out, x) + w * (1 - MS-SSIM(out, x)) on gray levels 0..255, Adam. The paper's
settings are the defaults (batch 4, lr 1e-4, w = 100, whole images resized to 256 x 256
with nearest interpolation when `--resize 256` is given); any folder of images will do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sosmaskfuse_core.models.checkpoints import CheckpointError
from sosmaskfuse_core.training import runner
from sosmaskfuse_core.training.autoencoder import AutoencoderTrainConfig, train
from sosmaskfuse_core.training.data import (
    DataError,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    d = AutoencoderTrainConfig(images=[])
    p = subparsers.add_parser(
        "train-autoencoder",
        help="train the IMV-F autoencoder on folders of images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--images",
        nargs="+",
        required=True,
        help="folders of training images (searched recursively)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="checkpoint to write (periodically, and at the end)",
    )
    p.add_argument(
        "--val-images",
        nargs="+",
        default=[],
        help="held-out folders (default: hold out --val-fraction)",
    )
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--crop",
        type=int,
        default=None,
        help=f"random square crops of this size (default {d.crop})",
    )
    size.add_argument(
        "--resize", type=int, default=None, help="resize whole images to this square (paper: 256)"
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=d.lr_schedule)
    p.add_argument("--ssim-weight", type=float, default=d.ssim_weight)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, default=d.epochs)
    length.add_argument("--steps", type=int, default=None)
    p.add_argument(
        "--val-every", type=int, default=None, help="validate every N steps (default: each epoch)"
    )
    p.add_argument(
        "--val-limit", type=int, default=None, help="validate on at most N held-out images"
    )
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument(
        "--widths",
        type=int,
        nargs=4,
        default=list(d.widths),
        metavar="C",
        help="channels of the four levels (default: the paper's 64 112 160 208)",
    )
    p.add_argument(
        "--stem-channels",
        type=int,
        default=d.stem_channels,
        metavar="C",
        help=f"channels of the 1x1 stem (default: the paper's {d.stem_channels})",
    )
    p.add_argument(
        "--space-to-depth",
        type=int,
        choices=(1, 2, 4),
        default=d.space_to_depth,
        help="1: the paper's network; 2: every convolution on 2x2 pixel blocks (4x less work; "
        "the CPU model)",
    )
    p.add_argument(
        "--split-weight",
        type=float,
        default=d.split_weight,
        metavar="W",
        help="add W x the loss of the decoder on the summed features of the image cut by a "
        "random soft mask (what IMV-F decodes; default 0: the paper's loss alone)",
    )
    p.add_argument("--init", metavar="CKPT", help="start from these weights (same architecture)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    p.add_argument("--resume", action="store_true", help="continue the run stored in --out")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    crop = args.crop if args.crop is not None else (None if args.resize else 64)
    cfg = AutoencoderTrainConfig(
        images=list(args.images),
        val_images=list(args.val_images),
        val_fraction=args.val_fraction,
        crop=crop,
        resize=args.resize,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        ssim_weight=args.ssim_weight,
        epochs=args.epochs,
        steps=args.steps,
        val_every=args.val_every,
        val_limit=args.val_limit,
        checkpoint_every=args.checkpoint_every,
        widths=tuple(args.widths),
        stem_channels=args.stem_channels,
        space_to_depth=args.space_to_depth,
        split_weight=args.split_weight,
        init=args.init,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
    )
    try:
        meta = train(cfg, args.out, resume=args.resume)
    except (DataError, ValueError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except runner.NonFiniteLoss as exc:
        print(f"error: {exc}; stopped, the last good checkpoint is {args.out}", file=sys.stderr)
        return 3
    m = meta["metrics"]
    summary = f", held-out PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}" if m else ""
    print(
        f"trained {meta['steps']} steps ({meta['epochs']:.2f} epochs) "
        f"in {meta['train_seconds']:.0f} s{summary} -> {args.out}",
        file=sys.stderr,
    )
    return 0
