r"""`sosmaskfuse eval-mask`: score a mask source against hand masks, boxes or over video frames.

Against hand-drawn masks the scores are IoU, F-measure and MAE (with cross-validation of the
thermal mask); against VOC boxes, box recall and precision; over video frames, the temporal
stability (`sosmaskfuse_core.evaluation.weak_eval`). Box recall is printed per class and per
size (small < 32 px tall, medium, large >= 96 px); boxes are VOC xml or YOLO txt files.

sosmaskfuse eval-mask --ir ../shared/data/tno_masks/ir --masks ../shared/data/tno_masks/mask \
        --source thermal [--cv] [--group REGEX] [--json out.json] [--set seed_rel=0.6 ...]
sosmaskfuse eval-mask --ir IR --masks MASKS --source sosnet --sosnet CKPT [--held-out]
sosmaskfuse eval-mask --ir ../shared/data/hit_uav/images \
        --boxes ../shared/data/hit_uav/annotations --stems ../shared/data/hit_uav/val.txt \
        --source sosnet --sosnet CKPT
sosmaskfuse eval-mask --ir DEVSET/ir --boxes DEVSET/labels --source ensemble   # YOLO + classes.txt
sosmaskfuse eval-mask --ir FRAMES --masks MASKS --group '^(\d+_\d+)_' --stability ...
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from sosmaskfuse_core.evaluation.mask_quality import (
    GainedMasker,
    cross_validate,
    evaluate_masks,
    make_masker,
)
from sosmaskfuse_core.evaluation.weak_eval import evaluate_boxes, evaluate_stability, read_stems
from sosmaskfuse_core.formats.box_folder import BOX_FORMATS, BoxFolder
from sosmaskfuse_core.models.shipped import SHIPPED_SOSNET, shipped_or_none
from sosmaskfuse_core.thermal.hot_object_mask import ThermalMaskConfig


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    fields = {f.name: f for f in ThermalMaskConfig.__dataclass_fields__.values()}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(
                f"--set expects FIELD=VALUE with FIELD one of {sorted(fields)}, got {item!r}"
            )
        default = getattr(ThermalMaskConfig(), key)
        if isinstance(default, bool):
            out[key] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            out[key] = (
                type(default)(float(value)) if isinstance(default, int) else type(default)(value)
            )
    return out


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval-mask`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "eval-mask",
        help="score salient-object masks made from IR images against hand masks",
        description="Score a mask source (thermal hot-object mask, global Otsu or an SOS "
        "network) against hand-drawn masks: IoU and F-measure (beta^2=0.3) at threshold 0.5, "
        "MAE; against VOC boxes: box recall and precision; over video frames: stability.",
    )
    p.add_argument("--ir", required=True, help="folder of IR images")
    p.add_argument("--masks", default=None, help="folder of masks with the same file stems")
    p.add_argument(
        "--boxes",
        default=None,
        metavar="DIR",
        help="instead of --masks: boxes <stem>.xml (VOC) or <stem>.txt (YOLO); prints box "
        "recall per class and size, and box precision",
    )
    p.add_argument(
        "--box-format",
        choices=BOX_FORMATS,
        default="auto",
        help="with --boxes: yolo, voc or auto (voc when the folder has only .xml files)",
    )
    p.add_argument(
        "--class-names",
        metavar="NAMES",
        default=None,
        help="with --boxes: YOLO class names in id order, comma-separated (default: "
        "DIR/classes.txt, else the ids)",
    )
    p.add_argument(
        "--classes",
        metavar="NAMES",
        default=None,
        help="with --boxes: recall of these classes only (names or YOLO ids, comma-separated)",
    )
    p.add_argument(
        "--stems",
        default=None,
        metavar="FILE",
        help="only the stems listed in FILE (e.g. val.txt)",
    )
    p.add_argument(
        "--held-out",
        action="store_true",
        help="with --source sosnet: only the stems the checkpoint's training run held out",
    )
    p.add_argument(
        "--cover",
        type=float,
        default=0.3,
        help="with --boxes: a box is found when the mask covers this share of it (0.3)",
    )
    p.add_argument(
        "--stability",
        action="store_true",
        help="also (or, without --masks, only) the mean IoU of consecutive frames' masks, per "
        "video (stems VIDEO_FRAME)",
    )
    p.add_argument(
        "--source",
        choices=("thermal", "otsu", "sosnet", "ensemble"),
        default="thermal",
        help="mask source to evaluate (default: thermal); ensemble: the mean of the SOS "
        "network's and the classical mask (the default of mask_source=auto with the shipped "
        "network)",
    )
    p.add_argument(
        "--sosnet",
        default=None,
        metavar="CKPT",
        help="with --source sosnet/ensemble: the checkpoint (default: the shipped network)",
    )
    p.add_argument("--device", default="cpu", help="with --source sosnet (default cpu)")
    p.add_argument(
        "--ir-gain",
        type=float,
        default=1.0,
        metavar="G",
        help="score the masks of the IR images times G (e.g. 0.3: a dim 8-bit camera)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a ThermalMaskConfig field (repeatable)",
    )
    p.add_argument(
        "--cv",
        action="store_true",
        help="leave-one-out cross-validate the thermal mask over DEFAULT_GRID",
    )
    p.add_argument("--folds", type=int, default=None, help="k-fold instead of leave-one-out")
    p.add_argument(
        "--group",
        default=None,
        metavar="REGEX",
        help="group images by this regular expression on the file stem (first "
        "capture group, else the match): per-group means, and with --cv "
        "leave-one-group-out folds",
    )
    p.add_argument("--json", default=None, help="also write the full result as JSON here")
    p.set_defaults(func=run)
    return p


def _check(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of options, or None."""
    if args.source in ("sosnet", "ensemble") and not args.sosnet:
        args.sosnet = shipped_or_none(SHIPPED_SOSNET)
        if not args.sosnet:
            return f"--source {args.source} needs a checkpoint (none ships): --sosnet CKPT"
    if args.held_out and args.source not in ("sosnet", "ensemble"):
        return "--held-out needs --source sosnet"
    if not args.ir_gain > 0:
        return f"--ir-gain {args.ir_gain}: must be positive"
    if args.cv and args.source != "thermal":
        return "--cv tunes the thermal mask; use --source thermal"
    if args.masks is None and args.boxes is None and not args.stability:
        return "give --masks, --boxes or --stability"
    return None


