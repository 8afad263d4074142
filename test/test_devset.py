"""The labelled development set (benchmarks/devset): manifest, labels, split, materialising."""

from __future__ import annotations

import sys
from collections import defaultdict

import cv2
import pytest
from conftest import REPO, load_module, shared_path

from sosmaskfuse_core.formats.box_folder import BoxFolder


@pytest.fixture(scope="module")
def devset():
    yield load_module(REPO / "benchmarks" / "devset.py", "devset", register=True)
    sys.modules.pop("devset", None)


def test_every_row_has_labels_tags_and_a_split_and_no_sequence_straddles_it(devset):
    frames = devset.read_manifest()
    assert len({f.stem for f in frames}) == len(frames) >= 40
    names = BoxFolder(devset.LABELS).names
    assert names == ["person", "bicycle", "car"]  # the ids of ../shared/data/msrs_boxes
    boxes = 0
    for f in frames:
        assert f.conditions and f.split in devset.SPLITS
        if f.labels:  # boxes shipped in ../shared (MSRS)
            assert f.labels.startswith("msrs_boxes/labels/")
            continue
        lines = (devset.LABELS / f"{f.stem}.txt").read_text().split("\n")
        for line in filter(None, lines):
            cls, cx, cy, w, h = line.split()
            assert int(cls) < len(names)
            assert 0 <= float(cx) <= 1 and 0 <= float(cy) <= 1 and 0 < float(w) <= 1
            assert 0 < float(h) <= 1
            boxes += 1
    assert boxes >= 250
    held = [f for f in frames if f.split == "held_out"]
    assert 0.25 <= len(held) / len(frames) <= 0.45
    splits_of_video = defaultdict(set)
    for f in frames:
        if f.frame is not None:
            splits_of_video[f.ir].add(f.split)
    assert splits_of_video and all(len(s) == 1 for s in splits_of_video.values())
    assert devset.select(frames, "dev", ("fog",)) and all(
        f.split == "dev" and "fog" in f.conditions for f in devset.select(frames, "dev", ("fog",))
    )


@pytest.mark.shared_data
def test_materialised_frames_match_their_sources(devset, tmp_path):
    shared = shared_path("data")
    frames = devset.read_manifest()
    pick = [
        next(f for f in frames if f.frame is not None and f.frame > 0),  # a video frame
        next(f for f in frames if f.stem.startswith("rs_")),
        next(f for f in frames if f.labels),  # MSRS, boxes from ../shared
    ]
    devset.materialise(pick, tmp_path, shared)
    for f in pick:
        ir = cv2.imread(str(tmp_path / "ir" / f"{f.stem}.png"), cv2.IMREAD_UNCHANGED)
        vis = cv2.imread(str(tmp_path / "vis" / f"{f.stem}.png"), cv2.IMREAD_UNCHANGED)
        assert ir.ndim == 2 and vis.ndim == 3 and ir.shape == vis.shape[:2]
        assert (tmp_path / "labels" / f"{f.stem}.txt").read_text() == f.label_path(
            shared
        ).read_text()
        if f.frame is None:  # images are copied losslessly (as gray)
            source = cv2.imread(str(shared / f.ir), cv2.IMREAD_COLOR)
            assert (cv2.cvtColor(source, cv2.COLOR_BGR2GRAY) == ir).all()
        else:  # the frame read by index is the one a sequential read reaches
            cap = cv2.VideoCapture(str(shared / f.ir))
            for _ in range(f.frame + 1):
                ok, image = cap.read()
            assert ok and (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) == ir).all()
    assert (tmp_path / "labels" / "classes.txt").is_file()
    assert len((tmp_path / "manifest.csv").read_text().splitlines()) == 4
