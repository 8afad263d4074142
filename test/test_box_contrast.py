"""Box-level thermal target contrast (evaluation/box_contrast.py), its readers and `eval --boxes`.

Expectations are built into synthetic images (a disc of known level on a flat surround gives a
known contrast), and ../shared/tools/box_contrast.py, run as a subprocess, must give the same
numbers as the module on synthetic edge cases and on frames fused by the pipeline.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from sosmaskfuse_core.commands import evaluate as eval_command
from sosmaskfuse_core.evaluation import box_contrast as bc
from sosmaskfuse_core.evaluation.box_sizes import size_class
from sosmaskfuse_core.formats.box_folder import BoxFolder
from sosmaskfuse_core.formats.voc_boxes import Box, BoxFileError
from sosmaskfuse_core.formats.yolo_boxes import read_class_names, read_yolo

H, W = 120, 160


def disc_image(background: int, level: int, centre: tuple[int, int], radius: int) -> np.ndarray:
    """A flat image with a filled disc of `level`."""
    image = np.full((H, W), background, np.uint8)
    cv2.circle(image, centre, radius, int(level), -1)
    return image


# A 40 x 40 box (x 20..59, y 30..69): its target ellipse has radius int(0.4 * 40) = 16 around
# (40, 50); a disc of radius 18 there covers the whole target and stays inside the box, so the
# ring (outside the box) sees only the background: contrast = disc level - background.
BOX = Box("person", 20, 30, 59, 69)
CENTRE = (40, 50)


def test_a_bright_disc_on_a_flat_ring_gives_the_ratio_of_the_two_contrasts():
    ir = disc_image(50, 150, CENTRE, 18)  # IR contrast 100
    fused = disc_image(80, 140, CENTRE, 18)  # fused contrast 60
    result = bc.box_tcr(fused, ir, BOX, "a")
    assert result.ir_contrast == pytest.approx(100.0)
    assert result.fused_contrast == pytest.approx(60.0)
    assert result.tcr == pytest.approx(0.6)
    assert result.size == "medium" and result.label == "person"


def test_an_inverted_target_has_a_negative_tcr_and_a_huge_gain_is_clipped():
    ir = disc_image(50, 150, CENTRE, 18)
    darker = disc_image(120, 90, CENTRE, 18)  # brighter than its surround in IR, darker here
    assert bc.box_tcr(darker, ir, BOX).tcr == pytest.approx(-0.3)
    faint_ir = disc_image(50, 60, CENTRE, 18)  # contrast 10
    strong = disc_image(20, 200, CENTRE, 18)  # contrast 180: TCR 18, clipped
    assert bc.box_tcr(strong, faint_ir, BOX).tcr == 3.0
    cold_ir = disc_image(150, 100, CENTRE, 18)  # a cold car: contrast -50
    cold_fused = disc_image(150, 125, CENTRE, 18)  # -25
    assert bc.box_tcr(cold_fused, cold_ir, BOX).tcr == pytest.approx(0.5)


def test_flat_or_tiny_boxes_are_not_counted():
    ir = disc_image(50, 54, CENTRE, 18)  # contrast 4 < 5 levels
    assert bc.box_tcr(ir, ir, BOX) is None
    assert bc.box_tcr(ir, ir, BOX, config=bc.BoxContrastConfig(min_contrast=3)).tcr == 1.0
    bright = disc_image(50, 150, CENTRE, 18)
    assert bc.box_tcr(bright, bright, Box("person", 38, 40, 39, 60)) is None  # 2 px wide
    counted, left_out = bc.image_tcrs(
        bright, bright, [BOX, Box("person", 38, 40, 39, 60), Box("DontCare", 20, 30, 59, 69)]
    )
    assert [t.box for t in counted] == [BOX] and left_out == 1


def test_a_box_over_the_image_border_uses_the_pixels_inside():
    # box x 140..179 (past the right edge at 159): target centre (160, 50), radius 16, so the
    # target's pixels inside the image are x 144..159; a disc of radius 18 covers them, the ring
    # inside the image (left, top, bottom of the box) is flat.
    box = Box("car", 140, 30, 179, 69)
    ir = disc_image(40, 100, (160, 50), 18)
    fused = disc_image(40, 70, (160, 50), 18)
    target, ring = bc.target_and_ring(ir.shape, box)
    assert target[:, 144:].any() and not target[:, :143].any()
    assert ring[:, 132:140].any() and not ring[30:70, 140:].any()
    assert bc.box_tcr(fused, ir, box).tcr == pytest.approx(0.5)


def test_size_classes_go_by_height():
    assert [size_class(h) for h in (3, 31, 32, 95, 96, 400)] == [
        "small", "small", "medium", "medium", "large", "large"
    ]  # fmt: skip
    assert Box("x", 0, 10, 4, 41).height == 32 and Box("x", 0, 10, 4, 41).width == 5


def test_summaries_count_kept_inverted_and_the_median_over_all_boxes():
    def tcr(value, label="person", size="small"):
        return bc.BoxTCR("s", Box(label, 0, 0, 9, 9), size, 10.0, 10.0 * value, value)

    values = [tcr(0.5), tcr(0.49), tcr(-0.1), tcr(1.2, "car", "large")]
    s = bc.summarise(values)
    assert (s.boxes, s.kept, s.inverted) == (4, 0.5, 0.25)
    assert s.median == pytest.approx((0.49 + 0.5) / 2)
    rows = {(c, z): r for c, z, r in bc.summary_rows(values)}
    assert rows[("all", "all")].boxes == 4 and rows[("car", "large")].kept == 1.0
    assert rows[("person", "small")].inverted == pytest.approx(1 / 3)
    assert ("car", "small") not in rows and ("all", "medium") not in rows
    assert np.isnan(bc.summarise([]).median)


def test_yolo_boxes_are_converted_as_the_acceptance_tool_converts_them(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("0 0.5 0.5 0.1 0.2\n\n2 0.01 0.99 0.04 0.04\n")
    # x: (0.5 -+ 0.05) * 640 = 288, 352 (exclusive); the second box: x from int(-6.4) = -6 to
    # int(19.2) = 19, y from int(465.6) = 465 to int(484.8) = 484 (both exclusive)
    assert read_yolo(f, 640, 480, ["person", "bicycle", "car"]) == [
        Box("person", 288, 192, 351, 287),
        Box("car", -6, 465, 18, 483),
    ]
    assert read_yolo(f, 640, 480)[1].label == "2"
    for bad, why in [
        ("0 0.5 0.5 0.1\n", "4 fields"),
        ("1.5 0.5 0.5 0.1 0.1\n", "not a class id"),
        ("0 0.5 nan 0.1 0.1\n", "not finite"),
        ("0 0.5 0.5 -0.1 0.1\n", "negative"),
        ("3 0.5 0.5 0.1 0.1\n", "only 3 class names"),
        ("0 a 0.5 0.1 0.1\n", "could not convert"),
    ]:
        f.write_text("0 0.5 0.5 0.1 0.1\n" + bad)
        with pytest.raises(BoxFileError, match=rf"a.txt:2: .*{why}"):
            read_yolo(f, 640, 480, ["person", "bicycle", "car"])


def test_class_names_and_box_folders(tmp_path):
    (tmp_path / "classes.txt").write_text("0 person\n1 bicycle\n\n2 car\n")
    assert read_class_names(tmp_path / "classes.txt") == ["person", "bicycle", "car"]
    (tmp_path / "plain.txt").write_text("person\nred car\n")
    assert read_class_names(tmp_path / "plain.txt") == ["person", "red car"]
    (tmp_path / "bad.txt").write_text("0 person\n2 car\n")
    with pytest.raises(BoxFileError, match="class id 2 where 1"):
        read_class_names(tmp_path / "bad.txt")

    yolo = tmp_path / "yolo"
    yolo.mkdir()
    (yolo / "classes.txt").write_text("person\nbicycle\ncar\n")
    (yolo / "img10.txt").write_text("2 0.5 0.5 0.5 0.5\n")
    (yolo / "img2.txt").write_text("")
    folder = BoxFolder(yolo)
    assert folder.format == "yolo" and folder.stems() == ["img2", "img10"]
    assert folder.read("img10", 100, 100) == [Box("car", 25, 25, 74, 74)]
    assert folder.class_filter(["0", "Car"]) == {"person", "car"}
    with pytest.raises(ValueError, match="class id 5"):
        folder.class_filter(["5"])
    assert BoxFolder(yolo, names=["a", "b", "c"]).read("img10", 100, 100)[0].label == "c"

    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "x.xml").write_text(
        "<annotation><object><name>Person</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
        "<xmax>5</xmax><ymax>9</ymax></bndbox></object></annotation>"
    )
    folder = BoxFolder(voc)
    assert folder.format == "voc" and folder.read("x", 10, 10) == [Box("Person", 1, 2, 5, 9)]
    with pytest.raises(ValueError, match="box format"):
        BoxFolder(voc, "coco")
    with pytest.raises(NotADirectoryError):
        BoxFolder(tmp_path / "nowhere")


# --- the acceptance tool and the `eval --boxes` command ---------------------------------------


def yolo_line(cls: int, box: tuple[int, int, int, int], w: int = W, h: int = H) -> str:
    """A YOLO line for pixel box (x0, y0, x1, y1), x1/y1 exclusive."""
    x0, y0, x1, y1 = box
    values = ((x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h)
    return f"{cls} " + " ".join(f"{v:.6f}" for v in values)


@pytest.fixture()
def synthetic(tmp_path: Path) -> dict[str, Path]:
    """ir/, labels/ (YOLO, classes.txt) and two fused folders with edge cases of every kind."""
    d = {k: tmp_path / k for k in ("ir", "labels", "keeps", "inverts")}
    for folder in d.values():
        folder.mkdir()
    (d["labels"] / "classes.txt").write_text("person\nbicycle\ncar\n")
    rng = np.random.default_rng(1)
    for i in range(3):
        ir = np.clip(rng.normal(60 + 10 * i, 6, (H, W)), 0, 255).astype(np.uint8)
        cv2.circle(ir, (40, 50), 17, 160, -1)  # a warm person
        cv2.rectangle(ir, (135, 95), (159, 119), 20, -1)  # a cold car in the corner
        cv2.circle(ir, (100, 20), 5, 180, -1)  # a small hot target (12 px box)
        keeps = cv2.GaussianBlur(ir, (5, 5), 0)
        inverts = (255 - keeps) // 2
        cv2.imwrite(str(d["ir"] / f"f{i}.png"), ir if i else cv2.merge([ir, ir, ir]))
        cv2.imwrite(str(d["keeps"] / f"f{i}.png"), keeps)
        # one method saves colour images: both readers take OpenCV's gray decoding
        colour = cv2.merge([inverts, inverts // 2, inverts])
        cv2.imwrite(str(d["inverts"] / f"f{i}.png"), colour if i == 2 else inverts)
        lines = [
            yolo_line(0, (20, 30, 60, 70)),
            yolo_line(2, (135, 95, 165, 125)),  # past the right and bottom edges
            yolo_line(0, (94, 14, 106, 26)),
            yolo_line(1, (70, 60, 72, 90)),  # 2 px wide: skipped
            yolo_line(1, (60, 80, 90, 110)),  # flat background: not counted
        ]
        (d["labels"] / f"f{i}.txt").write_text("\n".join(lines) + "\n")
    return d


def run_tool(ir: Path, labels: Path, fused: Path) -> dict:
    tool = shared_path("tools", "box_contrast.py")
    out = subprocess.run(
        [sys.executable, str(tool), str(ir), str(labels), str(fused)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def as_tool_reports(tcrs: list[bc.BoxTCR], names: list[str]) -> dict:
    """The module's numbers in the tool's JSON form (class ids as keys, 3 decimals)."""

    def summ(values):
        s = bc.summarise(values)
        return {
            "boxes": s.boxes,
            "median": round(s.median, 3),
            "kept": round(s.kept, 3),
            "inverted": round(s.inverted, 3),
        }

    per_class = {str(names.index(t.label)) for t in tcrs}
    return {
        "all": summ(tcrs),
        **{c: summ([t for t in tcrs if str(names.index(t.label)) == c]) for c in per_class},
    }


def test_the_module_agrees_with_the_acceptance_tool_on_edge_cases(synthetic):
    labels = BoxFolder(synthetic["labels"])
    for method in ("keeps", "inverts"):
        mine = bc.evaluate_folder(synthetic[method], synthetic["ir"], labels)
        assert mine.images == 3 and not mine.errors and mine.left_out == 6
        assert as_tool_reports(mine.tcrs, labels.names) == run_tool(
            synthetic["ir"], synthetic["labels"], synthetic[method]
        )
    inverted = bc.summarise(bc.evaluate_folder(synthetic["inverts"], synthetic["ir"], labels).tcrs)
    assert inverted.inverted == 1.0


@pytest.mark.shared_data
def test_the_module_agrees_with_the_acceptance_tool_on_fused_msrs_frames(tmp_path):
    """Three MSRS frames (one with a 3-channel IR file) fused by the pipeline at 320x240.

    The lite autoencoder and the classical mask keep it quick; one pass of the default mode
    (imvf-contrast) gives two methods: its raw output min-max scaled (`paper`, as `fuse`
    scales stills) and clipped (`contrast`, the node's video setting).
    """
    from sosmaskfuse_core.pipeline.builder import build_pipeline

    root = shared_path("data", "msrs_boxes")
    pipeline, _ = build_pipeline("lite", mask_source="thermal", device="cpu")
    folders = {k: tmp_path / k for k in ("ir", "labels", "paper", "contrast")}
    for folder in folders.values():
        folder.mkdir()
    for name in ("classes.txt", "00016N.txt", "00036N.txt", "01023N.txt"):
        (folders["labels"] / name).write_text((root / "labels" / name).read_text())
    for stem in ("00016N", "00036N", "01023N"):
        ir = cv2.resize(cv2.imread(str(root / "ir" / f"{stem}.png")), (320, 240), cv2.INTER_AREA)
        vis = cv2.resize(cv2.imread(str(root / "vis" / f"{stem}.png"), 0), (320, 240))
        cv2.imwrite(str(folders["ir"] / f"{stem}.png"), ir)
        pipeline.update(fusion_mode="imvf-contrast", output_scaling="clip")
        result = pipeline(
            torch.from_numpy(cv2.cvtColor(ir, cv2.COLOR_BGR2GRAY)), torch.from_numpy(vis)
        )
        raw = result.raw.float().cpu().numpy().reshape(240, 320)
        paper = np.round(255 * (raw - raw.min()) / (raw.max() - raw.min())).astype(np.uint8)
        cv2.imwrite(str(folders["paper"] / f"{stem}.png"), paper)
        cv2.imwrite(str(folders["contrast"] / f"{stem}.png"), result.fused.cpu().numpy())
    labels = BoxFolder(folders["labels"])
    for method in ("paper", "contrast"):
        mine = bc.evaluate_folder(folders[method], folders["ir"], labels)
        assert len(mine.tcrs) > 10 and not mine.errors
        assert as_tool_reports(mine.tcrs, labels.names) == run_tool(
            folders["ir"], folders["labels"], folders[method]
        )


def run_eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sosmaskfuse")
    eval_command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *argv])
    return args.func(args)


def table_rows(text: str) -> dict[tuple[str, str, str], list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[3].isdigit():
            rows[tuple(cells[:3])] = cells[3:]
    return rows


def test_eval_boxes_prints_each_method_per_class_and_size(synthetic, capsys, tmp_path):
    argv = ["--ir", str(synthetic["ir"]), "--boxes", str(synthetic["labels"])]
    argv += ["--fused", str(synthetic["keeps"]), "--fused", str(synthetic["inverts"])]
    assert run_eval(argv + ["--box-csv", str(tmp_path / "boxes.csv")]) == 0
    rows = table_rows(capsys.readouterr().out)
    labels = BoxFolder(synthetic["labels"])
    for method in ("keeps", "inverts"):
        tcrs = bc.evaluate_folder(synthetic[method], synthetic["ir"], labels).tcrs
        for cls, size, s in bc.summary_rows(tcrs):
            assert rows[(method, cls, size)] == [
                str(s.boxes), f"{s.kept:.3f}", f"{s.inverted:.3f}", f"{s.median:.3f}"
            ]  # fmt: skip
    assert rows[("keeps", "all", "all")][0] == "9"
    assert rows[("inverts", "person", "small")][:3] == ["3", "0.000", "1.000"]
    with open(tmp_path / "boxes.csv", newline="") as fh:
        per_box = list(csv.DictReader(fh))
    assert len(per_box) == 18 and {r["class"] for r in per_box} == {"person", "car"}

    assert run_eval(argv + ["--classes", "2"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert {key[1] for key in rows} == {"all", "car"} and rows[("keeps", "all", "all")][0] == "3"


def test_eval_boxes_reports_a_missing_fused_image_and_bad_options(synthetic, capsys):
    (synthetic["keeps"] / "f1.png").unlink()
    argv = ["--ir", str(synthetic["ir"]), "--boxes", str(synthetic["labels"])]
    assert run_eval(argv + ["--fused", str(synthetic["keeps"])]) == 1
    captured = capsys.readouterr()
    assert "keeps/f1: no fused image named 'f1'" in captured.err
    assert table_rows(captured.out)[("keeps", "all", "all")][0] == "6"
    assert run_eval(argv + ["--fused", str(synthetic["keeps"]), "--classes", "7"]) == 2
    assert "class id 7" in capsys.readouterr().err
    assert run_eval(["--ir", str(synthetic["ir"]), "--fused", str(synthetic["keeps"])]) == 2
    assert "--vis" in capsys.readouterr().err
