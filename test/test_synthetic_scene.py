"""The synthetic street scene: deterministic, moving, hot objects where the mask says."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from sosmaskfuse_core.tools.synthetic_scene import HFOV_DEG, SyntheticScene


@pytest.fixture(scope="module")
def scene():
    return SyntheticScene(320, 256, seed=0)


def test_sizes_and_dtypes(scene):
    frame = scene.render(1.25)
    assert frame.thermal.dtype == np.uint16 and frame.thermal.shape == (256, 320)
    assert frame.visible.dtype == np.uint8 and frame.visible.shape == (256, 320, 3)
    assert frame.mask.dtype == np.uint8 and frame.mask.shape == (256, 320)
    assert set(np.unique(frame.mask)) == {0, 255}


def test_deterministic_for_a_seed_and_time():
    a, b = SyntheticScene(160, 128, seed=7), SyntheticScene(160, 128, seed=7)
    for t in (0.0, 3.3):
        fa, fb = a.render(t), b.render(t)
        assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
    other = SyntheticScene(160, 128, seed=8).render(3.3)
    assert not np.array_equal(other.visible, fa.visible)


def test_objects_move(scene):
    f0, f1 = scene.render(0.0), scene.render(1.0)
    moved = np.count_nonzero(f0.mask != f1.mask)
    assert moved > 0.02 * f0.mask.size
    assert 0.01 < np.count_nonzero(f0.mask) / f0.mask.size < 0.4


def test_objects_are_hot_in_thermal_where_the_mask_says(scene):
    for t in (0.0, 2.5, 7.0, 13.1):
        frame = scene.render(t)
        th, objects = frame.thermal.astype(np.float64), frame.mask > 0
        assert np.median(th[objects]) > np.percentile(th[~objects], 95)
        assert (
            6000 < np.percentile(th[~objects], 1) and np.percentile(th[~objects], 99) < 9200
        )  # background
        assert th[objects].max() < 12000
        n, labels = cv2.connectedComponents(frame.mask)
        checked = 0
        for i in range(1, n):
            comp = (labels == i).astype(np.uint8)
            ring = cv2.dilate(comp, np.ones((7, 7), np.uint8)).astype(bool) & ~objects
            if comp.sum() >= 30 and ring.sum() >= 10:
                assert th[comp > 0].mean() - th[ring].mean() > 500, (t, i)
                checked += 1
        assert checked >= 3


def test_visible_is_a_textured_colour_scene(scene):
    vis = scene.render(0.5).visible.astype(np.float64)
    sky, road = (
        vis[:20].reshape(-1, 3).mean(0),
        vis[int(0.7 * 256) : int(0.75 * 256)].reshape(-1, 3).mean(0),
    )
    assert sky[2] > sky[0] + 40 and sky.mean() > road.mean() + 40  # blue sky above a dark road
    assert vis.std() > 30


def test_thermal_at_another_resolution():
    scene = SyntheticScene(320, 256, seed=0, thermal_size=(160, 128))
    frame = scene.render(2.0)
    assert frame.thermal.shape == (128, 160) and frame.visible.shape == (256, 320, 3)
    full = SyntheticScene(320, 256, seed=0).render(2.0).thermal
    small = cv2.resize(full.astype(np.float32), (160, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(small - frame.thermal).mean() < 20  # the same scene, only resampled


def test_camera_matrices_share_the_field_of_view():
    scene = SyntheticScene(320, 256, thermal_size=(160, 128))
    k = scene.camera_matrix("visible")
    assert k[0, 0] == pytest.approx(160 / math.tan(math.radians(HFOV_DEG / 2)))
    assert (k[0, 2], k[1, 2]) == (160, 128) and k[0, 0] == k[1, 1]
    np.testing.assert_allclose(scene.camera_matrix("thermal")[:2], k[:2] / 2)
    with pytest.raises(ValueError):
        scene.camera_matrix("lidar")


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        SyntheticScene(8, 256)
    with pytest.raises(ValueError):
        SyntheticScene(320, 256, thermal_size=(0, 10))
