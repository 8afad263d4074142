"""Evaluation: fusion-quality metrics (EN ... CC), mask metrics (hand masks, boxes), tables.

The thermal target contrast kept box by box (`box_contrast`, the acceptance definition), with
boxes sized by `box_sizes` (small < 32 px tall).

Also what the quality table's study fuses and scores (`quality_study`: conditions, mask
variants, the target contrast kept) and the flicker of a fused video (`flicker.FlickerMeter`).
"""

from .box_contrast import BoxContrastConfig, BoxTCR, box_tcr
from .box_sizes import SIZE_CLASSES, size_class
from .flicker import FlickerMeter
from .fusion_quality import Row, evaluate_image, format_markdown, mean_row, read_gray, write_csv
from .mask_metrics import f_measure, iou, mae, precision_recall
from .mask_quality import DEFAULT_GRID, cross_validate, evaluate_masks
from .metrics import METRIC_NAMES, compute_all
from .quality_study import CONDITIONS, MASK_VARIANTS, degrade, mask_variant, target_contrast
from .weak_eval import box_scores, evaluate_boxes, evaluate_stability, temporal_stability

__all__ = [
    "BoxContrastConfig",
    "BoxTCR",
    "CONDITIONS",
    "DEFAULT_GRID",
    "FlickerMeter",
    "MASK_VARIANTS",
    "METRIC_NAMES",
    "Row",
    "SIZE_CLASSES",
    "box_scores",
    "box_tcr",
    "compute_all",
    "cross_validate",
    "evaluate_boxes",
    "degrade",
    "evaluate_image",
    "evaluate_masks",
    "evaluate_stability",
    "f_measure",
    "format_markdown",
    "iou",
    "mae",
    "mask_variant",
    "mean_row",
    "precision_recall",
    "read_gray",
    "size_class",
    "temporal_stability",
    "target_contrast",
    "write_csv",
]
