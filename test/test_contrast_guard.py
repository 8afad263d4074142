"""The contrast guard of imvf-contrast: targets keep a floor of their thermal contrast, mask or no.

Expectations come from the scenes' construction (a disc of known thermal contrast on a flat
surround, a fused image that shows it inverted or weakened) and from the box-level measure, not
from the guard's own code.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER
from sosmaskfuse_core.pipeline import FusionPipeline, PipelineConfig, filters
from sosmaskfuse_core.pipeline.contrast_guard import (
    ContrastGuardConfig,
    guard_thermal_contrast,
    target_map,
)
from sosmaskfuse_core.thermal.stretch import ThermalStretch

H, W = 128, 160


def t4(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))[None, None]


def disk(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float32)


def contrast(image, target: np.ndarray, ring: int = 8) -> float:
    """Mean inside the target minus the mean of a `ring`-pixel band around it."""
    image = np.asarray(image, np.float64).reshape(target.shape)
    t = target > 0.5
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    band = cv2.dilate(t.astype(np.uint8), k).astype(bool) & ~t
    return float(image[t].mean() - image[band].mean())


def scene(ir_target=65.0, ir_background=23.0, fused_target=120.0, fused_background=160.0):
    """A disc in the thermal image, and a fused image that shows it with other levels."""
    target = disk(H, W, 64, 80, 10)
    ir = np.where(target > 0, ir_target, ir_background)
    yy, xx = np.mgrid[:H, :W]
    texture = 6.0 * np.sin(xx / 3.0) * np.cos(yy / 5.0)  # visible detail the guard must keep
    fused = np.where(target > 0, fused_target, fused_background) + texture
    return t4(ir), t4(fused), target


def guard(fused, ir, targets, gain=1.0, **kwargs):
    return guard_thermal_contrast(fused, ir, targets, gain, ContrastGuardConfig(**kwargs))


def everywhere(shape=(H, W)) -> torch.Tensor:
    return torch.ones(1, 1, *shape)


# --- the guard on its own ----------------------------------------------------------------------


def test_an_inverted_target_gets_its_thermal_polarity_back():
    ir, fused, target = scene()  # warm in IR (+42), darker than its surround in the fusion
    assert contrast(fused, target) < 0
    out = guard(fused, ir, everywhere())
    assert contrast(out, target) >= 0.8 * 42.0


def test_a_cold_target_stays_darker_than_its_surround():
    ir, fused, target = scene(ir_target=10.0, ir_background=60.0, fused_target=200.0)
    assert contrast(fused, target) > 0  # a cold car the headlights make bright
    out = guard(fused, ir, everywhere())
    assert contrast(out, target) <= -0.8 * 50.0


def test_the_floor_scales_with_the_thermal_gain():
    ir, fused, target = scene()
    one = contrast(guard(fused, ir, everywhere(), gain=1.0), target)
    two = contrast(guard(fused, ir, everywhere(), gain=2.0), target)
    assert two == pytest.approx(2.0 * one, rel=0.2)


def test_a_target_the_fusion_already_keeps_is_left_alone():
    ir, _, target = scene()
    fused = 10.0 + 1.5 * ir  # the thermal polarity, and more of it than the floor asks
    assert torch.allclose(guard(fused, ir, everywhere()), fused, atol=1e-3)


def test_flat_thermal_structure_changes_nothing():
    rng = np.random.default_rng(0)
    ir = t4(100.0 + rng.uniform(-0.5, 0.5, (H, W)))  # band magnitudes far below the threshold
    _, fused, _ = scene()
    assert torch.allclose(guard(fused, ir, everywhere()), fused, atol=1e-4)


def test_nothing_changes_where_the_target_map_is_zero():
    ir, fused, target = scene()
    assert torch.equal(guard(fused, ir, torch.zeros(1, 1, H, W)), fused)
    assert torch.equal(guard(fused, ir, everywhere(), floor=0.0), fused)
    # a target map on the left third: the right third, beyond the coarsest band's reach, is kept
    left = torch.zeros(1, 1, H, W)
    left[..., : W // 3] = 1.0
    ir2, fused2, _ = scene()
    ir2[..., : W // 3] = t4(np.where(disk(H, W // 3, 64, 25, 8) > 0, 70.0, 20.0))
    out = guard(fused2, ir2, left, last_level=3)
    assert torch.equal(out[..., -W // 3 :], fused2[..., -W // 3 :])


def test_the_visible_detail_around_a_target_is_kept():
    ir, fused, target = scene()
    out = guard(fused, ir, everywhere(), last_level=3)  # bands of up to ~16 px
    far = cv2.dilate(target, np.ones((61, 61), np.uint8)) == 0
    assert np.abs(out[0, 0].numpy()[far] - fused[0, 0].numpy()[far]).max() < 1e-3


def test_target_map_is_the_strongest_evidence_and_grown():
    cfg = ContrastGuardConfig(gate_threshold=0.2, gate_radius=0.05)
    weak = torch.zeros(1, 1, 64, 80)
    weak[..., 28:36, 36:44] = 0.5  # a network probability above its threshold
    gate = target_map([torch.zeros(1, 1, 64, 80)], weak, cfg)
    assert gate.shape[-2:] == (32, 40)
    assert float(gate.max()) == 1.0 and float(gate[..., 0, 0]) == 0.0
    reach = (gate[0, 0] > 0.5).nonzero()
    assert int(reach[:, 1].max() - reach[:, 1].min()) >= 2 * round(0.5 * 0.05 * 80)
    # a mask counts where it passes 0.5: a classical mask's halo (below 0.5) is no target
    halo = torch.full((1, 1, 64, 80), 0.45)
    assert float(target_map([halo], None, cfg).max()) == 0.0
    core = torch.zeros(1, 1, 64, 80)
    core[..., 20:40, 20:40] = 1.0
    assert float(target_map([halo, core], None, cfg).max()) == 1.0


@pytest.mark.parametrize(
    "kwargs", [dict(floor=-1.0), dict(threshold=0.0), dict(first_level=-1), dict(gate_radius=1.0)]
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="ContrastGuardConfig"):
        ContrastGuardConfig(**kwargs)


# --- the filters: OpenCV on the CPU, PyTorch elsewhere, the same numbers ------------------------


@pytest.mark.parametrize("size", [(45, 61), (64, 80)])
def test_the_cpu_filters_are_the_torch_filters(size):
    x = torch.rand(2, 3, *size) * 255
    assert torch.allclose(filters.pyr_down(x), filters.pyr_down_torch(x), atol=1e-3)
    for to in ((size[0] * 2, size[1] * 2), (20, 30)):
        assert torch.allclose(filters.resize(x, to), filters.resize_torch(x, to), atol=1e-2)
    assert torch.equal(filters.dilate(x, 3), filters.dilate_torch(x, 3))


def test_pyr_down_is_burt_and_adelsons_reduce():
    x = np.random.default_rng(2).uniform(0, 255, (31, 37)).astype(np.float32)
    k = np.array([1, 4, 6, 4, 1], np.float64) / 16.0
    padded = np.pad(x.astype(np.float64), 2, mode="reflect")
    blurred = np.apply_along_axis(lambda r: np.convolve(r, k, "valid"), 1, padded)
    blurred = np.apply_along_axis(lambda c: np.convolve(c, k, "valid"), 0, blurred)
    expected = blurred[::2, ::2]
    assert np.allclose(filters.pyr_down(t4(x))[0, 0].numpy(), expected, atol=1e-3)


# --- in the pipeline -----------------------------------------------------------------------------


def test_the_mode_is_the_decoder_output_with_the_guard(tiny_autoencoder):
    pipe = FusionPipeline(
        tiny_autoencoder,
        device="cpu",
        config=PipelineConfig(mask_source="topic", output_scaling="minmax", precision="fp32"),
    )
    rng = np.random.default_rng(0)
    ir, vis = rng.integers(0, 256, (2, 40, 56), dtype=np.uint8)
    nothing = np.zeros((40, 56), np.uint8)
    plain = pipe(ir, vis, mask=nothing, outputs=("raw", "decoded"))
    assert np.array_equal(plain.raw, plain.decoded)  # no target seen: the decoder's output
    pipe.update(fusion_mode="imvf")
    paper = pipe(ir, vis, mask=nothing)
    assert np.array_equal(paper.raw, plain.decoded)
    pipe.update(fusion_mode="imvf-contrast")
    mask = (disk(40, 56, 20, 28, 8) * 255).astype(np.uint8)
    ours = pipe(ir, vis, mask=mask)
    assert not np.array_equal(ours.raw, ours.decoded)
    # the stretch of the paper's pass: its limits are the decoder output's
    lo, hi = ours.decoded.min(), ours.decoded.max()
    expected = np.floor(np.clip(255 * (ours.raw - lo) / (hi - lo), 0, 255))
    assert np.abs(ours.fused.astype(int) - expected).max() <= 1


@pytest.fixture(scope="module")
def shipped_pipeline():
    if not SHIPPED_AUTOENCODER.is_file():
        pytest.skip("no shipped autoencoder weights")
    model, _ = load_autoencoder(SHIPPED_AUTOENCODER)
    return FusionPipeline(
        model, device="cpu", config=PipelineConfig(output_scaling="clip", mask_source="topic")
    )


def dim_target_scene(h=96, w=128):
    target = disk(h, w, 48, 64, 12)
    ir = np.where(target > 0, 65.0, 23.0)  # dim 8-bit thermal: 65 on 23
    yy, xx = np.mgrid[:h, :w]
    vis = 160.0 + 10.0 * np.sin(xx / 3.0) * np.cos(yy / 5.0)  # a bright textured road
    return ir, vis, target


def test_shipped_autoencoder_dim_target_on_a_bright_road(shipped_pipeline):
    ir, vis, target = dim_target_scene()
    ir_u8, vis_u8 = ir.astype(np.uint8), np.round(vis).astype(np.uint8)
    mask = (target * 255).astype(np.uint8)
    shipped_pipeline.update(fusion_mode="imvf")
    paper = shipped_pipeline(ir_u8, vis_u8, mask=mask).fused
    shipped_pipeline.update(fusion_mode="imvf-contrast")
    ours = shipped_pipeline(ir_u8, vis_u8, mask=mask).fused
    assert contrast(paper, target, 6) < 0  # the problem, with an exact mask
    assert contrast(ours, target, 6) >= 0.8 * (65 - 23)


def test_shipped_autoencoder_result_is_invariant_to_thermal_gain(shipped_pipeline):
    target = disk(96, 128, 48, 64, 12)
    ramp = np.tile(np.linspace(30, 130, 128), (96, 1))
    ir = np.where(target > 0, 170.0, ramp)
    vis = dim_target_scene()[1]
    mask = (target * 255).astype(np.uint8)
    shipped_pipeline.update(fusion_mode="imvf-contrast")
    contrasts = [
        contrast(
            shipped_pipeline(
                np.round(g * ir + o).astype(np.uint8), np.round(vis).astype(np.uint8), mask=mask
            ).fused,
            target,
            6,
        )
        for g, o in ((1.0, 0.0), (0.5, 10.0))
    ]
    assert abs(contrasts[0] - contrasts[1]) < 0.15 * contrasts[0]


def test_one_frame_computes_the_gain_normaliser_once(tiny_autoencoder, tiny_sosnet, monkeypatch):
    """The SOS input stretch and the contrast guard share one set of percentile limits."""
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
