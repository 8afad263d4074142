"""Automatic gain control: stretch raw 16-bit thermal counts to an 8-bit image.

A linear map sends the chosen ``low`` count to 0 and ``high`` to 255 (values outside
are clipped, results rounded to nearest). ``mode`` picks the two counts:

* ``minmax``: the image's minimum and maximum;
* ``percentile``: the ``low_percent`` / ``high_percent`` percentiles (default 1/99),
  identical to ``numpy.percentile``'s default (linear) method, but read off a
  65536-bin histogram for uint16 input, which is several times faster than sorting
  or partitioning;
* ``fixed``: ``fixed_min`` / ``fixed_max`` counts.

uint8 input is already display range and is returned unchanged (the same object).
float32 input (e.g. a decoded ``32FC1`` image in kelvin) is handled the same way as
uint16 and must be finite. When ``high <= low`` -- a constant image in ``minmax`` or
``percentile`` mode -- there is no contrast to stretch and the result is all zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sosmaskfuse_core.settings import table

MODES: tuple[str, ...] = table.AGC_MODES
#: ThermalAGC field -> the setting it comes from (defaults and checks live in the settings table).
SETTING_OF_FIELD = {
    "mode": "thermal_agc",
    "low_percent": "agc_low_percent",
    "high_percent": "agc_high_percent",
    "fixed_min": "agc_min",
    "fixed_max": "agc_max",
}


@dataclass(frozen=True)
class ThermalAGC:
    """Settings of the 16-bit to 8-bit stretch; call :meth:`apply` on each frame."""

    mode: str = table.default("thermal_agc")
    low_percent: float = table.default("agc_low_percent")
    high_percent: float = table.default("agc_high_percent")
    fixed_min: float = table.default("agc_min")
    fixed_max: float = table.default("agc_max")

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> ThermalAGC:
        """The gain control named by settings values (thermal_agc, agc_low_percent, ...)."""
        return cls(**{f: values[name] for f, name in SETTING_OF_FIELD.items() if name in values})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"ThermalAGC.mode must be one of {', '.join(MODES)}; got {self.mode!r}"
            )
        for field in ("low_percent", "high_percent", "fixed_min", "fixed_max"):
            value = getattr(self, field)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"ThermalAGC.{field} must be a finite number; got {value!r}")
        if not 0.0 <= self.low_percent < self.high_percent <= 100.0:
            raise ValueError(
                "ThermalAGC.low_percent and high_percent need 0 <= low_percent < "
                f"high_percent <= 100; got low_percent={self.low_percent}, "
                f"high_percent={self.high_percent}"
            )
        if not self.fixed_min < self.fixed_max:
            raise ValueError(
                f"ThermalAGC.fixed_min must be below fixed_max; got "
                f"fixed_min={self.fixed_min}, fixed_max={self.fixed_max}"
            )

    def limits(self, image: np.ndarray) -> tuple[float, float]:
        """The counts that :meth:`apply` maps to 0 and 255 for this ``image``."""
        _check_input(image)
        if self.mode == "fixed":
            return float(self.fixed_min), float(self.fixed_max)
        if self.mode == "minmax":
            return float(image.min()), float(image.max())
        percents = (self.low_percent, self.high_percent)
        if image.dtype == np.uint16:
            low, high = _histogram_percentiles(image, percents)
        else:
            low, high = np.percentile(image, percents)
        return float(low), float(high)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """HxW uint8 version of ``image`` (HxW uint16 or float32; uint8 passes through)."""
        if image.dtype == np.uint8:
            return image
        low, high = self.limits(image)
        return stretch_to_uint8(image, low, high)


def stretch_to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low`` to 0 and ``high`` to 255 linearly, clip, round; zeros if ``high <= low``."""
    if not high > low:
        return np.zeros(image.shape, dtype=np.uint8)
    scaled = image.astype(np.float32)
    scaled -= np.float32(low)
    scaled *= np.float32(255.0 / (high - low))
    np.clip(scaled, 0.0, 255.0, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def _check_input(image: np.ndarray) -> None:
    if image.ndim != 2:
        raise ValueError(f"ThermalAGC needs a single-channel HxW image; got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise TypeError(f"ThermalAGC handles uint8, uint16 and float32; got {image.dtype}")
    if image.size == 0:
        raise ValueError("ThermalAGC got an empty image")


def _histogram_percentiles(image: np.ndarray, percents: tuple[float, ...]) -> np.ndarray:
    """``numpy.percentile(image, percents)`` (linear method) for uint16, from a histogram."""
    cumulative = np.cumsum(np.bincount(image.reshape(-1), minlength=1 << 16))
    last = image.size - 1
    ranks = np.asarray(percents, dtype=np.float64) / 100.0 * last
    below = np.floor(ranks).astype(np.int64)
    above = np.minimum(below + 1, last)
    # The k-th smallest value (0-based) is the first count whose cumulative total exceeds k.
    low_values = np.searchsorted(cumulative, below, side="right").astype(np.float64)
    high_values = np.searchsorted(cumulative, above, side="right").astype(np.float64)
    return low_values + (ranks - below) * (high_values - low_values)
