"""Evaluate salient-object masks made from thermal images against hand-drawn masks.

``evaluate_masks(ir_dir, mask_dir, masker)`` runs a masker (any callable thermal -> soft mask in
[0, 1]) on every IR image that has a mask with the same file stem and scores it with
:mod:`sosmaskfuse_core.evaluation.mask_metrics` (IoU and F-measure with beta^2 = 0.3 after
thresholding the soft mask at 0.5; MAE on the soft mask). ``cross_validate(...)`` tunes
:class:`~sosmaskfuse_core.thermal.ThermalMaskConfig` fields over a small grid with
leave-one-out, k-fold or leave-one-group-out cross-validation and reports held-out figures
only. A *group* regular expression (``group=`` / ``--group``) maps each file stem to a group
(its first capture group, or the whole match): frames of one video, or one source. Groups
are then the cross-validation folds, and means are also reported per group.

The command line is `sosmaskfuse_core.commands.eval_mask` (``sosmaskfuse eval-mask``).
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any, Callable, Collection, Mapping, Optional, Sequence

import cv2
import numpy as np

from sosmaskfuse_core.evaluation.mask_metrics import f_measure, iou, mae
from sosmaskfuse_core.formats.image_files import pair_by_stem
from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker, ThermalMaskConfig

__all__ = [
    "DEFAULT_GRID",
    "Masker",
    "find_pairs",
    "read_thermal",
    "read_mask",
    "otsu_mask",
    "make_masker",
    "group_of",
    "evaluate_masks",
    "cross_validate",
]


#: Grid searched by :func:`cross_validate` (and ``eval-mask --cv``): the selection
#: parameters of the thermal mask (relative floor, upright prior, peak-brightness exponent).
#: Everything else keeps its default.
DEFAULT_GRID: dict[str, list[Any]] = {
    "seed_rel": [0.55, 0.6, 0.65],
    "upright": [1.1, 1.2, 1.3],
    "brightness_power": [1.0, 2.0, 3.0],
}

Masker = Callable[[np.ndarray], np.ndarray]


def find_pairs(ir_dir: str, mask_dir: str) -> list[tuple[str, str, str]]:
    """``(stem, ir_path, mask_path)`` for every mask whose stem has an IR image.

    Sorted naturally by stem (``2`` before ``10``).
    """
    return [
        (stem, str(ir), str(mask)) for stem, (ir, mask) in pair_by_stem(ir_dir, mask_dir).pairs
    ]


def read_thermal(path: str) -> np.ndarray:
    """Read an IR image as HxW, keeping 16-bit data (colour files are converted to grey)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"cannot read image {path}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return img


