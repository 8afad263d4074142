"""Mask scores without hand-drawn masks: box recall/precision, stability over video frames.

* :func:`box_scores`: a ground-truth box is *found* when the binary mask covers at least
  ``cover`` of its area; box recall is the share of boxes found (per class too), box
  precision the share of mask pixels that lie inside some box (``DontCare`` boxes included:
  marking them is not an error). Summed over images, so big frames weigh by their pixels.
* :func:`temporal_stability`: the mean IoU of the masks of consecutive frames of one video
  (frames in natural stem order within a group); a mask that flickers scores low. It is only
  comparable between maskers on the same frames, since moving objects lower it too.

:func:`evaluate_boxes` and :func:`evaluate_stability` run a masker over a folder of IR images
(``sosmaskfuse eval-mask --boxes`` / ``--stability``).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from sosmaskfuse_core.evaluation.mask_metrics import iou, to_binary
from sosmaskfuse_core.evaluation.mask_quality import Masker, group_of, read_thermal
from sosmaskfuse_core.formats.image_files import list_images, natural_key
from sosmaskfuse_core.formats.voc_boxes import BoxFileError, read_voc

__all__ = [
    "box_scores",
    "sum_box_scores",
    "temporal_stability",
    "read_stems",
    "evaluate_boxes",
    "evaluate_stability",
]

#: Stems of video frames: the video is the stem without its last ``_<number>``.
VIDEO_FRAME = r"^(.*)_\d+$"


def box_scores(
    mask: np.ndarray, boxes: Sequence, cover: float = 0.3, ignore: tuple[str, ...] = ("dontcare",)
) -> dict:
    """Counts for one image: boxes, boxes found (per class), mask pixels, mask pixels in boxes.

    ``boxes`` have ``label, x0, y0, x1, y1`` (inclusive pixel coordinates).
    """
    m = to_binary(mask)
    h, w = m.shape
    inside = np.zeros((h, w), bool)
    per_class: dict[str, list[int]] = {}
    for b in boxes:
        x0, y0, x1, y1 = max(0, b.x0), max(0, b.y0), min(w - 1, b.x1), min(h - 1, b.y1)
        if x1 < x0 or y1 < y0:
            continue
        inside[y0 : y1 + 1, x0 : x1 + 1] = True
        name = b.label.strip().lower()
        if name in ignore:
            continue
        found = m[y0 : y1 + 1, x0 : x1 + 1].mean() >= cover
        c = per_class.setdefault(name, [0, 0])
        c[0] += 1
        c[1] += int(found)
    return {
        "boxes": sum(c[0] for c in per_class.values()),
        "found": sum(c[1] for c in per_class.values()),
        "per_class": per_class,
        "mask_pixels": int(m.sum()),
        "mask_in_boxes": int((m & inside).sum()),
    }


def sum_box_scores(rows: Sequence[Mapping]) -> dict:
    """Box recall (overall and per class) and box precision over many images' counts."""
    boxes = sum(r["boxes"] for r in rows)
    found = sum(r["found"] for r in rows)
    pix = sum(r["mask_pixels"] for r in rows)
    pin = sum(r["mask_in_boxes"] for r in rows)
    classes: dict[str, list[int]] = {}
    for r in rows:
        for k, (n, f) in r["per_class"].items():
            c = classes.setdefault(k, [0, 0])
            c[0] += n
            c[1] += f
    return {
        "images": len(rows),
        "boxes": boxes,
        "recall": found / boxes if boxes else float("nan"),
        "precision": pin / pix if pix else float("nan"),
        "recall_per_class": {
            k: {"boxes": n, "recall": f / n} for k, (n, f) in sorted(classes.items())
        },
    }


def temporal_stability(masks: Mapping[str, np.ndarray], group_of: Callable[[str], str]) -> dict:
    """Mean IoU of consecutive frames' binary masks within each group (``group_of(stem)``)."""
    groups: dict[str, list[str]] = {}
    for stem in masks:
        groups.setdefault(group_of(stem), []).append(stem)
    per_group = {}
    for g, stems in sorted(groups.items()):
        stems.sort(key=natural_key)
        values = [iou(masks[a], masks[b]) for a, b in zip(stems, stems[1:])]
        if values:
            per_group[g] = {"stability": float(np.mean(values)), "pairs": len(values)}
    all_values = [v["stability"] for v in per_group.values()]
    return {
        "stability": float(np.mean(all_values)) if all_values else float("nan"),
        "per_group": per_group,
    }


def read_stems(path: Optional[str]) -> Optional[set[str]]:
    """The stems listed in a text file (whitespace-separated, e.g. val.txt); None for no file."""
    if not path:
        return None
    with open(path) as fh:
        return {t.strip() for t in fh.read().split() if t.strip()}


def evaluate_boxes(
    ir_dir: str,
    box_dir: str,
    masker: Masker,
    stems_file: Optional[str] = None,
    cover: float = 0.3,
) -> dict[str, Any]:
    """Box recall and precision of ``masker`` on the IR images with boxes ``box_dir/<stem>.xml``.

    Only the stems listed in ``stems_file`` (e.g. HIT-UAV's val.txt) count when it is given. An
    unreadable image or annotation is reported under ``"skipped"`` and left out.
    """
    wanted = read_stems(stems_file)
    rows, skipped = [], []
    for stem, paths in sorted(list_images(ir_dir).items(), key=lambda kv: natural_key(kv[0])):
        if wanted is not None and stem not in wanted:
            continue
        xml = os.path.join(box_dir, f"{stem}.xml")
        if not os.path.isfile(xml):
            continue
        try:
            boxes = read_voc(xml)
            ir = read_thermal(str(paths[0]))
        except (BoxFileError, OSError) as exc:
            skipped.append(str(exc))
            continue
        rows.append(box_scores(masker(ir) >= 0.5, boxes, cover))
    if not rows:
        among = f" among the stems of {stems_file}" if stems_file else ""
        raise FileNotFoundError(f"no IR image in {ir_dir} has an annotation in {box_dir}{among}")
    return {**sum_box_scores(rows), "cover": cover, "skipped": skipped}


def evaluate_stability(ir_dir: str, masker: Masker, group: str = VIDEO_FRAME) -> dict[str, Any]:
    """Temporal stability of ``masker`` over the frames in ``ir_dir``, one group per video.

    Frames are grouped into videos by the regular expression ``group`` (default: the stem
    without its last ``_<number>``).
    """
    masks = {}
    for stem, paths in list_images(ir_dir).items():
        masks[stem] = masker(read_thermal(str(paths[0]))) >= 0.5
    if not masks:
        raise FileNotFoundError(f"no images in {ir_dir}")
    return temporal_stability(masks, lambda s: group_of(s, group))
