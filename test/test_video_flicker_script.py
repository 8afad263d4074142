"""benchmarks/video_flicker.py end to end on two tiny synthetic videos (shipped models)."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO, load_module

from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER_LITE


@pytest.fixture(scope="module")
def video_flicker():
    if not SHIPPED_AUTOENCODER_LITE.is_file():
        pytest.skip("no shipped lite autoencoder weights")
    return load_module(REPO / "benchmarks" / "video_flicker.py", "video_flicker")


def write_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 72))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG video here")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def scene(moving: bool, n: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    yy, xx = np.mgrid[:72, :96]
    irs, viss = [], []
    for i in range(n):
        cx = 30 + (6 * i if moving else 0)
        target = (yy - 36) ** 2 / 14**2 + (xx - cx) ** 2 / 7**2 <= 1
        irs.append(np.where(target, 210, 50).astype(np.uint8))
        viss.append((120 + 50 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.uint8))
    return irs, viss


@pytest.mark.parametrize("moving", [False, True])
def test_a_still_video_does_not_change_and_a_moving_target_does(
    video_flicker, tmp_path, monkeypatch, moving
):
    for name in ("ir", "vis"):
        (tmp_path / name).mkdir()
    irs, viss = scene(moving)
    # .mp4 is what the script looks for; MJPG in it is what every OpenCV build can write
    write_video(tmp_path / "ir" / "a.mp4", irs)
    write_video(tmp_path / "vis" / "a.mp4", viss)
    out = tmp_path / "flicker.json"
    argv = ["video_flicker.py", "--ir-dir", str(tmp_path / "ir"), "--vis-dir"]
    argv += [str(tmp_path / "vis"), "--frames", "5", "--size", "96x72", "--device", "cpu"]
    argv += ["--mask-source", "thermal", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    assert video_flicker.main() == 0
    rows = json.loads(out.read_text())
    fused = {k: v for k, v in rows.items() if not k.startswith("input/")}
    assert len(fused) == 8  # off/ema x imvf/imvf-contrast x minmax/clip
    for key, row in fused.items():
        assert row["pairs"] == 4, key
        if moving:
            assert row["fused_change"] > 0.5, key  # a 6 px step of a 160-level target
        else:  # the same pair five times: the same fused image five times
            assert row["fused_change"] == 0.0, key
