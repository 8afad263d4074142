"""Evaluate salient-object masks made from thermal images against hand-drawn masks.

``evaluate_masks(ir_dir, mask_dir, masker)`` runs a masker (any callable thermal -> soft mask in
[0, 1]) on every IR image that has a mask with the same file stem and scores it with
:mod:`sosmaskfuse_core.mask_metrics` (IoU and F-measure with beta^2 = 0.3 after thresholding
the soft mask at 0.5; MAE on the soft mask). ``cross_validate(...)`` tunes
:class:`~sosmaskfuse_core.thermal_mask.ThermalMaskConfig` fields over a small grid with
leave-one-out (or k-fold) cross-validation and reports held-out figures only.

It is also the ``sosmaskfuse eval-mask`` sub-command (``add_parser`` / ``run``)::

    sosmaskfuse eval-mask --ir ../shared/data/tno_masks/ir --masks ../shared/data/tno_masks/mask \\
        --source thermal [--cv] [--json out.json] [--set seed_rel=0.6 ...]

or, without the console script, ``python -m sosmaskfuse_core.mask_eval --ir ... --masks ...``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import cv2
import numpy as np

from .image_files import pair_by_stem
from .mask_metrics import f_measure, iou, mae
from .thermal_mask import ThermalHotObjectMasker, ThermalMaskConfig

__all__ = ["DEFAULT_GRID", "Masker", "find_pairs", "read_thermal", "read_mask",
           "otsu_mask", "make_masker", "evaluate_masks", "cross_validate", "add_parser", "run",
           "main"]


#: Grid searched by :func:`cross_validate` (and ``eval-mask --cv``): the selection
#: parameters of the thermal mask. Everything else keeps its default.
DEFAULT_GRID: dict[str, list[Any]] = {
    "seed_rel": [0.6, 0.7, 0.8],
    "grow_rel": [0.3, 0.4, 0.5],
    "grow_area": [10.0, 20.0, 50.0],
    "border_penalty": [0.6, 0.8, 1.0],
}

Masker = Callable[[np.ndarray], np.ndarray]


def find_pairs(ir_dir: str, mask_dir: str) -> list[tuple[str, str, str]]:
    """``(stem, ir_path, mask_path)`` for every mask whose stem has an IR image, sorted
    naturally by stem (``2`` before ``10``)."""
    return [(stem, str(ir), str(mask)) for stem, (ir, mask) in pair_by_stem(ir_dir, mask_dir).pairs]


def read_thermal(path: str) -> np.ndarray:
    """Read an IR image as HxW, keeping 16-bit data (colour files are converted to grey)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"cannot read image {path}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return img


def read_mask(path: str) -> np.ndarray:
    """Read a ground-truth mask as bool (foreground where >= half the maximum code value:
    128 for 8-bit {0, 255} masks, 1 for {0, 1} masks)."""
    m = read_thermal(path)
    top = 1 if int(m.max(initial=0)) <= 1 else (255 if m.dtype == np.uint8 else 65535)
    return m >= (top + 1) // 2 if top > 1 else m >= 1


