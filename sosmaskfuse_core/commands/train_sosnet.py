"""`sosmaskfuse train-sosnet`: train the SOS network to segment salient objects in thermal images.

The paper's settings are the defaults (docs/algorithm.md, section 3): thermal image read as
3-channel BGR, normalised, resized to 640 x 480 and collapsed to one channel; the ground
truth read as 3 channels, / 255, resized bilinearly and averaged to one channel (a soft
target); BCE-with-logits; SGD lr 1e-3, momentum 0.9, weight decay 5e-4, batch 4, 200 epochs,
lr / 10 at epochs 100 and 150, seed 118; HRNetV2-W30, optionally initialised from an ImageNet
HRNetV2-W30 checkpoint (`--init`, stem conv averaged to one input channel, classifier head
dropped, `last_layer` from PyTorch's default initialisation). Every setting can be changed.

Not from the paper: random horizontal flips (on by default, `--no-flip` turns them off; the
paper does not say whether it augments), the held-out validation (IoU, F-measure with
beta^2 = 0.3 and MAE, the probability thresholded at 0.5, at the mask's own resolution) and
the lighter networks for CPU training (`--config small`, `--width N`, ...).

Data folders: DIR/Inf + DIR/GT (the ROAD layout, same file names) or DIR/ir + DIR/mask,
matched by file stem, with optional per-pixel loss weights DIR/weight (weight x 255, as
`make-sos-data` writes them). A file without a partner is reported by name and skipped.
Several --data folders are sampled by --data-weights; --scale-range / --extra-scale-ranges /
--aspect-jitter cut random views, --iou-loss adds a soft-IoU term (none of them in the paper).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sosmaskfuse_core.models.checkpoints import CheckpointError
from sosmaskfuse_core.training import runner
from sosmaskfuse_core.training.data import DataError
from sosmaskfuse_core.training.sosnet import PRESETS, SOSNetTrainConfig, train


def add_parser(subparsers) -> argparse.ArgumentParser:
    d = SOSNetTrainConfig(data="")
    p = subparsers.add_parser(
        "train-sosnet",
        help="train the SOS network on thermal images and masks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="DIR",
        help="folder(s) with Inf/ + GT/ (ROAD) or ir/ + mask/ (+ optional weight/: per-pixel "
        "loss weight x 255); validation splits only the first, the others only train",
    )
    p.add_argument(
        "--data-weights",
        type=float,
        nargs="+",
        default=None,
        metavar="W",
        help="sampling weight of each --data folder (default: proportional to its size)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="checkpoint to write (periodically, and at the end)",
    )
    p.add_argument(
        "--init",
        default=None,
        help="start from these weights: ImageNet HRNetV2 (stem averaged to 1 channel, head "
        "dropped), the authors' SOS network file or one of ours (default: from scratch)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run stored in --out")
    g = p.add_argument_group("validation (not in the paper)")
    v = g.add_mutually_exclusive_group()
    v.add_argument("--val-data", default=None, help="held-out folder (same layouts as --data)")
    v.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        help=f"hold out this fraction of --data, by seed (default {d.val_fraction}; 0: no "
        f"validation; ignored with --folds)",
    )
    g.add_argument(
        "--folds", type=int, default=None, help="k-fold cross-validation: K folds (by seed)"
    )
    g.add_argument("--fold", type=int, default=None, help="the fold held out, 0 .. K-1")
    g.add_argument(
        "--val-every", type=int, default=d.val_every, help="validate every N epochs (default 1)"
    )
    a = p.add_argument_group(
        "network (default: the paper's HRNetV2-W30, or the --init/--resume file's)"
    )
    a.add_argument(
        "--config",
        choices=sorted(PRESETS),
        default=None,
        help="paper: HRNetV2-W30; small: stem 32, 1 bottleneck, 1 module per stage, 2 blocks "
        "per branch, width 18 (for CPU training)",
    )
    a.add_argument(
        "--width", type=int, default=None, help="branch widths W, 2W, 4W, 8W (paper 30)"
    )
    a.add_argument("--stem-channels", type=int, default=None)
    a.add_argument("--layer1-blocks", type=int, default=None)
    a.add_argument("--stage-modules", type=int, nargs=3, default=None, metavar=("S2", "S3", "S4"))
    a.add_argument("--blocks-per-branch", type=int, default=None)
    t = p.add_argument_group("training (defaults: the paper's)")
    t.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=list(d.size),
        metavar=("W", "H"),
        help="network input size (default 640 480; e.g. 320 256 on a CPU)",
    )
    t.add_argument(
        "--scale-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="random zoom of each view, log-uniform (e.g. 0.7 2; default: the whole frame)",
    )
    t.add_argument(
        "--extra-scale-ranges",
        nargs="+",
        default=None,
        metavar="LO:HI",
        help="zoom range per extra --data folder (default: --scale-range)",
    )
    t.add_argument(
        "--aspect-jitter",
        type=float,
        default=0.0,
        help="random aspect-ratio change of each view, up to (1 + J)^+-1 (default 0)",
    )
    t.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="with several folders, weights or zoom: steps per epoch (default: all images once)",
    )
    t.add_argument(
        "--iou-loss",
        type=float,
        default=0.0,
        help="add this weight x a soft-IoU loss to the BCE (default 0: the paper's BCE only)",
    )
    t.add_argument(
        "--no-flip",
        dest="flip",
        action="store_false",
        help="no random horizontal flips (the paper does not say whether it flips)",
    )
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--momentum", type=float, default=d.momentum)
    t.add_argument("--weight-decay", type=float, default=d.weight_decay)
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument(
        "--milestones",
        type=int,
        nargs="*",
        default=list(d.milestones),
        help="epochs at which the lr is multiplied by --lr-gamma (default 100 150)",
    )
    t.add_argument("--lr-gamma", type=float, default=d.lr_gamma)
    t.add_argument(
        "--pos-weight",
        type=float,
        default=None,
        help="BCE weight of salient pixels (default: none, as the paper)",
    )
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="steps between checkpoints (also at each validation and at the end)",
    )
    t.add_argument("--device", default=d.device)
    t.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    p.set_defaults(func=run)
    return p


def _scale_ranges(items: list[str] | None) -> tuple[tuple[float, float], ...] | None:
    """``LO:HI`` texts -> ranges; ValueError naming the option for anything else."""
    if not items:
        return None
    try:
        ranges = tuple(tuple(float(v) for v in r.split(":")) for r in items)
    except ValueError:
        ranges = ((),)
    if any(len(r) != 2 for r in ranges):
        raise ValueError(f"--extra-scale-ranges {' '.join(items)}: expected LO:HI each")
    return ranges  # type: ignore[return-value]


def config_from_args(args: argparse.Namespace) -> SOSNetTrainConfig:
    return SOSNetTrainConfig(
        data=args.data[0],
        extra_data=tuple(args.data[1:]),
        data_weights=tuple(args.data_weights) if args.data_weights else None,
        scale_range=tuple(args.scale_range) if args.scale_range else None,
        extra_scale_ranges=_scale_ranges(args.extra_scale_ranges),
        aspect_jitter=args.aspect_jitter,
        steps_per_epoch=args.steps_per_epoch,
        iou_loss=args.iou_loss,
        val_data=args.val_data,
        val_fraction=args.val_fraction,
        folds=args.folds,
        fold=args.fold,
        size=tuple(args.size),
        config=args.config,
        width=args.width,
        stem_channels=args.stem_channels,
        layer1_blocks=args.layer1_blocks,
        stage_modules=tuple(args.stage_modules) if args.stage_modules else None,
        blocks_per_branch=args.blocks_per_branch,
        init=args.init,
        flip=args.flip,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        epochs=args.epochs,
        milestones=tuple(args.milestones),
        lr_gamma=args.lr_gamma,
        pos_weight=args.pos_weight,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
    )


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        meta = train(cfg, args.out, resume=args.resume)
    except (DataError, ValueError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except runner.NonFiniteLoss as exc:
        kept = (
            f"the last good checkpoint is {args.out}"
            if Path(args.out).is_file()
            else "no checkpoint was written"
        )
        print(f"error: {exc}; stopped, {kept}", file=sys.stderr)
        return 3
    m = meta["metrics"]
    summary = (
        f", held-out IoU {m['iou']:.4f}, F-measure {m['f_measure']:.4f}, MAE {m['mae']:.4f}"
        if "iou" in m
        else ""
    )
    print(
        f"trained {meta['steps']} steps ({meta['epochs']:.2f} epochs) "
        f"in {meta['train_seconds']:.0f} s{summary} -> {args.out}",
        file=sys.stderr,
    )
    return 0
