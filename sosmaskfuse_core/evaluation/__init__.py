"""Evaluation: fusion-quality metrics (EN ... CC), salient-mask metrics, tables built from them."""

from .fusion_quality import Row, evaluate_image, format_markdown, mean_row, read_gray, write_csv
from .mask_metrics import f_measure, iou, mae, precision_recall
from .mask_quality import DEFAULT_GRID, cross_validate, evaluate_masks
from .metrics import METRIC_NAMES, compute_all

__all__ = [
    "DEFAULT_GRID",
    "METRIC_NAMES",
    "Row",
    "compute_all",
    "cross_validate",
    "evaluate_image",
    "evaluate_masks",
    "f_measure",
    "format_markdown",
    "iou",
    "mae",
    "mean_row",
    "precision_recall",
    "read_gray",
    "write_csv",
]
