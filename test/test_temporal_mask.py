"""MaskSmoother: EMA state, the motion cue, resets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sosmaskfuse_core.thermal.temporal_mask import MaskSmoother, MaskSmootherConfig


def test_first_frame_passes_then_the_ema_of_static_frames():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.25))
    ir = np.full((8, 8), 100, np.uint8)
    first = np.full((8, 8), 0.8, np.float32)
    assert np.array_equal(s.update(first, ir), first)
    out = s.update(np.zeros((8, 8), np.float32), ir)  # 0.25 * 0 + 0.75 * 0.8
    assert np.allclose(out, 0.6)
    out = s.update(np.ones((8, 8), np.float32), ir)  # 0.25 * 1 + 0.75 * 0.6
    assert np.allclose(out, 0.7)
    assert out.dtype == np.float32


def test_pixels_whose_thermal_value_changed_follow_the_new_mask():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.25, motion_scale=10.0))
    ir = np.full((16, 16), 50.0, np.float32)
    s.update(np.zeros((16, 16), np.float32), ir)
    moved = ir.copy()
    moved[4:12, 4:12] = 200.0  # a warm target walked in
    out = s.update(np.where(moved > 100, 1.0, 0.0).astype(np.float32), moved)
    assert np.allclose(out[6:10, 6:10], 1.0)  # its pixels: the new mask at once
    assert np.allclose(out[0, 0], 0.0)  # static background: unchanged
    # half a motion scale of change (after the 3x3 box blur) gives half the way from alpha to 1
    s2 = MaskSmoother(MaskSmootherConfig(alpha=0.2, motion_scale=10.0))
    s2.update(np.zeros((6, 6), np.float32), np.zeros((6, 6), np.float32))
    out = s2.update(np.ones((6, 6), np.float32), np.full((6, 6), 5.0, np.float32))
    assert np.allclose(out, 0.2 + 0.8 * 0.5)


def test_reset_forgets_the_state():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.5))
    s.update(np.ones((4, 4), np.float32))
    assert s.state[0] is not None
    s.reset()
    assert s.state == (None, None)
    assert np.allclose(s.update(np.zeros((4, 4), np.float32)), 0.0)


def test_a_scene_cut_or_a_new_size_resets():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.5, cut_change=40.0))
    s.update(np.ones((4, 4), np.float32), np.zeros((4, 4), np.float32))
    out = s.update(np.zeros((4, 4), np.float32), np.full((4, 4), 100.0, np.float32))  # cut
    assert np.allclose(out, 0.0)
    out = s.update(np.ones((6, 5), np.float32), np.zeros((6, 5), np.float32))  # new size
    assert np.allclose(out, 1.0)


def test_static_pixels_keep_following_the_ema_while_a_warm_target_walks_in():
    """A warm target changes a few pixels by a lot: not a scene cut (the mean change is small).

    Static pixels away from it keep averaging (out = alpha p + (1 - alpha) out_prev), the
    target's pixels follow the new mask at once, frame after frame as it walks.
    """
    alpha = 0.25
    s = MaskSmoother(MaskSmootherConfig(alpha=alpha, motion_scale=10.0, cut_change=40.0))
    background = np.full((32, 32), 50.0, np.float32)
    previous = np.full((32, 32), 0.8, np.float32)
    s.update(previous, background)
    for step, x in enumerate((2, 6, 10)):  # the target walks to the right, 4 px a frame
        ir = background.copy()
        ir[12:20, x : x + 8] = 200.0  # 150 levels warmer; the frame's mean change is 9.4 < 40
        prob = np.zeros((32, 32), np.float32)
        prob[12:20, x : x + 8] = 1.0
        out = s.update(prob, ir)
        expected_static = alpha * 0.0 + (1 - alpha) * previous[0, 0]
        far = np.ones((32, 32), bool)
        far[10:22, :] = False  # rows the target and the 3x3 blur of its edge can reach
        assert np.allclose(out[far], expected_static), step
        assert np.allclose(out[12:20, x + 1 : x + 7], 1.0), step  # inside, away from its edge
        previous = np.full((32, 32), expected_static, np.float32)


def test_without_thermal_frames_it_is_a_plain_ema():
    s = MaskSmoother(MaskSmootherConfig(alpha=0.5))
    s.update(torch.zeros(3, 3))
    out = s.update(torch.ones(3, 3))
    assert isinstance(out, torch.Tensor) and torch.allclose(out, torch.full((3, 3), 0.5))


def test_bad_input_is_refused_and_changes_nothing():
    s = MaskSmoother()
    s.update(np.zeros((4, 4), np.float32))
    before = s.state[0].clone()
    with pytest.raises(ValueError, match="NaN"):
        s.update(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="thermal frame"):
        s.update(np.zeros((4, 4), np.float32), np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match="H x W"):
        s.update(np.zeros((4, 4, 3), np.float32))
    assert torch.equal(s.state[0], before)


@pytest.mark.parametrize(
    "kwargs", [dict(alpha=0.0), dict(alpha=1.5), dict(motion_scale=-1.0), dict(cut_change=0.0)]
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match="MaskSmootherConfig"):
        MaskSmootherConfig(**kwargs)


# --- in the per-pair stage ---------------------------------------------------------------------


def _stage_pairs(n=4):
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(100, 156, 40), (32, 1))
    irs = [np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]
    vis = rng.integers(0, 256, (32, 40), dtype=np.uint8)
    return irs, vis


def test_the_stage_smooths_computed_masks_in_order_and_batches_alike(tiny_autoencoder):
    from sosmaskfuse_core.pipeline import FusionPipeline, PairStage, PipelineConfig
    from sosmaskfuse_core.pipeline.pair_stage import Frame

    def threshold(gray):
        return (gray > 128).astype(np.float32)

    pipe = FusionPipeline(
        tiny_autoencoder,
        device="cpu",
        config=PipelineConfig.paper(mask_source="thermal"),
        thermal_masker=threshold,
    )
    irs, vis = _stage_pairs()
    stage = PairStage(pipe, mask_smoothing=0.6)
    one_by_one = [stage(Frame(ir, "mono8"), Frame(vis, "mono8")).mask for ir in irs]
    # the same EMA by hand, from the per-frame masks
    ref = MaskSmoother(MaskSmootherConfig(alpha=0.4))
    expected = [np.round(255 * ref.update(threshold(ir), ir.astype(np.float32))) for ir in irs]
    for got, want in zip(one_by_one, expected):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    stage.restart_stream()  # one pass over the whole sequence gives the same masks
    batch = stage.run([(Frame(ir, "mono8"), Frame(vis, "mono8"), None) for ir in irs])
    assert all(np.array_equal(b.mask, m) for b, m in zip(batch, one_by_one))
    # a given mask is used as given
    given = Frame((threshold(irs[1]) * 255).astype(np.uint8), "mono8")
    assert np.array_equal(
        stage(Frame(irs[1], "mono8"), Frame(vis, "mono8"), given).mask, given.image
    )


def test_mask_smoothing_is_a_live_setting(tiny_autoencoder):
    from sosmaskfuse_core.pipeline import FusionPipeline, PairStage
    from sosmaskfuse_core.pipeline.builder import LiveSettings
    from sosmaskfuse_core.settings import table

    stage = PairStage(FusionPipeline(tiny_autoencoder, device="cpu"))
    assert stage.smoother is None  # the library's stage smooths only when asked
    values = {**table.defaults(table.NODE)}
    LiveSettings.check(stage, values).apply(stage)
    assert stage.smoother is not None and stage.smoother.config.alpha == pytest.approx(0.4)
    with pytest.raises(ValueError, match="mask_smoothing"):
        LiveSettings.check(stage, {**values, "mask_smoothing": 1.0})
    assert stage.smoother.config.alpha == pytest.approx(0.4)  # a refused value changes nothing
    LiveSettings.check(stage, {**values, "mask_smoothing": 0.0}).apply(stage)
    assert stage.smoother is None
