"""The quality table's conditions, mask variants and in-process target contrast."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import shared_path

from sosmaskfuse_core.evaluation.quality_study import (
    degrade,
    mask_variant,
    rescale,
    target_contrast,
)


def square(size=64, lo=20, hi=40):
    m = np.zeros((size, size), np.uint8)
    m[lo:hi, lo:hi] = 255
    return m


def test_dim_condition_values():
    ir = np.array([[0, 100, 255]], np.uint8)
    vis = np.array([[0, 100, 255]], np.uint8)
    dim, bright = degrade(ir, vis, "dim")
    assert dim.tolist() == [[0, 30, 76]]  # round(0.3 x)
    assert bright.tolist() == [[128, 178, 255]]  # 0.5 x + 128, 255.5 clipped
    assert degrade(ir, vis, "as-is")[0] is ir
    with pytest.raises(ValueError, match="condition"):
        degrade(ir, vis, "foggy")


def test_mask_variants_grow_and_shrink_by_the_radius():
    m = square()
    assert mask_variant(m, "hand").sum() == 400
    grown, shrunk = mask_variant(m, "hand-dilated", 2), mask_variant(m, "hand-eroded", 2)
    assert grown[18, 30] == 1 and grown[17, 30] == 0  # 2 px more on each side
    assert shrunk[22, 30] == 1 and shrunk[21, 30] == 0  # 2 px less
    with pytest.raises(ValueError, match="variant"):
        mask_variant(m, "hand-wobbly")


def test_target_contrast_by_hand():
    target = square() / 255.0
    ir = np.where(target > 0, 100.0, 20.0)  # IR contrast 80
    fused = np.where(target > 0, 150.0, 110.0)  # fused contrast 40
    assert target_contrast(fused, ir, target, ring=5) == pytest.approx(0.5)
    assert target_contrast(fused, ir, np.zeros_like(target)) == 0.0
    assert target_contrast(fused, np.full_like(ir, 7.0), target) == 0.0


def test_rescale_keeps_masks_binary():
    small = rescale(square(), 0.5, nearest=True)
    assert small.shape == (32, 32) and set(np.unique(small)) <= {0, 255}
    assert rescale(square(), 1.0) is not None


def test_in_process_tcr_matches_the_shared_tool(tmp_path):
    tool = shared_path("tools", "target_contrast.py")
    rng = np.random.default_rng(0)
    target = square()
    ir = np.clip(np.where(target > 0, 120, 40) + rng.normal(0, 5, target.shape), 0, 255).astype(
        np.uint8
    )
    fused = np.clip(
        np.where(target > 0, 170, 130) + rng.normal(0, 5, target.shape), 0, 255
    ).astype(np.uint8)
    for name, image in (("ir", ir), ("mask", target), ("fused", fused)):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.png"), image)
    out = subprocess.run(
        [
            sys.executable,
            str(tool),
            str(tmp_path / "ir"),
            str(tmp_path / "mask"),
            str(tmp_path / "fused"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["a"] == pytest.approx(
        target_contrast(fused, ir, target / 255.0), abs=1e-9
    )
