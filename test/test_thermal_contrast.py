"""The imvf-contrast mode: robust thermal gain, local background, the contrast carried over."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage

from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER
from sosmaskfuse_core.pipeline import FusionPipeline, PipelineConfig
from sosmaskfuse_core.pipeline import preprocessing as pp
from sosmaskfuse_core.pipeline.thermal_contrast import (
    ContrastCarryConfig,
    carry_thermal_contrast,
    local_background,
)
from sosmaskfuse_core.thermal.stretch import ThermalStretch, percentile_levels

minmax_like = pp.minmax_to_u8  # the paper's stretch with another image's range


def t4(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))[None, None]


def disk(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float32)


def target_contrast(image: np.ndarray, target: np.ndarray, ring: int = 6) -> float:
    """Mean inside the target minus the mean of a `ring`-pixel band around it."""
    t = target > 0.5
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    band = cv2.dilate(t.astype(np.uint8), k).astype(bool) & ~t
    image = np.asarray(image, np.float64)
    return float(image[t].mean() - image[band].mean())


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


def test_carry_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="sigma"):
        ContrastCarryConfig(sigma=0.0)


# --- the local background ------------------------------------------------------------------------


def test_local_background_ignores_the_target():
    img = np.full((64, 64), 50.0)
    target = disk(64, 64, 32, 32, 8)
    img[target > 0] = 200.0
    w = t4(1.0 - target)
    lb = local_background(t4(img) * w, w, sigma=6.0)
    # every background pixel is 50, and so is the global background mean: 50 everywhere
    assert torch.allclose(lb, torch.full_like(lb, 50.0), atol=1e-3)
    plain = local_background(t4(img), torch.ones_like(w), sigma=6.0)
    assert float(plain[0, 0, 32, 32]) > 120.0  # an ordinary blur sees the target


def test_local_background_of_a_ramp_is_the_ramp_inside():
    ramp = np.tile(np.linspace(0, 255, 96), (64, 1))
    w = torch.ones(1, 1, 64, 96)
    lb = local_background(t4(ramp), w, sigma=4.0)[0, 0].numpy()
    assert (
        np.abs(lb[16:48, 16:80] - ramp[16:48, 16:80]).max() < 1.0
    )  # a linear ramp is its own mean


# --- the carry on its own (a linear stand-in for the autoencoder) -------------------------------


def paper_output(ir, vis, m, mu=0.8, bg_weight=0.5):
    """What a linear autoencoder gives under IMV-F: m P + (1 - m) (background mix)."""
    return m * (mu * ir + (1 - mu) * vis) + (1 - m) * (bg_weight * ir + (1 - bg_weight) * vis)


def dim_target_scene(h=96, w=128):
    target = disk(h, w, 48, 64, 12)
    ir = np.where(target > 0, 65.0, 23.0)  # dim 8-bit thermal: 65 on 23
    yy, xx = np.mgrid[:h, :w]
    vis = 160.0 + 10.0 * np.sin(xx / 3.0) * np.cos(yy / 5.0)  # a bright textured road
    return ir, vis, target


def test_a_dim_target_comes_out_brighter_than_its_surround():
    ir, vis, target = dim_target_scene()
    fused = paper_output(ir, vis, target)
    assert target_contrast(fused, target) < 0  # the paper's absolute mix: darker
    out = carry_thermal_contrast(t4(fused), t4(ir), t4(vis), t4(target))[0, 0].numpy()
    assert target_contrast(out, target) >= 0.8 * (65 - 23)  # at least 80 % of the IR contrast
    assert out.max() <= 255.0 + 1e-3  # inside the headroom


def test_outside_the_mask_the_output_is_the_papers():
    ir, vis, target = dim_target_scene()
    fused = paper_output(ir, vis, target)
    out = carry_thermal_contrast(t4(fused), t4(ir), t4(vis), t4(target))[0, 0].numpy()
    assert np.array_equal(out[target == 0], fused[target == 0].astype(np.float32))


def invariance_scene(h=96, w=128):
    """IR with a 30..130 background ramp and a 170 target.

    Its gain stays inside [1, max_gain] for the gains tested (robust span 140 -> gain 1.8;
    x0.5 -> 3.6; x1.5 -> 1.2).
    """
    target = disk(h, w, 48, 64, 12)
    ramp = np.tile(np.linspace(30, 130, w), (h, 1))
    ir = np.where(target > 0, 170.0, ramp)
    vis = dim_target_scene(h, w)[1]
    return ir, vis, target


@pytest.mark.parametrize("saturate, tolerance", [(False, 0.01), (True, 0.06)])
def test_the_carried_contrast_is_invariant_to_thermal_gain_and_offset(saturate, tolerance):
    # The contrast itself is invariant; the soft headroom depends on the background level, which
    # the paper's background mix (and so its dependence on the thermal gain) sets.
    ir, vis, target = invariance_scene()
    cfg = ContrastCarryConfig(saturate=saturate)
    results = []
    for gain, offset in ((1.0, 0.0), (0.5, 10.0), (1.5, -40.0)):
        a = np.round(gain * ir + offset)
        fused = paper_output(a, vis, target)
        out = carry_thermal_contrast(t4(fused), t4(a), t4(vis), t4(target), config=cfg)[
            0, 0
        ].numpy()
        results.append(target_contrast(out, target))
    assert max(results) - min(results) < tolerance * max(results)


@pytest.mark.parametrize("change", ["exact", "too big", "too small", "soft"])
def test_no_halo_around_the_target_whatever_the_mask(change):
    ir, vis, target = dim_target_scene()
    vis = np.full_like(vis, 160.0)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    mask = {
        "exact": target,
        "too big": cv2.dilate(target, k),
        "too small": cv2.erode(target, k),
        "soft": cv2.GaussianBlur(cv2.dilate(target, k), (0, 0), 3.0),
    }[change]
    fused = paper_output(ir, vis, mask)
    out = carry_thermal_contrast(t4(fused), t4(ir), t4(vis), t4(mask))[0, 0].numpy()
    outside = cv2.dilate(target, k) == 0  # beyond any of the masks' targets
    near = outside & (
        cv2.dilate(target, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (25, 25))) > 0
    )
    far = outside & ~near
    # the background next to the target sits at the level of the background far from it
    assert abs(float(out[near].mean()) - float(out[far].mean())) < 2.0
    assert float(out[target > 0].mean()) > float(out[near].mean())


def test_a_mask_that_covers_everything_or_nothing():
    ir, vis, target = dim_target_scene(48, 64)
    for m in (np.zeros_like(target), np.ones_like(target)):
        fused = paper_output(ir, vis, m)
        out = carry_thermal_contrast(t4(fused), t4(ir), t4(vis), t4(m))
        assert torch.isfinite(out).all()
    empty = carry_thermal_contrast(
        t4(paper_output(ir, vis, 0 * target)), t4(ir), t4(vis), t4(0 * target)
    )
    assert torch.allclose(empty, t4(paper_output(ir, vis, 0 * target)))


def test_minmax_like_uses_the_reference_range():
    ref = torch.tensor([10.0, 20.0, 60.0]).view(1, 1, 1, 3)
    out = torch.tensor([10.0, 35.0, 80.0]).view(1, 1, 1, 3)
    # floor(255 (x - 10) / 50), clipped: 0, 127.5 -> 127, 357 -> 255
    assert minmax_like(out, ref).flatten().tolist() == [0, 127, 255]
    assert minmax_like(out, torch.full_like(ref, 3.0)).flatten().tolist() == [0, 0, 0]


# --- in the pipeline ---------------------------------------------------------------------------


def _blur(x: np.ndarray, sigma: float, mode: str) -> np.ndarray:
    """SciPy's Gaussian (radius ceil(3 sigma), normalised), `mode` padding (constant: zeros)."""
    radius = max(1, math.ceil(3 * sigma))
    return ndimage.gaussian_filter(x, sigma, mode=mode, cval=0.0, truncate=radius / sigma)


