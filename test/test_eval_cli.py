"""Tests of the `sosmaskfuse eval` sub-command on small image folders.

The sub-command is `sosmaskfuse_core.commands.evaluate`.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from sosmaskfuse_core.commands import evaluate as eval_command
from sosmaskfuse_core.evaluation import fusion_quality as evaluate
from sosmaskfuse_core.evaluation.metrics import METRIC_NAMES, compute_all

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIZE = (48, 52)  # rows, columns: big enough for VIF (41 x 41)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sosmaskfuse")
    eval_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run_eval(argv: list[str]) -> int:
    args = parse(["eval", *argv])
    return args.func(args)


def gray(seed: int, shape: tuple[int, int] = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(0, 3, shape), axis=1) + rng.normal(0, 10, shape) + 128
    return np.clip(base, 0, 255).round().astype(np.uint8)


def write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture()
def dataset(tmp_path: Path) -> dict[str, Path]:
    """ir/ (gray PNG), vis/ (colour PNG), and two methods' fused folders for images a, b, c."""
    folders = {name: tmp_path / name for name in ("ir", "vis", "avg", "maxi")}
    for index, stem in enumerate("abc"):
        ir = gray(10 * index)
        vis_bgr = np.dstack([gray(10 * index + k) for k in (1, 2, 3)])
        vis = evaluate.read_gray(write(folders["vis"] / f"{stem}.png", vis_bgr))
        write(folders["ir"] / f"{stem}.png", ir)
        write(folders["avg"] / f"{stem}.png", ((ir.astype(int) + vis) // 2).astype(np.uint8))
        write(folders["maxi"] / f"{stem}.bmp", np.maximum(ir, vis))
    (folders["avg"] / "notes.txt").write_text("not an image")
    return folders


def expected_means(folders: dict[str, Path], method: str) -> dict[str, float]:
    per_image = []
    for ir_path in sorted(folders["ir"].iterdir()):
        fused_path = next(folders[method].glob(ir_path.stem + ".*"))
        per_image.append(
            compute_all(
                evaluate.read_gray(fused_path),
                evaluate.read_gray(ir_path),
                evaluate.read_gray(folders["vis"] / ir_path.name),
            )
        )
    return {name: float(np.mean([v[name] for v in per_image])) for name in METRIC_NAMES}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_read_gray_uses_itu_601_luma(tmp_path: Path) -> None:
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[0, 0] = (0, 0, 255)  # red   -> 0.299 * 255 = 76.245 -> 76
    bgr[0, 1] = (0, 255, 0)  # green -> 0.587 * 255 = 149.685 -> 150
    bgr[0, 2] = (255, 0, 0)  # blue  -> 0.114 * 255 = 29.07 -> 29
    bgr[1, :] = (10, 200, 100)  # 0.299 * 100 + 0.587 * 200 + 0.114 * 10 = 148.44 -> 148
    image = evaluate.read_gray(write(tmp_path / "c.png", bgr))
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, [[76, 150, 29], [148, 148, 148]])
    single = evaluate.read_gray(write(tmp_path / "g.png", np.full((2, 2), 7, np.uint8)))
    np.testing.assert_array_equal(single, np.full((2, 2), 7))


def test_read_gray_rejects_undecodable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        evaluate.read_gray(broken)


def test_one_row_per_method_with_means(
    dataset: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, md_path = tmp_path / "out.csv", tmp_path / "out.md"
    code = run_eval(
        [
            "--ir",
            str(dataset["ir"]),
            "--vis",
            str(dataset["vis"]),
            "--fused",
            str(dataset["avg"]),
            "--fused",
            str(dataset["maxi"]),
            "--csv",
            str(csv_path),
            "--markdown",
            str(md_path),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "[1/6] avg/a" in err and "[6/6] maxi/c" in err and "error" not in err

    rows = read_csv(csv_path)
    assert list(rows[0]) == ["method", "n", *METRIC_NAMES]
    assert [(r["method"], r["n"]) for r in rows] == [("avg", "3"), ("maxi", "3")]
    for row in rows:
        expected = expected_means(dataset, row["method"])
        for name in METRIC_NAMES:
            assert float(row[name]) == pytest.approx(expected[name], rel=1e-12)

    table = md_path.read_text()
    assert table == out
    lines = table.splitlines()
    assert lines[0] == "| method | n | " + " | ".join(METRIC_NAMES) + " |"
    assert lines[2].startswith("| avg | 3 | ") and lines[3].startswith("| maxi | 3 | ")
    assert f"{float(rows[0]['VIF']):.4f}" in lines[2]
    assert len(lines) == 4


def test_per_image_rows(dataset: dict[str, Path], tmp_path: Path) -> None:
    csv_path = tmp_path / "per_image.csv"
    code = run_eval(
        [
            "--ir",
            str(dataset["ir"]),
            "--vis",
            str(dataset["vis"]),
            "--fused",
            str(dataset["maxi"]),
            "--csv",
            str(csv_path),
            "--per-image",
        ]
    )
    assert code == 0
    rows = read_csv(csv_path)
    assert [(r["image"], r["n"]) for r in rows] == [
        ("a", "1"),
        ("b", "1"),
        ("c", "1"),
        ("mean", "3"),
    ]
    b = compute_all(
        *(
            evaluate.read_gray(p)
            for p in (dataset["maxi"] / "b.bmp", dataset["ir"] / "b.png", dataset["vis"] / "b.png")
        )
    )
    assert float(rows[1]["Qabf"]) == pytest.approx(b["Qabf"], rel=1e-12)
    mean_en = np.mean([float(r["EN"]) for r in rows[:3]])
    assert float(rows[3]["EN"]) == pytest.approx(mean_en, rel=1e-12)


def test_missing_partner_is_named_and_skipped(
    dataset: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (dataset["vis"] / "b.png").unlink()
    write(dataset["avg"] / "extra.png", gray(99))
    csv_path = tmp_path / "out.csv"
    code = run_eval(
        [
            "--ir",
            str(dataset["ir"]),
            "--vis",
            str(dataset["vis"]),
            "--fused",
            str(dataset["avg"]),
            "--csv",
            str(csv_path),
            "--per-image",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert "avg/b: no visible image named 'b'" in err
    assert "avg/extra: no infrared image named 'extra'" in err
    assert "2 image(s) or folder(s) skipped" in err
    rows = read_csv(csv_path)
    assert [(r["image"], r["n"]) for r in rows] == [("a", "1"), ("c", "1"), ("mean", "2")]


def test_size_mismatch_is_named_and_skipped(
    dataset: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write(dataset["maxi"] / "c.bmp", gray(5, (40, 52)))
    code = run_eval(
        ["--ir", str(dataset["ir"]), "--vis", str(dataset["vis"]), "--fused", str(dataset["maxi"])]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "maxi/c: size mismatch: fused 52x40, ir 52x48, vis 52x48" in err
    assert "| maxi | 2 |" in out


def test_ambiguous_stem_is_reported(
    dataset: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write(dataset["ir"] / "a.jpg", gray(0))
    code = run_eval(
        ["--ir", str(dataset["ir"]), "--vis", str(dataset["vis"]), "--fused", str(dataset["avg"])]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert "ambiguous infrared image 'a': a.jpg, a.png" in err


def test_missing_folder_and_empty_method(
    tmp_path: Path, dataset: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_eval(
        [
            "--ir",
            str(tmp_path / "nope"),
            "--vis",
            str(dataset["vis"]),
            "--fused",
            str(dataset["avg"]),
        ]
    )
    assert code == 2
    assert "not a folder: --ir" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = run_eval(
        ["--ir", str(dataset["ir"]), "--vis", str(dataset["vis"]), "--fused", str(empty)]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "empty: no images in" in err
    assert out.splitlines()[2].startswith("| empty | 0 | nan |")


def test_parser_requires_the_source_folders() -> None:
    with pytest.raises(SystemExit):
        parse(["eval", "--fused", "x"])
    args = parse(["eval", "--ir", "i", "--vis", "v", "--fused", "a", "--fused", "b"])
    assert (
        args.fused == [Path("a"), Path("b")]
        and args.func is eval_command.run
        and not args.per_image
    )


def test_same_named_method_folders_keep_their_paths(tmp_path: Path) -> None:
    names = eval_command.method_names(
        [tmp_path / "x" / "out", tmp_path / "y" / "out", tmp_path / "z"]
    )
    assert names == [str(tmp_path / "x" / "out"), str(tmp_path / "y" / "out"), "z"]


@pytest.mark.shared_data
def test_roadscene_average_fusion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roadscene = SHARED_DATA / "roadscene"
    if not roadscene.is_dir():
        pytest.skip(f"no shared data at {SHARED_DATA}")
    stems = sorted(p.stem for p in (roadscene / "ir").glob("*.jpg"))[:2]
    fused_dir = tmp_path / "average"
    for stem in stems:
        ir = evaluate.read_gray(roadscene / "ir" / f"{stem}.jpg")
        vis = evaluate.read_gray(roadscene / "vis" / f"{stem}.jpg")
        write(fused_dir / f"{stem}.png", ((ir.astype(int) + vis + 1) // 2).astype(np.uint8))
    csv_path = tmp_path / "roadscene.csv"
    # every RoadScene image is a source; only the two fused ones are evaluated
    code = run_eval(
        [
            "--ir",
            str(roadscene / "ir"),
            "--vis",
            str(roadscene / "vis"),
            "--fused",
            str(fused_dir),
            "--csv",
            str(csv_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    (row,) = read_csv(csv_path)
    assert row["n"] == "2"
    values = {name: float(row[name]) for name in METRIC_NAMES}
    assert 6 < values["EN"] < 8 and 0.2 < values["Qabf"] < 0.8 and 0.2 < values["VIF"] < 2
    assert not any(math.isnan(v) for v in values.values())
