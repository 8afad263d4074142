"""Thermal hot-object mask: synthetic scenes with known answers, input types, configuration,
speed, and (when ../shared/data is present) cross-validated IoU on the TNO hand masks."""
import dataclasses
import os
import time

import cv2
import numpy as np
import pytest

from sosmaskfuse_core.mask_eval import cross_validate, evaluate_masks, otsu_mask
from sosmaskfuse_core.mask_metrics import iou
from sosmaskfuse_core.thermal_mask import (ThermalHotObjectMasker, ThermalMaskConfig,
                                           thermal_hot_object_mask)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
TNO = os.path.join(DATA, "tno_masks")


def textured_background(h, w, seed=0, lo=50.0, hi=120.0):
    """Smooth random clutter plus sensor noise, float in roughly [lo, hi]."""
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), 6)
    bg = (bg - bg.min()) / (np.ptp(bg) + 1e-6)
    return lo + (hi - lo) * bg + rng.normal(0, 2.0, (h, w)).astype(np.float32)


def ellipse(h, w, center, axes):
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, center, axes, 0, 0, 360, 1, -1)
    return m.astype(bool)


def blob_scene(h=240, w=320, seed=0):
    """Three warm 'people' (upright ellipses) and one 'car' on textured clutter."""
    img = textured_background(h, w, seed)
    truth = np.zeros((h, w), bool)
    for center, axes, value in [((60, 150), (10, 28), 215.0), ((150, 170), (8, 22), 200.0),
                                ((230, 120), (6, 16), 205.0), ((270, 190), (28, 14), 190.0)]:
        e = ellipse(h, w, center, axes)
        img[e] = value + np.random.default_rng(seed + 1).normal(0, 3, e.sum())
        truth |= e
    return np.clip(img, 0, 255).astype(np.uint8), truth