def carry_by_the_formulas(fused, ir, vis, m, mu=0.8) -> np.ndarray:
    """The module docstring's formulas with the default settings, in float64 NumPy and SciPy.

    Written apart from the module, as a check on it: normalised convolution with the global
    background fallback, the robust gain from inverted-CDF percentiles, the visible detail, the
    soft headroom. Full resolution only (the module blurs on a coarser grid from sigma >= 6).
    """
    fused, ir, vis, m = (np.asarray(a, np.float64) for a in (fused, ir, vis, m))
    sigma, fallback, max_gain = 0.05 * max(ir.shape), 0.05, 4.0
    assert sigma < 6
    w = 1.0 - m
    background = fused - m * (mu * ir + (1.0 - mu) * vis)  # BG; w x for the level L_F
    support = _blur(np.ones_like(w), sigma, "constant")

    def level(wx):  # L_x from w x
        num, den = _blur(wx, sigma, "constant"), _blur(w, sigma, "constant")
        r = np.maximum(0.0, fallback * support - den)
        return (num + r * wx.sum() / w.sum()) / np.maximum(den + r, 1e-6)

    level_f, level_ir = level(background), level(w * ir)
    low, high = np.quantile(ir, (0.005, 0.995), method="inverted_cdf")
    k = min(max(255.0 / max(high - low, 1.0), 1.0), max_gain)
    d = k * (ir - level_ir) + (1.0 - mu) * (vis - _blur(vis, 2.0, "nearest"))
    room = np.maximum(np.where(d >= 0, 255.0 - level_f, level_f), 1.0)
    return background + m * (level_f + room * np.tanh(d / room))


