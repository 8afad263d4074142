"""Settings of the classical hot-object mask (ThermalMaskConfig), validated.

The method itself is in hot_object_mask.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ThermalMaskConfig:
    """Settings of the thermal hot-object mask; every field is validated on construction.

    Sizes and areas are relative to the image so one configuration serves any resolution.
    """

    #: Long side, in pixels, of the working image (the input is downscaled to it; smaller is
    #: faster; objects below ~``min_area`` of the frame are not resolved).
    work_size: int = 160
    #: Number of grey levels at which the component tree is cut.
    levels: int = 16
    #: Levels are spaced evenly from this percentile of the normalised image to its maximum
    #: (hot objects are brighter than at least this share of the frame).
    base_percentile: float = 50.0
    #: Set for "black-hot" palettes (hot = dark); by default hot = bright ("white-hot").
    black_hot: bool = False
    #: Percentiles mapped to 0 and 1 by the robust normalisation.
    low_percentile: float = 0.5
    high_percentile: float = 99.8
    #: Width of the surround ring, as a fraction of sqrt(bbox width * bbox height).
    ring: float = 0.5
    #: Smallest and largest candidate area, as fractions of the image area.
    min_area: float = 0.0003
    max_area: float = 0.25
    #: Largest candidate bbox width / height, as fractions of the image width / height.
    max_width: float = 0.6
    max_height: float = 0.95
    #: A candidate wider than ``band_aspect`` x its height and than 30 % of the image width
    #: is a horizontal band (horizon, skyline, hot sky) and is dropped.
    band_aspect: float = 4.0
    #: Score factor for running along the image border, raised to the candidate's contact:
    #: the length it runs along the left+right edges over its height plus that along the
    #: top+bottom edges over its width (1 = no penalty).
    border_penalty: float = 0.6
    #: Upright prior: candidates less than ``upright`` times as tall as wide lose score in
    #: proportion (a person standing is ~2-4x taller than wide; 0 = no shape prior).
    upright: float = 1.2
    #: Size gain: the score is multiplied by min(area / 0.1 % of the image, 4) ** size_power
    #: (larger warm regions need less contrast; tiny specks more).
    size_power: float = 0.3
    #: Exponent of the candidate's peak brightness in the score: the highest threshold (in
    #: [0, 1]) that some part of it still reaches (hot people and engines peak near 1; warm
    #: walls, roofs and paths lower).
    brightness_power: float = 2.0
    #: Acceptance: a candidate's score must reach ``min_contrast`` (contrast in units of
    #: sqrt(0.1 x the frame's global std), times the factors above) ...
    min_contrast: float = 2.0
    #: ... and, without the peak factor, ``seed_rel`` times the best such score in the frame.
    seed_rel: float = 0.6
    #: Optional growth after the selection (1 = off): a larger candidate overlapping the
    #: selection joins it if its contrast is at least this fraction of the selected pixels' ...
    grow_rel: float = 1.0
    #: ... and its area at most this multiple of the selected pixels inside it.
    grow_area: float = 10.0
    #: Noise floor: a candidate's contrast (inside minus ring mean) must be at least this many
    #: times the estimated pixel noise (flat frames and pure noise give an empty mask).
    noise_contrast: float = 6.0
    #: Fill holes inside mask components.
    fill_holes: bool = True
    #: Soft-edge width in working-size pixels (the sigmoid's 12 %-88 % span); 0 = binary mask.
    feather: float = 0.5
    #: Halo around the objects, as a fraction of the image's long side (0 = none): the mask
    #: outside an object is at least ``halo_level`` times a blurred dilation of it by this radius.
    halo: float = 0.03
    #: Highest mask value of the halo; below 0.5, so the mask thresholded at 0.5 is unchanged.
    halo_level: float = 0.49

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"ThermalMaskConfig: {what}")

        need(
            isinstance(self.work_size, (int, np.integer)) and 16 <= self.work_size <= 4096,
            f"work_size must be an int in [16, 4096], got {self.work_size!r}",
        )
        need(
            isinstance(self.levels, (int, np.integer)) and 2 <= self.levels <= 256,
            f"levels must be an int in [2, 256], got {self.levels!r}",
        )
        need(0.0 <= self.base_percentile < 100.0, "base_percentile must be in [0, 100)")
        need(
            0.0 <= self.low_percentile < self.high_percentile <= 100.0,
            "need 0 <= low_percentile < high_percentile <= 100",
        )
        need(0.0 <= self.ring <= 5.0, "ring must be in [0, 5]")
        need(0.0 <= self.min_area < self.max_area <= 1.0, "need 0 <= min_area < max_area <= 1")
        need(
            0.0 < self.max_width <= 1.0 and 0.0 < self.max_height <= 1.0,
            "max_width and max_height must be in (0, 1]",
        )
        need(self.band_aspect > 0.0, "band_aspect must be > 0")
        need(0.0 <= self.border_penalty <= 1.0, "border_penalty must be in [0, 1]")
        need(0.0 <= self.upright <= 10.0, "upright must be in [0, 10]")
        need(0.0 <= self.size_power <= 2.0, "size_power must be in [0, 2]")
        need(0.0 <= self.brightness_power <= 10.0, "brightness_power must be in [0, 10]")
        need(0.0 < self.seed_rel <= 1.0, "seed_rel must be in (0, 1]")
        need(0.0 < self.grow_rel <= 1.0, "grow_rel must be in (0, 1]")
        need(self.grow_area >= 1.0, "grow_area must be >= 1")
        need(self.min_contrast >= 0.0, "min_contrast must be >= 0")
        need(self.noise_contrast >= 0.0, "noise_contrast must be >= 0")
        need(0.0 <= self.feather <= 50.0, "feather must be in [0, 50]")
        need(0.0 <= self.halo <= 0.5, "halo must be in [0, 0.5]")
        need(0.0 <= self.halo_level < 0.5, "halo_level must be in [0, 0.5)")

    def replace(self, **changes: Any) -> "ThermalMaskConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