def test_output_type_shape_range_and_soft_edges():
    img, _ = blob_scene()
    m = thermal_hot_object_mask(img)
    assert m.dtype == np.float32 and m.shape == img.shape
    assert m.min() >= 0.0 and m.max() <= 1.0
    assert m.max() > 0.99                                   # confident inside objects
    soft = (m > 0.05) & (m < 0.95)
    assert soft.any()                                        # feathered, not binary ...
    binary = (m >= 0.5).astype(np.uint8)
    edge = cv2.morphologyEx(binary, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    near_edge = cv2.dilate(edge, np.ones((9, 9), np.uint8)).astype(bool)
    assert not (soft & ~near_edge).any()                     # ... but only along the edges


@pytest.mark.parametrize("seed", [0, 1, 2, 6])
def test_finds_hot_blobs_on_textured_background(seed):
    img, truth = blob_scene(seed=seed)
    m = thermal_hot_object_mask(img) >= 0.5
    assert iou(m, truth) > 0.6
    # every object is found whole, even the cooler 'car' (190 vs 215 for the hottest) ...
    n, lab = cv2.connectedComponents(truth.astype(np.uint8))
    for i in range(1, n):
        assert m[lab == i].mean() > 0.9
    # ... growth may spill into adjacent warm clutter a little, but far clutter stays out
    assert (m & truth).sum() / m.sum() > 0.6
    far = ~cv2.dilate(truth.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool)
    assert m[far].mean() < 0.01


def test_hot_sky_band_is_rejected_where_global_otsu_fails():
    h, w = 240, 320
    img = textured_background(h, w, seed=3, lo=40, hi=90)
    img[: h // 4] = 185 + 10 * np.linspace(0, 1, w)[None, :]   # hot, wide band at the top
    person = ellipse(h, w, (200, 170), (9, 26))
    img[person] = 205
    img = np.clip(img, 0, 255).astype(np.uint8)
    m = thermal_hot_object_mask(img)
    band = np.zeros((h, w), bool)
    band[: h // 4] = True
    assert (m[band] >= 0.5).mean() < 0.02                     # sky band not salient
    assert iou(m, person) > 0.6                               # the person is
    assert (otsu_mask(img)[band] > 0.5).mean() > 0.9          # global Otsu takes the sky
    assert iou(otsu_mask(img), person) < 0.2


def test_large_hot_road_touching_the_border_is_rejected():
    h, w = 240, 320
    img = textured_background(h, w, seed=5, lo=40, hi=90)
    img[int(h * 0.6):] = 170 + np.random.default_rng(0).normal(0, 3, (h - int(h * 0.6), w))
    car = ellipse(h, w, (120, 100), (30, 14))
    img[car] = 210
    m = thermal_hot_object_mask(np.clip(img, 0, 255).astype(np.uint8))
    assert (m[int(h * 0.65):] >= 0.5).mean() < 0.02
    assert iou(m, car) > 0.6


@pytest.mark.parametrize("value", [0, 128, 255])
def test_constant_image_gives_empty_mask(value):
    m = thermal_hot_object_mask(np.full((64, 80), value, np.uint8))
    assert m.shape == (64, 80) and m.dtype == np.float32 and not m.any()


def test_pure_noise_gives_small_or_empty_mask():
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal(100, 5, (240, 320)), 0, 255).astype(np.uint8)
    assert (thermal_hot_object_mask(img) >= 0.5).mean() < 0.01


def test_uint16_float_and_colour_inputs_match_uint8():
    img, truth = blob_scene(seed=2)
    ref = thermal_hot_object_mask(img) >= 0.5
    raw14 = (img.astype(np.uint16) * 40 + 3000)                # 14-bit radiometric-like counts
    assert raw14.dtype == np.uint16 and raw14.max() > 255
    kelvin = img.astype(np.float64) / 10.0 + 273.15            # float, arbitrary range
    kelvin[0, 0] = np.nan                                       # a dead pixel
    bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    for other in (raw14, kelvin, bgr, img[:, :, None]):
        m = thermal_hot_object_mask(other)
        assert m.shape == img.shape[:2]
        assert iou(m, ref) > 0.95
    assert iou(ref, truth) > 0.6


def test_small_and_odd_sizes():
    img, _ = blob_scene(h=97, w=131, seed=4)
    assert thermal_hot_object_mask(img).shape == (97, 131)
    assert thermal_hot_object_mask(np.zeros((2, 2), np.uint8)).shape == (2, 2)
    with pytest.raises(ValueError):
        thermal_hot_object_mask(np.zeros((4, 4, 2), np.uint8))


def test_masker_class_matches_function_and_is_reusable():
    img, _ = blob_scene(seed=6)
    cfg = ThermalMaskConfig(seed_rel=0.6)
    masker = ThermalHotObjectMasker(cfg)
    a, b = masker(img), masker(img)
    assert np.array_equal(a, b)
    assert np.array_equal(a, thermal_hot_object_mask(img, cfg))
    assert masker.config is cfg
    with pytest.raises(TypeError):
        ThermalHotObjectMasker({"seed_rel": 0.6})


def test_config_is_frozen_and_validated():
    cfg = ThermalMaskConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed_rel = 0.5
    for bad in [dict(work_size=8), dict(levels=1), dict(min_area=0.5, max_area=0.1),
                dict(low_percentile=99, high_percentile=1), dict(border_penalty=1.5),
                dict(seed_rel=0.0), dict(grow_rel=1.5), dict(feather=-1), dict(ring=-0.1)]:
        with pytest.raises(ValueError):
            ThermalMaskConfig(**bad)
    assert cfg.replace(seed_rel=0.5).seed_rel == 0.5
    with pytest.raises(ValueError):
        cfg.replace(seed_rel=2.0)


def test_feather_zero_gives_binary_mask():
    img, _ = blob_scene()
    m = thermal_hot_object_mask(img, ThermalMaskConfig(feather=0.0, work_size=320))
    assert set(np.unique(m)) <= {0.0, 1.0}


def test_fast_enough_for_a_video_stream():
    img, _ = blob_scene(h=512, w=640, seed=7)
    masker = ThermalHotObjectMasker()
    masker(img)
    t0 = time.perf_counter()
    for _ in range(10):
        masker(img)
    per_frame = (time.perf_counter() - t0) / 10
    assert per_frame < 0.05          # a few ms in practice; generous bound for shared CI


needs_tno = pytest.mark.skipif(not os.path.isdir(os.path.join(TNO, "mask")),
                               reason="../shared/data/tno_masks not present")


@pytest.mark.shared_data
@needs_tno
def test_tno_cross_validated_iou_above_floor():
    ir, masks = os.path.join(TNO, "ir"), os.path.join(TNO, "mask")
    res = cross_validate(ir, masks, grid={"seed_rel": [0.6, 0.7, 0.8]})
    assert res["n"] == 20 and res["folds"] == 20
    assert res["cv"]["iou"] >= 0.50                 # leave-one-out, held-out images only
    assert res["cv"]["f"] >= 0.60
    assert res["base"]["iou"] >= 0.50               # the shipped defaults
    otsu = evaluate_masks(ir, masks, otsu_mask)["mean"]
    assert otsu["iou"] < 0.25                       # the baseline really is weak here
    assert res["cv"]["iou"] > otsu["iou"] + 0.25


def test_black_hot_palette():
    img, truth = blob_scene(seed=1)
    white = thermal_hot_object_mask(img)
    inverted = 255 - img
    assert iou(thermal_hot_object_mask(inverted), truth) < 0.2        # wrong polarity
    black = thermal_hot_object_mask(inverted, ThermalMaskConfig(black_hot=True))
    assert iou(black, white) > 0.95


def _write_dataset(root, scenes):
    ir_dir, mask_dir = root / "ir", root / "mask"
    ir_dir.mkdir()
    mask_dir.mkdir()
    for i, (img, truth) in enumerate(scenes):
        cv2.imwrite(str(ir_dir / f"{i}.png"), img)
        cv2.imwrite(str(mask_dir / f"{i}.bmp"), truth.astype(np.uint8) * 255)
    cv2.imwrite(str(ir_dir / "no_mask.png"), scenes[0][0])        # ignored: no mask
    return str(ir_dir), str(mask_dir)


def sky_scene(seed):
    h, w = 200, 260
    img = textured_background(h, w, seed=seed, lo=40, hi=90)
    img[: h // 4] = 190
    person = ellipse(h, w, (60 + 40 * seed, 140), (8, 24))
    img[person] = 210
    return np.clip(img, 0, 255).astype(np.uint8), person


def test_eval_mask_command_and_evaluate_masks(tmp_path, capsys, monkeypatch):
    import argparse
    import json

    from sosmaskfuse_core import mask_eval

    ir_dir, mask_dir = _write_dataset(tmp_path, [sky_scene(s) for s in range(3)])
    res = evaluate_masks(ir_dir, mask_dir, ThermalHotObjectMasker())
    assert res["n"] == 3 and set(res["per_image"]) == {"0", "1", "2"}
    assert res["mean"]["iou"] > 0.6
    assert evaluate_masks(ir_dir, mask_dir, otsu_mask)["mean"]["iou"] < 0.2

    parser = argparse.ArgumentParser(prog="sosmaskfuse")
    mask_eval.add_parser(parser.add_subparsers(dest="command", required=True))
    out_json = tmp_path / "res.json"
    args = parser.parse_args(["eval-mask", "--ir", ir_dir, "--masks", mask_dir,
                              "--source", "thermal", "--set", "seed_rel=0.6",
                              "--json", str(out_json)])
    assert args.func(args) == 0
    assert "mean" in capsys.readouterr().out
    saved = json.loads(out_json.read_text())
    assert saved["n"] == 3 and saved["mean"]["iou"] > 0.6

    monkeypatch.setattr(mask_eval, "DEFAULT_GRID", {"seed_rel": [0.6, 0.7], "grow_rel": [0.4]})
    args = parser.parse_args(["eval-mask", "--ir", ir_dir, "--masks", mask_dir, "--cv",
                              "--folds", "3"])
    assert mask_eval.run(args) == 0
    assert "CV mean" in capsys.readouterr().out
    bad = parser.parse_args(["eval-mask", "--ir", ir_dir, "--masks", mask_dir,
                             "--set", "no_such_field=1"])
    with pytest.raises(ValueError):
        mask_eval.run(bad)
