"""`sosmaskfuse calibrate` end to end: folders and bags in, the node's parameter file out.

Exit code 0 writes FILE.yaml, its report and overlays; 2 refuses (or rejects the input) with a
one-line reason and writes nothing. The file is read back by the offline tools' reader and by
a real rclpy node with the node's parameter declarations.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from sosmaskfuse_core import cli
from sosmaskfuse_core.calibration import BoardSpec, overlap_error, rig_homography
from sosmaskfuse_core.calibration.geometry import grid_error
from sosmaskfuse_core.calibration.synthetic import aligned_pairs, board_views, project_pair
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.settings.params_file import settings_from_file
from sosmaskfuse_core.tools.make_bag import BagLayout, folder_frames, write_bag

T, V = (640, 512), (800, 600)
TRUTH = rig_homography(
    T, V, shift=(14.0, -9.0), scale=0.93, rotation_deg=1.5, perspective=(0.01, 0.012)
)
OUTPUTS = (".yaml", ".report.json", ".report.md", ".edges.png", ".checker.png")


def _write_folders(root: Path, frames) -> tuple[Path, Path]:
    ir, vis = root / "ir", root / "vis"
    ir.mkdir(parents=True)
    vis.mkdir(parents=True)
    for i, (thermal, visible) in enumerate(frames):
        cv2.imwrite(str(ir / f"{i:03d}.png"), thermal)
        cv2.imwrite(str(vis / f"{i:03d}.jpg"), cv2.cvtColor(visible, cv2.COLOR_GRAY2BGR))
    return ir, vis


def _homography(path: Path) -> np.ndarray:
    values, _ = settings_from_file(path, table.BAG)
    return np.array(values["homography"]).reshape(3, 3)


def _calibrate(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["calibrate", *argv])
    return code, capsys.readouterr().err


@pytest.mark.shared_data
def test_targetless_from_folders_writes_the_file_report_and_overlays(tmp_path, capsys):
    pairs = aligned_pairs(shared_path("data"), "m3svd", 8)
    ir, vis = _write_folders(
        tmp_path, [project_pair(a, b, TRUTH, T, V, crop=0.8) for a, b in pairs]
    )
    out = tmp_path / "rig" / "front.yaml"
    code, err = _calibrate(
        capsys, "--method", "targetless", "--ir", str(ir), "--vis", str(vis), "--out", str(out)
    )
    assert code == 0, err
    for suffix in OUTPUTS:
        assert (out.parent / f"front{suffix}").is_file(), suffix
    assert np.median(overlap_error(_homography(out), TRUTH, T, V)) <= 2.0
    report = json.loads((out.parent / "front.report.json").read_text())
    assert report["method"] == "targetless" and report["frames_used"] == 8
    assert report["thermal_size"] == [640, 512] and report["visible_size"] == [800, 600]
    edges = cv2.imread(str(out.parent / "front.edges.png"))
    assert edges.shape == (600, 800, 3)
    assert "confidence" in err and "front.edges.png" in err
    assert report["command"].startswith("sosmaskfuse calibrate --method targetless --ir ")


def test_target_from_a_bag_with_16_bit_thermal(tmp_path, capsys):
    """Board views in a bag (mono16 thermal counts, rgb8 visible), paired as the node pairs them.

    The result is within half a pixel on the boards.
    """
    spec = BoardSpec("checkerboard", 9, 6)
    views = board_views(spec, TRUTH, T, V, poses=3, seed=11)
    ir, vis = _write_folders(tmp_path / "frames", [(v.thermal, v.visible) for v in views])
    bag = tmp_path / "boards"
    write_bag(bag, folder_frames(ir, vis), BagLayout(thermal_encoding="mono16"), rate=5.0)
    out = tmp_path / "rig.yaml"
    code, err = _calibrate(
        capsys,
        "--method",
        "target",
        "--bag",
        str(bag),
        "--thermal-topic",
        "/camera/thermal/image_raw",
        "--visible-topic",
        "/camera/visible/image_raw",
        "--pattern",
        "9x6",
        "--square",
        "40",
        "--out",
        str(out),
    )
    assert code == 0, err
    h = _homography(out)
    for v in views:
        corners = v.board_to_thermal @ np.array([[0, 12, 12, 0], [0, 0, 9, 9], [1, 1, 1, 1]])
        xy = corners[:2] / corners[2]
        region = (*xy.min(axis=1), *xy.max(axis=1))
        assert grid_error(h, TRUTH, region).max() <= 0.5
    report = json.loads((tmp_path / "rig.report.json").read_text())
    assert report["frames_used"] == 3 and report["details"]["board"] == "checkerboard 9x6, 40 mm"


def test_refusals_and_bad_input_exit_2_with_one_line_and_write_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    flat = [
        (
            (100 + rng.normal(0, 2, (T[1], T[0]))).astype(np.uint8),
            (120 + rng.normal(0, 2, (V[1], V[0]))).astype(np.uint8),
        )
        for _ in range(6)
    ]
    ir, vis = _write_folders(tmp_path, flat)
    out = tmp_path / "rig.yaml"
    code, err = _calibrate(
        capsys, "--method", "targetless", "--ir", str(ir), "--vis", str(vis), "--out", str(out)
    )
    first = err.splitlines()[0]
    assert code == 2 and first.startswith("refused: too few informative frames: 0 of 6")
    assert "little structure" in err and not out.exists()
    assert not list(tmp_path.glob("rig.*"))
    for argv, message in (
        (["--ir", str(ir)], "error: --ir and --vis go together"),
        (["--bag", str(tmp_path / "none")], "error: --bag needs --thermal-topic"),
        ([], "error: give either --ir DIR --vis DIR or --bag B"),
        (["--ir", str(tmp_path / "x"), "--vis", str(vis)], "not a folder"),
    ):
        code, err = _calibrate(capsys, "--method", "targetless", "--out", str(out), *argv)
        assert code == 2 and message in err, err
    code, err = _calibrate(
        capsys,
        "--method",
        "target",
        "--ir",
        str(ir),
        "--vis",
        str(vis),
        "--out",
        str(tmp_path / "rig.txt"),
    )
    assert code == 2 and "a parameter file ends in .yaml" in err
    code, err = _calibrate(
        capsys,
        "--method",
        "target",
        "--ir",
        str(ir),
        "--vis",
        str(vis),
        "--pattern",
        "9by6",
        "--out",
        str(out),
    )
    assert code == 2 and "expected COLSxROWS" in err


def test_a_missing_bag_topic_is_named(tmp_path, capsys):
    views = board_views(BoardSpec("checkerboard", 9, 6), TRUTH, T, V, poses=1, seed=3)
    ir, vis = _write_folders(tmp_path / "frames", [(views[0].thermal, views[0].visible)])
    bag = tmp_path / "bag"
    write_bag(bag, folder_frames(ir, vis), BagLayout(), rate=5.0)
    code, err = _calibrate(
        capsys,
        "--method",
        "target",
        "--bag",
        str(bag),
        "--thermal-topic",
        "/nope",
        "--visible-topic",
        "/camera/visible/image_raw",
        "--out",
        str(tmp_path / "rig.yaml"),
    )
    assert code == 2 and "no thermal topic /nope; image topics: /camera/thermal/image_raw" in err


@pytest.mark.ros
def test_the_node_loads_the_written_file(tmp_path):
    """Rcl's YAML parser and the node's declared types take the file calibrate writes."""
    pytest.importorskip("rclpy", reason="needs the ROS 2 wheels")
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from sosmaskfuse_core.calibration.report import params_text
    from sosmaskfuse_core.calibration.result import Calibration
    from sosmaskfuse_ros.params import declare_all

    h = TRUTH.copy()
    h[2, 0] = 1e-05  # a number YAML 1.1 would take for text if written plainly
    path = tmp_path / "rig.yaml"
    path.write_text(params_text(Calibration("target", h, T, V, [], {"rms_px": 0.2}, {}, 1.0)))
    context = Context()
    rclpy.init(context=context)
    try:
        node = Node(
            "sosmaskfuse",
            namespace="/front",
            context=context,
            cli_args=["--ros-args", "--params-file", str(path)],
        )
        values = declare_all(node)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    assert np.allclose(values["homography"], h.ravel(), rtol=1e-12, atol=0)
    assert np.allclose(_homography(path), h, rtol=1e-12, atol=0)