def _print_boxes(b: dict[str, Any], source: str) -> None:
    per_class = ", ".join(
        f"{k} {v['recall']:.3f} (n={v['boxes']})" for k, v in b["recall_per_class"].items()
    )
    print(
        f"box recall {b['recall']:.3f}, box precision {b['precision']:.3f} on "
        f"{b['images']} images, {b['boxes']} boxes (cover >= {b['cover']}; "
        f"{source}); per class: {per_class}"
    )
    rows = [("all", "all", b["boxes"], b["recall"])]
    rows += [("all", k, v["boxes"], v["recall"]) for k, v in b["recall_per_size"].items()]
    for cls, v in b["recall_per_class"].items():
        rows.append((cls, "all", v["boxes"], v["recall"]))
        for key, kv in b["recall_per_class_size"].items():
            if key.rpartition("/")[0] == cls:
                rows.append((cls, key.rpartition("/")[2], kv["boxes"], kv["recall"]))
    print("\n| class | size | boxes | recall |\n|---|---|---:|---:|")
    for cls, size, n, recall in rows:
        print(f"| {cls} | {size} | {n} | {recall:.3f} |")
    print(
        "\n(box precision: the share of mask pixels inside some box, any class; a mask pixel "
        "has no class or size, so it is not split)"
    )
    for reason in b["skipped"]:
        print(f"skipped {reason}", file=sys.stderr)


def _without_masks(args: argparse.Namespace, masker) -> dict[str, Any]:
    """``--boxes`` and/or ``--stability`` without ``--masks``."""
    res: dict[str, Any] = {}
    if args.boxes:
        names = args.class_names.split(",") if args.class_names else None
        labels = BoxFolder(args.boxes, args.box_format, names)
        classes = args.classes.split(",") if args.classes else None
        res["boxes"] = evaluate_boxes(args.ir, labels, masker, args.stems, args.cover, classes)
        _print_boxes(res["boxes"], args.source)
    if args.stability:
        res["stability"] = st = evaluate_stability(args.ir, masker)
        for g, r in st["per_group"].items():
            print(f"{'video ' + g:>24}  stability {r['stability']:.3f}  ({r['pairs']} pairs)")
        print(
            f"temporal stability {st['stability']:.3f} (mean IoU of consecutive frames' "
            f"masks, mean over videos; {args.source})"
        )
    return res


