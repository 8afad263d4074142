"""The thermal gain normaliser: histogram percentiles and the robust stretch, per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sosmaskfuse_core.thermal.stretch import ThermalStretch, percentile_levels


def t4(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))[None, None]


# --- percentiles and the robust stretch ---------------------------------------------------------


def test_percentiles_from_the_histogram():
    x = t4(np.arange(100).reshape(10, 10))
    # smallest level with at least q % of the 100 pixels at or below it
    assert percentile_levels(x, (0.0, 1.0, 50.0, 99.0, 100.0)).tolist() == [[0, 0, 49, 98, 99]]


def test_percentiles_are_per_image_in_a_batch():
    x = torch.cat([t4(np.full((4, 4), 10)), t4(np.full((4, 4), 200))])
    assert percentile_levels(x, (50.0,)).tolist() == [[10], [200]]


def test_stretch_of_a_two_level_image_is_limited_by_max_gain():
    x = t4(np.repeat([[50.0, 100.0]], 8, axis=0))  # p0.5 = 50, p99.5 = 100
    stretch = ThermalStretch(max_gain=4.0)
    lo, gain = stretch.limits(x)
    # 255 / 50 = 5.1 > 4: span 63.75 centred on 75 -> lo = 43.125
    assert float(gain) == pytest.approx(4.0) and float(lo) == pytest.approx(43.125)
    assert sorted(set(stretch(x).flatten().tolist())) == pytest.approx([27.5, 227.5])


def test_stretch_never_compresses_a_full_range_image():
    ramp = t4(np.tile(np.arange(256.0), (4, 1)))
    assert float(ThermalStretch().limits(ramp)[1]) == pytest.approx(255.0 / (254 - 1))
    assert float(ThermalStretch(low_percent=0.0, high_percent=100.0).limits(ramp)[1]) == 1.0


def test_stretch_is_invariant_to_thermal_gain_and_offset():
    rng = np.random.default_rng(1)
    base = rng.normal(100, 30, (60, 80)).clip(0, 255)
    a = ThermalStretch()(t4(np.round(base)))
    b = ThermalStretch()(t4(np.round(0.5 * base + 40)))  # half the gain, an offset
    assert float((a - b).abs().mean()) < 2.5  # two 8-bit quantisations apart


@pytest.mark.parametrize("kwargs", [dict(low_percent=50.0, high_percent=50.0), dict(max_gain=0.5)])
def test_stretch_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match="ThermalStretch"):
        ThermalStretch(**kwargs)
