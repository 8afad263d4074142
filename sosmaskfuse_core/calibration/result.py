"""What a calibration returns: the homography, the frames it used or set aside, and its figures.

Both methods return a `Calibration` or raise `CalibrationRefused` with the reason (too few
usable frames, frames that disagree, a score peak that does not stand out, a fit too poor to
trust): a poor homography is never returned as if it were a good one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .geometry import Size


@dataclass(frozen=True)
class FramePair:
    """One synchronised pair: a name (file stem or stamp), 8-bit gray thermal and visible."""

    name: str
    thermal: np.ndarray
    visible: np.ndarray

    @property
    def thermal_size(self) -> Size:
        """(width, height) of the thermal image."""
        return self.thermal.shape[1], self.thermal.shape[0]

    @property
    def visible_size(self) -> Size:
        """(width, height) of the visible image."""
        return self.visible.shape[1], self.visible.shape[0]


@dataclass(frozen=True)
class FrameVerdict:
    """What the calibration made of one frame.

    used: its data went into the homography; reason: why not (empty when used); residual_px:
    its own misalignment under the final homography (thermal pixels; targetless: the shift that
    would align it, target: the RMS corner reprojection error); score: its correlation or
    number of corners.
    """

    name: str
    used: bool
    reason: str = ""
    residual_px: float | None = None
    score: float | None = None


@dataclass
class Calibration:
    """A homography a person can judge: its errors, frames, confidence and run time.

    homography: thermal pixel -> visible pixel at the cameras' own resolutions (the node's
    `homography` parameter). errors: the method's error figures (pixels); confidence: `level`
    (high or medium: anything lower is refused) and what it rests on; details: the method's
    own account (the board, the search's best hypothesis, ...).
    """

    method: str
    homography: np.ndarray
    thermal_size: Size
    visible_size: Size
    frames: list[FrameVerdict]
    errors: dict[str, float]
    confidence: dict[str, Any]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def used(self) -> list[FrameVerdict]:
        """The frames whose data went into the homography."""
        return [f for f in self.frames if f.used]

    @property
    def rejected(self) -> list[FrameVerdict]:
        """The frames set aside, each with its reason."""
        return [f for f in self.frames if not f.used]


class CalibrationRefused(ValueError):
    """No homography is written: the reason says why, `frames` what was made of each frame."""

    def __init__(self, reason: str, frames: list[FrameVerdict] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.frames = list(frames or [])


def check_sizes(pairs: list[FramePair]) -> tuple[Size, Size, list[FrameVerdict]]:
    """The (thermal, visible) sizes most frames have, and a verdict for each frame that differs.

    Raises CalibrationRefused when there are no frames.
    """
    if not pairs:
        raise CalibrationRefused("no frame pairs to calibrate from")
    counts: dict[tuple[Size, Size], int] = {}
    for p in pairs:
        key = (p.thermal_size, p.visible_size)
        counts[key] = counts.get(key, 0) + 1
    thermal, visible = max(counts, key=lambda k: counts[k])
    odd = [
        FrameVerdict(
            p.name,
            False,
            f"thermal {p.thermal_size[0]}x{p.thermal_size[1]}, visible "
            f"{p.visible_size[0]}x{p.visible_size[1]}: not the size of the other frames "
            f"({thermal[0]}x{thermal[1]}, {visible[0]}x{visible[1]})",
        )
        for p in pairs
        if (p.thermal_size, p.visible_size) != (thermal, visible)
    ]
    return thermal, visible, odd
