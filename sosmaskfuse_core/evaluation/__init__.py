"""Evaluation: fusion-quality metrics (EN ... CC), mask metrics (hand masks, boxes), tables."""

from .fusion_quality import Row, evaluate_image, format_markdown, mean_row, read_gray, write_csv
from .mask_metrics import f_measure, iou, mae, precision_recall
from .mask_quality import DEFAULT_GRID, cross_validate, evaluate_masks
from .metrics import METRIC_NAMES, compute_all
from .weak_eval import box_scores, evaluate_boxes, evaluate_stability, temporal_stability

__all__ = [
    "DEFAULT_GRID",
    "METRIC_NAMES",
    "Row",
    "box_scores",
    "compute_all",
    "cross_validate",
    "evaluate_boxes",
    "evaluate_image",
    "evaluate_masks",
    "evaluate_stability",
    "f_measure",
    "format_markdown",
    "iou",
    "mae",
    "mean_row",
    "precision_recall",
    "read_gray",
    "temporal_stability",
    "write_csv",
]
