"""Size classes of labelled boxes by their height in pixels: small (< 32), medium, large (>= 96).

Issue 19 reports targets by size because small, distant ones are where masks and fusion fail;
COCO's area limits (32² and 96² px) are taken as heights, since people are tall and narrow.
"""

from __future__ import annotations

__all__ = ["SIZE_CLASSES", "SMALL_BELOW", "LARGE_FROM", "size_class"]

SIZE_CLASSES = ("small", "medium", "large")
SMALL_BELOW = 32  # px tall
LARGE_FROM = 96  # px tall


def size_class(height: int) -> str:
    """'small' below 32 px tall, 'large' from 96 px, 'medium' between."""
    if height < SMALL_BELOW:
        return "small"
    return "medium" if height < LARGE_FROM else "large"
