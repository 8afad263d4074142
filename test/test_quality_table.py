"""benchmarks/quality_table.py end to end on two small synthetic pairs (shipped autoencoder)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, load_module

from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER


@pytest.fixture(scope="module")
def quality_table():
    if not SHIPPED_AUTOENCODER.is_file():
        pytest.skip("no shipped autoencoder weights")
    return load_module(REPO / "benchmarks" / "quality_table.py", "quality_table")


def write_pairs(root):
    rng = np.random.default_rng(0)
    for name in ("ir", "vis", "mask"):
        (root / name).mkdir()
    yy, xx = np.mgrid[:72, :96]
    for i, stem in enumerate(("a", "b")):
        target = ((yy - 36) ** 2 / 18**2 + (xx - 30 - 30 * i) ** 2 / 8**2 <= 1).astype(np.uint8)
        ir = np.where(target, 200, 60 + rng.integers(0, 10, target.shape))
        vis = 120 + 40 * np.sin(xx / 4.0 + i) * np.cos(yy / 6.0)
        cv2.imwrite(str(root / "ir" / f"{stem}.png"), ir.astype(np.uint8))
        cv2.imwrite(str(root / "vis" / f"{stem}.png"), vis.astype(np.uint8))
        cv2.imwrite(str(root / "mask" / f"{stem}.png"), target * 255)


def test_rows_for_every_condition_mask_and_method(quality_table, tmp_path, monkeypatch, capsys):
    write_pairs(tmp_path)
    out = tmp_path / "out"
    argv = [
        "quality_table.py",
        "--ir",
        str(tmp_path / "ir"),
        "--vis",
        str(tmp_path / "vis"),
        "--masks",
        str(tmp_path / "mask"),
        "--out",
        str(out),
        "--conditions",
        "as-is,dim",
        "--mask-sources",
        "hand,hand-eroded",
        "--output-scalings",
        "minmax,clip",
        "--radius",
        "2",
        "--baselines",
        "--json",
        str(tmp_path / "t.json"),
        "--device",
        "cpu",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    assert quality_table.main() == 0
    summary = json.loads((tmp_path / "t.json").read_text())
    expected = {
        f"{c}/{m}/{mode}-{s}"
        for c in ("as-is", "dim")
        for m in ("hand", "hand-eroded")
        for mode in ("imvf", "imvf-contrast")
        for s in ("minmax", "clip")
    }
    expected |= {f"{c}/none/{b}" for c in ("as-is", "dim") for b in ("addition", "sca", "average")}
    assert set(summary) == expected and all(row["n"] == 2 for row in summary.values())
    # a bright thermal target on a mid-gray scene stays brighter than its ring in both modes
    assert summary["as-is/hand/imvf-contrast-clip"]["TCR"] > 0.5
    assert (out / "dim" / "hand" / "imvf-contrast-minmax" / "a.png").is_file()
    assert "TCR targets: the hand-drawn masks" in capsys.readouterr().out
    # a rerun reads the cached images and gives the same table
    (tmp_path / "t.json").unlink()
    assert quality_table.main() == 0
    assert json.loads((tmp_path / "t.json").read_text()) == summary


def test_hand_sources_need_masks(quality_table, tmp_path, monkeypatch):
    write_pairs(tmp_path)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "quality_table.py",
            "--ir",
            str(tmp_path / "ir"),
            "--vis",
            str(tmp_path / "vis"),
            "--out",
            str(tmp_path / "o"),
            "--mask-sources",
            "hand",
        ],
    )
    with pytest.raises(SystemExit):
        quality_table.main()


def test_box_columns_are_the_box_contrast_of_the_written_images(
    quality_table, tmp_path, monkeypatch, capsys
):
    """--boxes: per row, kept/inverted/median TCR over all boxes = evaluating the PNGs it wrote."""
    from sosmaskfuse_core.evaluation import box_contrast
    from sosmaskfuse_core.formats.box_folder import BoxFolder

    write_pairs(tmp_path)
    labels = tmp_path / "labels"
    labels.mkdir()
    for i, stem in enumerate(("a", "b")):  # the ellipse of write_pairs: x 22..38 (+30 i), y 18..54
        cx = (30 + 30 * i + 0.5) / 96
        (labels / f"{stem}.txt").write_text(f"0 {cx:.6f} {36.5 / 72:.6f} {18 / 96:.6f} 0.5\n")
    out = tmp_path / "out"
    argv = ["quality_table.py", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis")]
    argv += ["--out", str(out), "--boxes", str(labels), "--json", str(tmp_path / "t.json")]
    argv += ["--output-scalings", "minmax,clip", "--device", "cpu"]
    monkeypatch.setattr(sys, "argv", argv)
    assert quality_table.main() == 0
    assert "| box kept | box inv | box TCR | boxes |" in capsys.readouterr().out
    summary = json.loads((tmp_path / "t.json").read_text())
    assert len(summary) == 4
    for key, row in summary.items():
        condition, mask, method = key.split("/")
        found = box_contrast.evaluate_folder(out / condition / mask / method, tmp_path / "ir",
                                             BoxFolder(labels))  # fmt: skip
        s = box_contrast.summarise(found.tcrs)
        assert row["boxes"] == s.boxes == 2
        assert (row["box kept"], row["box inv"], row["box TCR"]) == (s.kept, s.inverted, s.median)
    # a bright target on a mid-gray scene is kept by the mode that carries the thermal contrast
    assert summary["as-is/thermal/imvf-contrast-clip"]["box kept"] == 1.0


def test_the_guard_settings_reach_the_imvf_contrast_rows(quality_table, tmp_path, monkeypatch):
    """--target-contrast 0 turns the guard off: its rows are the paper's; a bad --guard stops."""
    write_pairs(tmp_path)

    def run(out, *extra):
        argv = ["quality_table.py", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis")]
        argv += ["--masks", str(tmp_path / "mask"), "--mask-sources", "hand", "--out", str(out)]
        argv += ["--device", "cpu", "--json", str(out) + ".json", *extra]
        monkeypatch.setattr(sys, "argv", argv)
        assert quality_table.main() == 0
        return json.loads(Path(str(out) + ".json").read_text())

    off = run(tmp_path / "off", "--target-contrast", "0")
    assert off["as-is/hand/imvf-contrast-minmax"] == off["as-is/hand/imvf-minmax"]
    on = run(tmp_path / "on", "--guard", "last_level=2")
    assert on["as-is/hand/imvf-minmax"] == off["as-is/hand/imvf-minmax"]
    assert on["as-is/hand/imvf-contrast-minmax"] != on["as-is/hand/imvf-minmax"]
    with pytest.raises(SystemExit, match="--guard 'floor=2'"):
        run(tmp_path / "bad", "--guard", "floor=2")
