"""Mask scores without hand-drawn masks: box recall/precision, stability over video frames.

* :func:`box_scores`: a ground-truth box is *found* when the binary mask covers at least
  ``cover`` of its area; box recall is the share of boxes found (per class, per size class:
  small < 32 px tall, medium, large >= 96 px, and per class and size), box precision the
  share of mask pixels that lie inside some box (``DontCare`` boxes and boxes of classes left
  out included: marking them is not an error). Precision is not split by class or size: a
  mask pixel has neither. Summed over images, so big frames weigh by their pixels.
* :func:`temporal_stability`: the mean IoU of the masks of consecutive frames of one video
  (frames in natural stem order within a group); a mask that flickers scores low. It is only
  comparable between maskers on the same frames, since moving objects lower it too.

:func:`evaluate_boxes` and :func:`evaluate_stability` run a masker over a folder of IR images
(``sosmaskfuse eval-mask --boxes`` / ``--stability``); boxes are VOC xml or YOLO txt files
(`formats.box_folder.BoxFolder`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from sosmaskfuse_core.evaluation.box_sizes import SIZE_CLASSES, size_class
from sosmaskfuse_core.evaluation.mask_metrics import iou, to_binary
from sosmaskfuse_core.evaluation.mask_quality import Masker, group_of, read_thermal
from sosmaskfuse_core.formats.box_folder import BoxFolder
from sosmaskfuse_core.formats.image_files import list_images, natural_key
from sosmaskfuse_core.formats.voc_boxes import BoxFileError

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
    mask: np.ndarray,
    boxes: Sequence,
    cover: float = 0.3,
    ignore: tuple[str, ...] = ("dontcare",),
    classes: Optional[set[str]] = None,
) -> dict:
    """Counts for one image: boxes and boxes found (by class and size), mask pixels in boxes.

    ``boxes`` have ``label, x0, y0, x1, y1`` (inclusive pixel coordinates); their size class
    goes by the height in the image (``y1 - y0 + 1``). Only labels in ``classes`` (lower case)
    count for recall when it is given.
    """
    m = to_binary(mask)
    h, w = m.shape
    inside = np.zeros((h, w), bool)
    counts: dict[str, dict[str, list[int]]] = {
        "per_class": {},
        "per_size": {},
        "per_class_size": {},
    }
    for b in boxes:
        x0, y0, x1, y1 = max(0, b.x0), max(0, b.y0), min(w - 1, b.x1), min(h - 1, b.y1)
        if x1 < x0 or y1 < y0:
            continue
        inside[y0 : y1 + 1, x0 : x1 + 1] = True
        name = b.label.strip().lower()
        if name in ignore or (classes is not None and name not in classes):
            continue
        found = int(m[y0 : y1 + 1, x0 : x1 + 1].mean() >= cover)
        size = size_class(b.y1 - b.y0 + 1)
        for kind, key in (
            ("per_class", name),
            ("per_size", size),
            ("per_class_size", f"{name}/{size}"),
        ):
            c = counts[kind].setdefault(key, [0, 0])
            c[0] += 1
            c[1] += found
    per_class = counts["per_class"]
    return {
        "boxes": sum(c[0] for c in per_class.values()),
        "found": sum(c[1] for c in per_class.values()),
        **counts,
        "mask_pixels": int(m.sum()),
        "mask_in_boxes": int((m & inside).sum()),
    }


def _recalls(rows: Sequence[Mapping], kind: str, order=None) -> dict:
    totals: dict[str, list[int]] = {}
    for r in rows:
        for k, (n, f) in r.get(kind, {}).items():
            c = totals.setdefault(k, [0, 0])
            c[0] += n
            c[1] += f
    keys = sorted(totals, key=order) if order else sorted(totals)
    return {k: {"boxes": totals[k][0], "recall": totals[k][1] / totals[k][0]} for k in keys}


def sum_box_scores(rows: Sequence[Mapping]) -> dict:
    """Box recall (overall, per class, size, class/size) and precision over images' counts."""
    boxes = sum(r["boxes"] for r in rows)
    found = sum(r["found"] for r in rows)
    pix = sum(r["mask_pixels"] for r in rows)
    pin = sum(r["mask_in_boxes"] for r in rows)

    def by_size(key: str) -> tuple:
        cls, _, size = key.rpartition("/")
        return cls, SIZE_CLASSES.index(size or cls)

    return {
        "images": len(rows),
        "boxes": boxes,
        "recall": found / boxes if boxes else float("nan"),
        "precision": pin / pix if pix else float("nan"),
        "recall_per_class": _recalls(rows, "per_class"),
        "recall_per_size": _recalls(rows, "per_size", lambda k: SIZE_CLASSES.index(k)),
        "recall_per_class_size": _recalls(rows, "per_class_size", by_size),
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
    box_dir: str | BoxFolder,
    masker: Masker,
    stems_file: Optional[str] = None,
    cover: float = 0.3,
    classes: Optional[Iterable[str]] = None,
) -> dict[str, Any]:
    """Box recall and precision of ``masker`` on the IR images with boxes in ``box_dir``.

    ``box_dir`` is a folder of VOC xml or YOLO txt files (format found from the files) or a
    `BoxFolder`. Only the stems listed in ``stems_file`` (e.g. HIT-UAV's val.txt) count when it
    is given, and only boxes of ``classes`` (names, or YOLO ids) for recall. An unreadable image
    or annotation is reported under ``"skipped"`` and left out.
    """
    labels = box_dir if isinstance(box_dir, BoxFolder) else BoxFolder(box_dir)
    wanted_classes = labels.class_filter(classes) if classes else None
    wanted = read_stems(stems_file)
    rows, skipped = [], []
    for stem, paths in sorted(list_images(ir_dir).items(), key=lambda kv: natural_key(kv[0])):
        if wanted is not None and stem not in wanted:
            continue
        if stem not in labels.files:
            continue
        try:
            ir = read_thermal(str(paths[0]))
            boxes = labels.read(stem, ir.shape[1], ir.shape[0])
        except (BoxFileError, OSError) as exc:
            skipped.append(str(exc))
            continue
        rows.append(box_scores(masker(ir) >= 0.5, boxes, cover, classes=wanted_classes))
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