def read_mask(path: str) -> np.ndarray:
    """Read a ground-truth mask as bool: foreground where >= half the maximum code value.

    That is 128 for 8-bit {0, 255} masks, 1 for {0, 1} masks.
    """
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
        g = (
            np.zeros(g.shape, np.uint8)
            if hi <= lo
            else np.round((g - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        )
    t, _ = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return (g > t).astype(np.float32)


def make_masker(
    source: str,
    config: Optional[ThermalMaskConfig] = None,
    sosnet: Optional[str] = None,
    device: str = "cpu",
) -> Masker:
    """A mask source by name.

    ``"thermal"``: :class:`ThermalHotObjectMasker` with ``config``; ``"otsu"``: global Otsu;
    ``"sosnet"``: the SOS network checkpoint ``sosnet`` as the fusion pipeline runs it
    (:class:`~sosmaskfuse_core.pipeline.sos_masker.SOSNetMasker`, on ``device``).
    """
    if source == "thermal":
        return ThermalHotObjectMasker(config)
    if source == "otsu":
        return otsu_mask
    if source in ("sosnet", "ensemble"):
        if not sosnet:
            raise ValueError(f"mask source {source!r} needs a checkpoint (--sosnet CKPT)")
        from sosmaskfuse_core.pipeline.sos_masker import SOSNetMasker  # torch only when asked

        return SOSNetMasker(sosnet, device=device, mask_source=source)
    raise ValueError(
        f"unknown mask source {source!r} (expected 'thermal', 'otsu', 'sosnet' or 'ensemble')"
    )


class GainedMasker:
    """A masker that sees each IR image times `gain` (rounded, clipped): a dimmer camera."""

    def __init__(self, masker: Masker, gain: float) -> None:
        if not gain > 0:
            raise ValueError(f"IR gain {gain}: must be positive")
        self.masker, self.gain = masker, float(gain)
        self.meta = getattr(masker, "meta", {})  # a checkpoint's record, for --held-out

    def __call__(self, ir: np.ndarray) -> np.ndarray:
        top = np.iinfo(ir.dtype).max if np.issubdtype(ir.dtype, np.integer) else 255.0
        scaled = np.clip(np.round(ir.astype(np.float32) * self.gain), 0, top).astype(ir.dtype)
        return self.masker(scaled)


def group_of(stem: str, pattern: Optional[str]) -> str:
    """The group of a file stem under the regular expression ``pattern`` (``re.search``).

    It is the first capture group if there is one, else the whole match; stems that do not match
    form the group ``""``. With no pattern every stem is its own group.
    """
    if not pattern:
        return stem
    m = re.search(pattern, stem)
    if m is None:
        return ""
    return m.group(1) if m.re.groups else m.group(0)


def _group_means(
    rows: Mapping[str, Mapping[str, float]], pattern: Optional[str]
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[Mapping[str, float]]] = {}
    for stem, r in rows.items():
        groups.setdefault(group_of(stem, pattern), []).append(r)
    return {g: {**_mean(v), "n": len(v)} for g, v in sorted(groups.items())}


def _score(pred: np.ndarray, gt: np.ndarray, beta2: float) -> dict[str, float]:
    return {"iou": iou(pred, gt), "f": f_measure(pred, gt, beta2=beta2), "mae": mae(pred, gt)}


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return (
        {k: float(np.mean([r[k] for r in rows])) for k in ("iou", "f", "mae")}
        if rows
        else {"iou": float("nan"), "f": float("nan"), "mae": float("nan")}
    )


def _load(
    ir_dir: str, mask_dir: str, stems: Optional[Collection[str]] = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    pairs = [p for p in find_pairs(ir_dir, mask_dir) if stems is None or p[0] in stems]
    if not pairs:
        among = f" among the {len(stems)} stems asked for" if stems is not None else ""
        raise FileNotFoundError(
            f"no IR image in {ir_dir} has a mask of the same stem in {mask_dir}{among}"
        )
    out = []
    for stem, ip, mp in pairs:
        ir, gt = read_thermal(ip), read_mask(mp)
        if ir.shape != gt.shape:
            raise ValueError(f"{stem}: IR {ir.shape} and mask {gt.shape} differ in size")
        out.append((stem, ir, gt))
    return out


def evaluate_masks(
    ir_dir: str,
    mask_dir: str,
    masker: Masker,
    beta2: float = 0.3,
    group: Optional[str] = None,
    stems: Optional[Collection[str]] = None,
) -> dict[str, Any]:
    """Score ``masker`` on every (IR, mask) pair of the two folders (only ``stems`` if given).

    Returns ``{"per_image": {stem: {"iou", "f", "mae", "ms"}}, "mean": {"iou", "f", "mae"},
    "n": count, "ms_per_image": mean masker time}``, plus ``"per_group": {group: means and
    "n"}`` when a ``group`` regular expression is given (see :func:`group_of`).
    """
    per: dict[str, dict[str, float]] = {}
    times = []
    for stem, ir, gt in _load(ir_dir, mask_dir, stems):
        t0 = time.perf_counter()
        pred = masker(ir)
        times.append(time.perf_counter() - t0)
        per[stem] = {**_score(pred, gt, beta2), "ms": times[-1] * 1e3}
    res = {
        "per_image": per,
        "mean": _mean(list(per.values())),
        "n": len(per),
        "ms_per_image": float(np.mean(times) * 1e3) if times else float("nan"),
    }
    if group:
        res["per_group"] = _group_means(per, group)
    return res


def _grid_configs(
    grid: Mapping[str, Sequence[Any]], base: ThermalMaskConfig
) -> list[tuple[dict[str, Any], ThermalMaskConfig]]:
    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        out.append((params, base.replace(**params)))
    return out


def cross_validate(
    ir_dir: str,
    mask_dir: str,
    grid: Optional[Mapping[str, Sequence[Any]]] = None,
    base: Optional[ThermalMaskConfig] = None,
    folds: Optional[int] = None,
    beta2: float = 0.3,
    group: Optional[str] = None,
) -> dict[str, Any]:
    """Tune the thermal mask over ``grid`` by cross-validation and report held-out scores.

    Every configuration of the grid (``base`` with some fields replaced) is run once on every
    image; then, for each fold, the configuration with the best mean IoU on the *other* images
    is scored on the held-out ones. ``folds=None`` is leave-one-out; otherwise images are split
    into ``folds`` contiguous groups in natural stem order. With a ``group`` regular expression
    (see :func:`group_of`) the folds are the groups instead (leave-one-group-out: e.g. one
    video held out at a time), and ``"per_group"`` held-out means are added to the result.

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
    if group:
        names = sorted({group_of(stem, group) for stem, _, _ in data})
        if len(names) < 2:
            raise ValueError(f"--group {group!r} puts all images in one group")
        fold_of = np.array([names.index(group_of(stem, group)) for stem, _, _ in data])
        k = len(names)
    else:
        k = n if folds is None else int(folds)
        if not 2 <= k <= n:
            raise ValueError(f"folds must be in [2, {n}]")
        fold_of = np.array([i * k // n for i in range(n)])
    configs = _grid_configs(grid, base)
    # scores[g][i] = metrics of config g on image i
    scores = [
        [_score(cfg_masker(ir), gt, beta2) for _, ir, gt in data]
        for cfg_masker in (ThermalHotObjectMasker(c) for _, c in configs)
    ]
    iou_table = np.array([[s["iou"] for s in row] for row in scores])  # (G, N)
    per: dict[str, dict[str, Any]] = {}
    for f in range(k):
        test = fold_of == f
        g_best = int(np.argmax(iou_table[:, ~test].mean(axis=1)))
        for i in np.nonzero(test)[0]:
            per[data[i][0]] = {**scores[g_best][i], "params": configs[g_best][0]}
    g_all = int(np.argmax(iou_table.mean(axis=1)))
    base_scores = [_score(ThermalHotObjectMasker(base)(ir), gt, beta2) for _, ir, gt in data]
    res = {
        "cv": _mean(list(per.values())),
        "per_image": per,
        "chosen_on_all": configs[g_all][0],
        "in_sample_best": _mean(scores[g_all]),
        "base": _mean(base_scores),
        "n": n,
        "n_configs": len(configs),
        "folds": k,
    }
    if group:
        res["per_group"] = _group_means(per, group)
        res["base_per_group"] = _group_means(
            {stem: s for (stem, _, _), s in zip(data, base_scores)}, group
        )
    return res