def minmax_u8(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """floor(255 (x - min ref) / (max ref - min ref)), clipped to 0..255 (the paper's stretch)."""
    low, high = float(reference.min()), float(reference.max())
    return np.clip(np.floor(255.0 * (x - low) / (high - low)), 0, 255)


def test_the_mode_is_the_paper_pass_plus_the_carry(tiny_autoencoder):
    pipe = FusionPipeline(
        tiny_autoencoder, device="cpu", config=PipelineConfig.paper(mask_source="topic")
    )
    rng = np.random.default_rng(0)
    ir, vis = rng.integers(0, 256, (2, 40, 56), dtype=np.uint8)
    mask = (disk(40, 56, 20, 28, 8) * 255).astype(np.uint8)
    paper = pipe(ir, vis, mask=mask)
    pipe.update(fusion_mode="imvf-contrast")
    ours = pipe(ir, vis, mask=mask)
    outside = mask == 0
    assert np.array_equal(ours.raw[outside], paper.raw[outside])  # the paper's, bit for bit
    expected = carry_by_the_formulas(paper.raw, ir, vis, mask / 255.0)
    scale = np.abs(expected).max()
    assert np.abs(ours.raw - expected).max() <= 1e-6 * scale + 1e-4
    assert not np.allclose(ours.raw[~outside], paper.raw[~outside])  # the targets changed
    # minmax scaling over the paper pass's range (paper_range), or over its own; floors of
    # float32 and float64 may differ by one level where the value lands on an integer
    assert ours.fused.dtype == np.uint8
    assert np.abs(ours.fused - minmax_u8(ours.raw, paper.raw)).max() <= 1
    assert np.mean(ours.fused == minmax_u8(ours.raw, paper.raw)) > 0.99
    pipe.update(contrast=ContrastCarryConfig(paper_range=False))
    own = pipe(ir, vis, mask=mask)
    assert np.abs(own.fused - minmax_u8(own.raw, own.raw)).max() <= 1
    assert np.mean(own.fused == minmax_u8(own.raw, own.raw)) > 0.99
    assert not np.array_equal(own.fused, ours.fused)


@pytest.fixture(scope="module")
def shipped_pipeline():
    if not SHIPPED_AUTOENCODER.is_file():
        pytest.skip("no shipped autoencoder weights")
    model, _ = load_autoencoder(SHIPPED_AUTOENCODER)
    return FusionPipeline(
        model, device="cpu", config=PipelineConfig(output_scaling="clip", mask_source="topic")
    )


def test_shipped_autoencoder_dim_target_on_a_bright_road(shipped_pipeline):
    ir, vis, target = dim_target_scene()
    ir_u8, vis_u8 = ir.astype(np.uint8), np.round(vis).astype(np.uint8)
    mask = (target * 255).astype(np.uint8)
    shipped_pipeline.update(fusion_mode="imvf")
    paper = shipped_pipeline(ir_u8, vis_u8, mask=mask).fused
    shipped_pipeline.update(fusion_mode="imvf-contrast")
    ours = shipped_pipeline(ir_u8, vis_u8, mask=mask).fused
    assert target_contrast(paper, target) < 0  # the problem, with an exact mask
    assert target_contrast(ours, target) >= 0.8 * (65 - 23)


def test_shipped_autoencoder_result_is_invariant_to_thermal_gain(shipped_pipeline):
    ir, vis, target = invariance_scene()
    mask = (target * 255).astype(np.uint8)
    shipped_pipeline.update(fusion_mode="imvf-contrast")
    contrasts = [
        target_contrast(
            shipped_pipeline(
                np.round(g * ir + o).astype(np.uint8), np.round(vis).astype(np.uint8), mask=mask
            ).fused,
            target,
        )
        for g, o in ((1.0, 0.0), (0.5, 10.0))
    ]
    assert abs(contrasts[0] - contrasts[1]) < 0.1 * contrasts[0]


def test_one_frame_computes_the_gain_normaliser_once(tiny_autoencoder, tiny_sosnet, monkeypatch):
    """The SOS input stretch and the contrast carry share one set of percentile limits."""
    pipe = FusionPipeline(
        tiny_autoencoder,
        tiny_sosnet,
        device="cpu",
        config=PipelineConfig(
            sos_size=(64, 64), fusion_mode="imvf-contrast", mask_source="sosnet"
        ),
    )
    assert pipe.config.mask_input_stretch
    calls = []
    original = ThermalStretch.limits
    monkeypatch.setattr(
        ThermalStretch, "limits", lambda self, ir: calls.append(ir.shape) or original(self, ir)
    )
    rng = np.random.default_rng(0)
    ir, vis = rng.integers(0, 256, (2, 40, 56), dtype=np.uint8)
    pipe(ir, vis)
    assert calls == [(1, 1, 40, 56)]