def otsu_mask(thermal: np.ndarray) -> np.ndarray:
    """Baseline: global Otsu threshold of the thermal image (float32 {0, 1})."""
    g = np.asarray(thermal)
    if g.ndim == 3:
        g = cv2.cvtColor(g, cv2.COLOR_BGR2GRAY)
    if g.dtype != np.uint8:
        g = g.astype(np.float32)
        lo, hi = float(g.min()), float(g.max())
        g = np.zeros(g.shape, np.uint8) if hi <= lo else \
            np.round((g - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    t, _ = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return (g > t).astype(np.float32)


def make_masker(source: str, config: Optional[ThermalMaskConfig] = None) -> Masker:
    """``"thermal"``: :class:`ThermalHotObjectMasker` with ``config``; ``"otsu"``: global Otsu."""
    if source == "thermal":
        return ThermalHotObjectMasker(config)
    if source == "otsu":
        return otsu_mask
    raise ValueError(f"unknown mask source {source!r} (expected 'thermal' or 'otsu')")


def _score(pred: np.ndarray, gt: np.ndarray, beta2: float) -> dict[str, float]:
    return {"iou": iou(pred, gt), "f": f_measure(pred, gt, beta2=beta2), "mae": mae(pred, gt)}


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in ("iou", "f", "mae")} if rows \
        else {"iou": float("nan"), "f": float("nan"), "mae": float("nan")}


def _load(ir_dir: str, mask_dir: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    pairs = find_pairs(ir_dir, mask_dir)
    if not pairs:
        raise FileNotFoundError(f"no IR image in {ir_dir} has a mask of the same stem in "
                                f"{mask_dir}")
    out = []
    for stem, ip, mp in pairs:
        ir, gt = read_thermal(ip), read_mask(mp)
        if ir.shape != gt.shape:
            raise ValueError(f"{stem}: IR {ir.shape} and mask {gt.shape} differ in size")
        out.append((stem, ir, gt))
    return out


def evaluate_masks(ir_dir: str, mask_dir: str, masker: Masker,
                   beta2: float = 0.3) -> dict[str, Any]:
    """Score ``masker`` on every (IR, mask) pair of the two folders.

    Returns ``{"per_image": {stem: {"iou", "f", "mae", "ms"}}, "mean": {"iou", "f", "mae"},
    "n": count, "ms_per_image": mean masker time}``.
    """
    per: dict[str, dict[str, float]] = {}
    times = []
    for stem, ir, gt in _load(ir_dir, mask_dir):
        t0 = time.perf_counter()
        pred = masker(ir)
        times.append(time.perf_counter() - t0)
        per[stem] = {**_score(pred, gt, beta2), "ms": times[-1] * 1e3}
    return {"per_image": per, "mean": _mean(list(per.values())), "n": len(per),
            "ms_per_image": float(np.mean(times) * 1e3)}


def _grid_configs(grid: Mapping[str, Sequence[Any]], base: ThermalMaskConfig
                  ) -> list[tuple[dict[str, Any], ThermalMaskConfig]]:
    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        out.append((params, base.replace(**params)))
    return out


def cross_validate(ir_dir: str, mask_dir: str,
                   grid: Optional[Mapping[str, Sequence[Any]]] = None,
                   base: Optional[ThermalMaskConfig] = None, folds: Optional[int] = None,
                   beta2: float = 0.3) -> dict[str, Any]:
    """Tune the thermal mask over ``grid`` by cross-validation and report held-out scores.

    Every configuration of the grid (``base`` with some fields replaced) is run once on every
    image; then, for each fold, the configuration with the best mean IoU on the *other* images
    is scored on the held-out ones. ``folds=None`` is leave-one-out; otherwise images are split
    into ``folds`` contiguous groups in natural stem order.

    Returns ``{"cv": {"iou", "f", "mae"} (held-out means), "per_image": {stem: held-out
    scores and "params" chosen without it}, "chosen_on_all": params best on all images,
    "in_sample_best": its scores on all images (optimistic), "base": scores of ``base``,
    "n": count, "n_configs": grid size, "folds": fold count}``.
    """
    grid = dict(DEFAULT_GRID if grid is None else grid)
    base = base or ThermalMaskConfig()
    data = _load(ir_dir, mask_dir)
    n = len(data)
    if n < 2:
        raise ValueError("cross-validation needs at least two images")
    k = n if folds is None else int(folds)
    if not 2 <= k <= n:
        raise ValueError(f"folds must be in [2, {n}]")
    configs = _grid_configs(grid, base)
    # scores[g][i] = metrics of config g on image i
    scores = [[_score(cfg_masker(ir), gt, beta2) for _, ir, gt in data]
              for cfg_masker in (ThermalHotObjectMasker(c) for _, c in configs)]
    iou_table = np.array([[s["iou"] for s in row] for row in scores])  # (G, N)
    fold_of = np.array([i * k // n for i in range(n)])
    per: dict[str, dict[str, Any]] = {}
    for f in range(k):
        test = fold_of == f
        g_best = int(np.argmax(iou_table[:, ~test].mean(axis=1)))
        for i in np.nonzero(test)[0]:
            per[data[i][0]] = {**scores[g_best][i], "params": configs[g_best][0]}
    g_all = int(np.argmax(iou_table.mean(axis=1)))
    base_scores = [_score(ThermalHotObjectMasker(base)(ir), gt, beta2) for _, ir, gt in data]
    return {"cv": _mean(list(per.values())), "per_image": per,
            "chosen_on_all": configs[g_all][0], "in_sample_best": _mean(scores[g_all]),
            "base": _mean(base_scores), "n": n, "n_configs": len(configs), "folds": k}


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    fields = {f.name: f for f in ThermalMaskConfig.__dataclass_fields__.values()}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--set expects FIELD=VALUE with FIELD one of {sorted(fields)}, "
                             f"got {item!r}")
        default = getattr(ThermalMaskConfig(), key)
        if isinstance(default, bool):
            out[key] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            out[key] = type(default)(float(value)) if isinstance(default, int) \
                else type(default)(value)
    return out


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval-mask`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "eval-mask", help="score salient-object masks made from IR images against hand masks",
        description="Score a mask source (thermal hot-object mask or global Otsu) against "
                    "hand-drawn masks: IoU and F-measure (beta^2=0.3) at threshold 0.5, MAE.")
    p.add_argument("--ir", required=True, help="folder of IR images")
    p.add_argument("--masks", required=True, help="folder of masks with the same file stems")
    p.add_argument("--source", choices=("thermal", "otsu"), default="thermal",
                   help="mask source to evaluate (default: thermal)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a ThermalMaskConfig field (repeatable)")
    p.add_argument("--cv", action="store_true",
                   help="leave-one-out cross-validate the thermal mask over DEFAULT_GRID")
    p.add_argument("--folds", type=int, default=None, help="k-fold instead of leave-one-out")
    p.add_argument("--json", default=None, help="also write the full result as JSON here")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``eval-mask`` with parsed ``args``; prints a table and returns an exit status."""
    config = ThermalMaskConfig().replace(**_parse_set(args.set)) if args.set \
        else ThermalMaskConfig()
    if args.cv:
        if args.source != "thermal":
            print("--cv tunes the thermal mask; use --source thermal", file=sys.stderr)
            return 2
        res = cross_validate(args.ir, args.masks, base=config, folds=args.folds)
        for stem, r in res["per_image"].items():
            print(f"{stem:>12}  iou {r['iou']:.3f}  f {r['f']:.3f}  mae {r['mae']:.3f}  "
                  f"params {r['params']}")
        m = res["cv"]
        print(f"{'CV mean':>12}  iou {m['iou']:.3f}  f {m['f']:.3f}  mae {m['mae']:.3f}  "
              f"({res['folds']} folds, {res['n_configs']} configs, n={res['n']})")
        b = res["base"]
        print(f"{'given config':>12}  iou {b['iou']:.3f}  f {b['f']:.3f}  mae {b['mae']:.3f}  "
              f"(not cross-validated)")
        print(f"chosen on all images: {res['chosen_on_all']}")
    else:
        res = evaluate_masks(args.ir, args.masks, make_masker(args.source, config))
        for stem, r in res["per_image"].items():
            print(f"{stem:>12}  iou {r['iou']:.3f}  f {r['f']:.3f}  mae {r['mae']:.3f}  "
                  f"{r['ms']:.1f} ms")
        m = res["mean"]
        print(f"{'mean':>12}  iou {m['iou']:.3f}  f {m['f']:.3f}  mae {m['mae']:.3f}  "
              f"({args.source}, n={res['n']}, {res['ms_per_image']:.1f} ms/image)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1, default=str)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Stand-alone entry: ``python -m sosmaskfuse_core.mask_eval --ir ... --masks ...``."""
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
