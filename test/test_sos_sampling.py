"""train-sosnet with several folders: views, weight maps, the sampler, resume; loading the result.

Views (zoom, flip, padding), weight maps in the loss, the source sampler, resume exactness and
the metadata; a checkpoint trained with the new options loads into `build_pipeline` and gives
the pipeline's masks; eval-mask --source sosnet on a tiny network.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_train_sosnet import TINY_ARGS, make_data, tiny_cfg

from sosmaskfuse_core import cli
from sosmaskfuse_core.commands import eval_mask
from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.pipeline import PipelineConfig, SOSNetMasker, build_pipeline
from sosmaskfuse_core.pipeline.preprocessing import logit_to_probability, sos_input
from sosmaskfuse_core.thermal.stretch import ThermalStretch
from sosmaskfuse_core.training import sosnet as ts
from sosmaskfuse_core.training.sosnet.sampling import (
    ViewConfig,
    batch_plan,
    sample_batch,
    warp_sample,
)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sample(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    thermal = rng.integers(0, 256, (h, w, 1), np.uint8)
    mask = np.zeros((h, w, 1), np.uint8)
    mask[10:30, 5:25] = 255
    return ts.MaskSample("s", thermal, mask)


def test_the_whole_frame_view_is_the_paper_preprocessing():
    s = _sample()
    x, y, w = warp_sample(
        s.thermal, s.mask, None, ViewConfig((32, 24), flip=False), np.random.default_rng(0)
    )
    rx, ry = ts.prepare(s, (32, 24))
    # the view is resized as uint8 before the normalisation: equal up to one grey level's rounding
    assert x.shape == rx.shape and float((x - rx).abs().max()) < 0.02
    assert torch.allclose(y, ry, atol=1e-5) and bool((w == 1).all())


def test_a_flipped_view_is_the_mirror_image():
    s = _sample()
    for seed in range(20):
        a = warp_sample(
            s.thermal,
            s.mask,
            None,
            ViewConfig((32, 24), (0.8, 1.6), 0.1, flip=True),
            np.random.default_rng(seed),
        )
        b = warp_sample(
            s.thermal,
            s.mask,
            None,
            ViewConfig((32, 24), (0.8, 1.6), 0.1, flip=False),
            np.random.default_rng(seed),
        )
        if not torch.equal(a[0], b[0]):
            assert torch.allclose(a[0], b[0].flip(-1), atol=0.02)
            assert torch.allclose(a[1], b[1].flip(-1), atol=1e-5)
            return
    pytest.fail("no flip in 20 draws")


def test_a_shrunk_view_pads_with_zero_weight_and_keeps_the_weight_map():
    s = _sample()
    weight = np.full((48, 64), 255, np.uint8)
    weight[:, :8] = 0  # an ignored strip on the left of the frame
    x, y, w = warp_sample(
        s.thermal,
        s.mask,
        weight,
        ViewConfig((32, 24), (0.5, 0.5), flip=False),
        np.random.default_rng(3),
    )
    frame = (w[0] > 0).numpy()
    ys, xs = np.nonzero(frame)
    # the frame fills half of each side; inside it the left 8 / 64 of its width are ignored
    assert 11 <= ys.max() - ys.min() + 1 <= 13 and 13 <= xs.max() - xs.min() + 1 <= 15
    assert w[0, ys.min() : ys.max() + 1].sum() < 0.9 * 12 * 16
    assert float(y.sum()) > 0


def test_weight_zero_pixels_do_not_count_in_the_loss():
    torch.manual_seed(0)
    logit, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    w = torch.ones_like(target)
    w[:, :, :, :4] = 0
    changed = logit.clone()
    changed[:, :, :, :4] += 5.0
    assert torch.allclose(
        ts.sos_loss(logit, target, weight=w), ts.sos_loss(changed, target, weight=w)
    )
    assert not torch.allclose(ts.sos_loss(logit, target), ts.sos_loss(changed, target))
    assert torch.allclose(
        ts.sos_loss(logit, target, weight=torch.ones_like(w)), ts.sos_loss(logit, target)
    )
    logit.requires_grad_(True)
    ts.sos_loss(logit, target, weight=w, iou_weight=1.0).backward()
    assert bool((logit.grad[:, :, :, :4] == 0).all())
    assert bool((logit.grad[:, :, :, 4:] != 0).any())
    perfect = torch.where(target > 0, 20.0, -20.0)
    assert float(ts.sos_loss(perfect, target, iou_weight=1.0)) < 1e-3


def test_the_sampler_follows_the_weights_and_is_a_pure_function():
    plan = batch_plan([5, 7], [0.0, 1.0], 16, seed=1, step=3)
    assert {src for src, _, _ in plan} == {1} and all(0 <= i < 7 for _, i, _ in plan)
    assert plan == batch_plan([5, 7], [0.0, 1.0], 16, seed=1, step=3)
    assert plan != batch_plan([5, 7], [0.0, 1.0], 16, seed=1, step=4)
    mixed = [src for step in range(50) for src, _, _ in batch_plan([5, 7], [1.0, 3.0], 4, 1, step)]
    assert 0.6 < np.mean(mixed) < 0.9
    with pytest.raises(ValueError):
        batch_plan([5, 0], [0.0, 1.0], 4, 1, 0)
    a = [_sample(seed=0)]
    b = [_sample(seed=1)]
    x1, y1, w1 = sample_batch([a, b], [1, 1], ViewConfig((32, 24), (0.7, 1.5)), 4, 2, 9)
    x2, y2, w2 = sample_batch([a, b], [1, 1], ViewConfig((32, 24), (0.7, 1.5)), 4, 2, 9)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(w1, w2)
    assert x1.shape == (4, 1, 24, 32)


def _with_weights(root: Path, value: int = 255, bad: str | None = None) -> Path:
    (root / "weight").mkdir()
    for p in sorted((root / "mask").iterdir()):
        m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        w = np.full(m.shape if p.stem != bad else (5, 5), value, np.uint8)
        cv2.imwrite(str(root / "weight" / p.name), w)
    return root


def test_several_folders_train_resume_exactly_and_are_recorded(tmp_path):
    first = make_data(tmp_path / "a", n=6)
    second = _with_weights(make_data(tmp_path / "b", n=5, seed=1), 200, bad="03")
    cfg = tiny_cfg(
        first,
        extra_data=(str(second),),
        data_weights=(1.0, 2.0),
        scale_range=(0.8, 1.5),
        aspect_jitter=0.1,
        steps_per_epoch=2,
        iou_loss=0.5,
        epochs=3,
        batch_size=3,
    )
    full = ts.train(cfg, tmp_path / "full.pt", stream=io.StringIO())
    ts.train(cfg, tmp_path / "part.pt", stream=io.StringIO(), stop_at_step=3)
    resumed = ts.train(cfg, tmp_path / "part.pt", resume=True, stream=io.StringIO())
    assert resumed["steps"] == full["steps"] == 6
    a, b = checkpoints.read_file(tmp_path / "full.pt"), checkpoints.read_file(tmp_path / "part.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    extra = full["data"]["extra"][0]
    assert extra["pairs"] == 5 and extra["weight_maps"] == 4 and "03" in extra["skipped"][0]
    assert full["data"]["sampler"] == {"weights": [1.0, 2.0], "steps_per_epoch": 2}
    assert full["config"]["extra_data"] == [str(second)]
    assert full["config"]["scale_range"] == [0.8, 1.5]
    assert "iou" in full["metrics"]  # the first folder's held-out fraction was validated


def test_cli_several_folders_and_bad_weights(tmp_path, capsys):
    first = make_data(tmp_path / "a", n=6)
    second = make_data(tmp_path / "b", n=4, seed=2)
    out = tmp_path / "m.pt"
    rc = cli.main(
        [
            "train-sosnet",
            "--data",
            str(first),
            str(second),
            "--data-weights",
            "1",
            "1",
            "--extra-scale-ranges",
            "1.5:2.5",
            "--scale-range",
            "0.9",
            "1.1",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--out",
            str(out),
            *TINY_ARGS,
        ]
    )
    assert rc == 0 and out.is_file()
    meta = checkpoints.load_sosnet(out)[1]
    assert meta["config"]["extra_scale_ranges"] == [[1.5, 2.5]] and meta["input_size"] == [64, 48]
    rc = cli.main(
        [
            "train-sosnet",
            "--data",
            str(first),
            str(second),
            "--data-weights",
            "1",
            "--out",
            str(tmp_path / "x.pt"),
            *TINY_ARGS,
        ]
    )
    assert rc == 2 and "2 --data folders" in capsys.readouterr().err
    rc = cli.main(
        [
            "train-sosnet",
            "--data",
            str(first),
            str(second),
            "--extra-scale-ranges",
            "2",
            "--out",
            str(tmp_path / "x.pt"),
            *TINY_ARGS,
        ]
    )
    assert rc == 2 and "LO:HI" in capsys.readouterr().err


def test_eval_mask_scores_a_sosnet_checkpoint(tmp_path, capsys, monkeypatch):
    data = make_data(tmp_path / "d", n=6)
    out = tmp_path / "m.pt"
    cfg = tiny_cfg(data, epochs=2)
    ts.train(cfg, out, stream=io.StringIO())
    rc = cli.main(
        [
            "eval-mask",
            "--ir",
            str(data / "ir"),
            "--masks",
            str(data / "mask"),
            "--source",
            "sosnet",
            "--sosnet",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and "(sosnet, n=6" in text
    # without --sosnet: the shipped network, or a named error where none ships
    bare = ["eval-mask", "--ir", str(data / "ir"), "--masks", str(data / "mask"), "--source"]
    rc = cli.main([*bare, "sosnet"])
    assert rc == 0 and "(sosnet, n=6" in capsys.readouterr().out
    monkeypatch.setattr(eval_mask, "SHIPPED_SOSNET", tmp_path / "absent.pt")
    rc = cli.main([*bare, "ensemble"])
    assert rc == 2 and "needs a checkpoint (none ships)" in capsys.readouterr().err


def test_eval_mask_held_out_scores_only_what_the_run_held_out(tmp_path, capsys):
    data = make_data(tmp_path / "d", n=8)
    out = tmp_path / "m.pt"
    meta = ts.train(tiny_cfg(data, epochs=1, val_fraction=0.25), out, stream=io.StringIO())
    rc = cli.main(
        [
            "eval-mask",
            "--ir",
            str(data / "ir"),
            "--masks",
            str(data / "mask"),
            "--source",
            "sosnet",
            "--sosnet",
            str(out),
            "--held-out",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and "(sosnet, n=2" in text
    assert all(stem in text for stem in meta["data"]["held_out_stems"])
    # the same figure as the run's own validation at its last epoch
    assert f"iou {meta['metrics']['iou']:.3f}" in text.splitlines()[-1]


def test_a_checkpoint_trained_with_the_new_options_runs_in_the_pipeline(tmp_path, caplog):
    first = make_data(tmp_path / "a", n=6)
    second = _with_weights(make_data(tmp_path / "b", n=4, seed=3), 180)
    out = tmp_path / "multi.pt"
    rc = cli.main(
        ["train-sosnet", "--data", str(first), str(second), "--data-weights", "1", "2"]
        + ["--scale-range", "0.8", "1.4", "--extra-scale-ranges", "1.2:2", "--aspect-jitter"]
        + ["0.1", "--iou-loss", "0.5", "--steps-per-epoch", "2", "--epochs", "2"]
        + ["--out", str(out), *TINY_ARGS]
    )
    assert rc == 0 and out.is_file()
    pipeline, sources = build_pipeline(  # mask_source auto; fp32: the arithmetic checked below
        sosnet=str(out), device="cpu", config=PipelineConfig(precision="fp32")
    )
    assert pipeline.mask_source == "sosnet" and pipeline.config.sos_size == (64, 48)
    assert "SOS network" in sources.mask and "at 64x48" in sources.mask
    assert sources.sosnet_metadata["data"]["sampler"]["weights"] == [1.0, 2.0]
    ir = cv2.imread(str(first / "ir" / "03.png"), cv2.IMREAD_GRAYSCALE)
    # the mask the pipeline fuses with is the network's sigmoid at the stored size, upsampled,
    # of the thermal frame through the gain normaliser (mask_input_stretch, on by default)
    model, _ = checkpoints.load_sosnet(out)
    with torch.inference_mode():
        stretched = ThermalStretch()(torch.from_numpy(ir)[None, None])
        logit = model(sos_input(stretched, (64, 48)))
    expected = logit_to_probability(logit, ir.shape)[0, 0].numpy()
    got = pipeline.mask(ir)
    assert got.shape == ir.shape and np.abs(got - expected).max() < 1e-5
    assert np.array_equal(SOSNetMasker(str(out), precision="fp32")(ir), got)
    fused = pipeline(ir, cv2.cvtColor(ir, cv2.COLOR_GRAY2BGR), outputs=("mask", "fused"))
    assert np.abs(fused.mask - np.round(expected * 255) / 255).max() < 1e-5  # quantised as paper
