r"""`sosmaskfuse eval-mask`: score a mask source against hand-drawn masks, with cross-validation.

The scores are IoU, F-measure and MAE.

sosmaskfuse eval-mask --ir ../shared/data/tno_masks/ir --masks ../shared/data/tno_masks/mask \
        --source thermal [--cv] [--group REGEX] [--json out.json] [--set seed_rel=0.6 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from sosmaskfuse_core.evaluation.mask_quality import cross_validate, evaluate_masks, make_masker
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
        description="Score a mask source (thermal hot-object mask or global Otsu) against "
        "hand-drawn masks: IoU and F-measure (beta^2=0.3) at threshold 0.5, MAE.",
    )
    p.add_argument("--ir", required=True, help="folder of IR images")
    p.add_argument("--masks", required=True, help="folder of masks with the same file stems")
    p.add_argument(
        "--source",
        choices=("thermal", "otsu"),
        default="thermal",
        help="mask source to evaluate (default: thermal)",
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


def run(args: argparse.Namespace) -> int:
    """Run ``eval-mask`` with parsed ``args``; prints a table and returns an exit status."""
    config = (
        ThermalMaskConfig().replace(**_parse_set(args.set)) if args.set else ThermalMaskConfig()
    )
    if args.cv:
        if args.source != "thermal":
            print("--cv tunes the thermal mask; use --source thermal", file=sys.stderr)
            return 2
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
    else:
        res = evaluate_masks(
            args.ir, args.masks, make_masker(args.source, config), group=args.group
        )
        for stem, r in res["per_image"].items():
            print(
                f"{stem:>12}  iou {r['iou']:.3f}  f {r['f']:.3f}  mae {r['mae']:.3f}  "
                f"{r['ms']:.1f} ms"
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