def _cross_validated(args: argparse.Namespace, config: ThermalMaskConfig) -> dict[str, Any]:
    res = cross_validate(args.ir, args.masks, base=config, folds=args.folds, group=args.group)
    for stem, r in res["per_image"].items():
        print(
            f"{stem:>12}  iou {r['iou']:.3f}  f {r['f']:.3f}  mae {r['mae']:.3f}  "
            f"params {r['params']}"
        )
    m = res["cv"]
    print(
        f"{'CV mean':>12}  iou {m['iou']:.3f}  f {m['f']:.3f}  mae {m['mae']:.3f}  "
        f"({res['folds']} folds, {res['n_configs']} configs, n={res['n']})"
    )
    b = res["base"]
    print(
        f"{'given config':>12}  iou {b['iou']:.3f}  f {b['f']:.3f}  mae {b['mae']:.3f}  "
        f"(not cross-validated)"
    )
    print(f"chosen on all images: {res['chosen_on_all']}")
    for g, r in res.get("per_group", {}).items():
        b = res["base_per_group"][g]
        print(
            f"{'group ' + g:>24}  CV iou {r['iou']:.3f}  given config iou {b['iou']:.3f}"
            f"  (n={r['n']})"
        )
    return res


def _against_masks(args: argparse.Namespace, masker) -> dict[str, Any]:
    stems = read_stems(args.stems)
    if args.held_out:
        held = set(getattr(masker, "meta", {}).get("data", {}).get("held_out_stems", []))
        if not held:
            raise ValueError(f"--held-out: {args.sosnet} lists no held-out stems")
        stems = held if stems is None else stems & held
    res = evaluate_masks(args.ir, args.masks, masker, group=args.group, stems=stems)
    if args.stability:
        res["stability"] = evaluate_stability(args.ir, masker)
        print(f"temporal stability {res['stability']['stability']:.3f} (mean over videos)")
    for stem, r in res["per_image"].items():
        print(
            f"{stem:>12}  iou {r['iou']:.3f}  f {r['f']:.3f}  mae {r['mae']:.3f}  {r['ms']:.1f} ms"
        )
    m = res["mean"]
    for g, r in res.get("per_group", {}).items():
        print(
            f"{'group ' + g:>24}  iou {r['iou']:.3f}  f {r['f']:.3f}  mae {r['mae']:.3f}"
            f"  (n={r['n']})"
        )
    print(
        f"{'mean':>12}  iou {m['iou']:.3f}  f {m['f']:.3f}  mae {m['mae']:.3f}  "
        f"({args.source}, n={res['n']}, {res['ms_per_image']:.1f} ms/image)"
    )
    return res


def run(args: argparse.Namespace) -> int:
    """Run ``eval-mask`` with parsed ``args``; prints a table and returns an exit status."""
    problem = _check(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    # a bad --set raises ValueError naming the fields (as before the other sources came)
    config = (
        ThermalMaskConfig().replace(**_parse_set(args.set)) if args.set else ThermalMaskConfig()
    )
    try:
        if args.masks is not None and args.cv:
            res = _cross_validated(args, config)
        else:
            masker = make_masker(args.source, config, args.sosnet, args.device)
            if args.ir_gain != 1.0:
                masker = GainedMasker(masker, args.ir_gain)
            if args.masks is None:
                res = _without_masks(args, masker)
            else:
                res = _against_masks(args, masker)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1, default=str)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Stand-alone entry point.

    ``python -m sosmaskfuse_core.commands.eval_mask --ir ... --masks ...``.
    """
    parser = argparse.ArgumentParser(prog="sosmaskfuse")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "eval-mask":
        argv = ["eval-mask", *argv]
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
