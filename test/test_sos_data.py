"""make-sos-data: box masks, video and image pseudo-labels, VOC boxes, box and stability scores.

Box-to-mask derivation, video pseudo-labels on a synthetic moving blob, image labels, the VOC
reader, box recall/precision and the command on small generated data sets.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from sosmaskfuse_core import cli
from sosmaskfuse_core.evaluation.mask_metrics import iou
from sosmaskfuse_core.evaluation.weak_eval import (
    box_scores,
    evaluate_boxes,
    sum_box_scores,
    temporal_stability,
)
from sosmaskfuse_core.formats.voc_boxes import Box, BoxFileError, read_voc
from sosmaskfuse_core.training.sosnet import pseudo_labels as pl
from sosmaskfuse_core.training.sosnet import sources as sos_sources
from sosmaskfuse_core.training.sosnet import video_labels as vl


def _noisy(h, w, level=60.0, seed=0):
    return np.random.default_rng(seed).normal(level, 3.0, (h, w))


def test_box_label_takes_the_hot_part_of_a_person_and_the_whole_car():
    img = _noisy(120, 160)
    person = np.zeros((120, 160), bool)
    cv2.ellipse(person.view(np.uint8), (30, 50), (4, 12), 0, 0, 360, 1, -1)
    img[person] = 200.0  # a hot person filling about half of a loose box
    car = np.zeros((120, 160), bool)
    car[60:80, 90:140] = True
    img[car] = 20.0  # a cold roof ...
    img[60:80, 90:100] = 210.0  # ... and a hot bonnet: one car
    img = np.clip(img, 0, 255).astype(np.uint8)
    boxes = [
        Box("Person", 22, 35, 38, 65),
        Box("Car", 90, 60, 139, 79),
        Box("DontCare", 5, 100, 15, 110),
    ]
    lab = pl.box_label(img, boxes)
    m = lab.mask > 0
    assert iou(m[35:66, 22:39], person[35:66, 22:39]) > 0.8
    assert m[60:80, 90:140].mean() > 0.95  # the cold roof is part of the car
    assert not m[:, :20].any() and not m[90:, :].any()  # nothing outside the object boxes
    assert (lab.weight[98:113, 3:18] == 0).all()  # DontCare (with its margin) is ignored
    assert lab.weight[5, 150] == 1.0 and lab.weight[50, 30] == 1.0
    assert lab.info == {"boxes": 3, "fallbacks": 0}


def test_box_label_falls_back_to_a_weak_ellipse_without_contrast():
    img = np.clip(_noisy(60, 60), 0, 255).astype(np.uint8)
    lab = pl.box_label(img, [Box("Person", 20, 10, 39, 49)])
    m = lab.mask > 0
    assert lab.info["fallbacks"] == 1
    assert 0.6 < m[10:50, 20:40].mean() < 0.9 and not m[:, :20].any()
    assert np.allclose(lab.weight[10:50, 20:40], pl.BoxLabelConfig().fallback_weight)


def _moving_blob_video(n=40, h=96, w=128, seed=0):
    """A static scene with a warm wide wall, a static warm post and a blob walking right."""
    rng = np.random.default_rng(seed)
    base = np.full((h, w), 50.0)
    base[5:30, 0:128] = 95.0  # a warm wall along the top: large and border-running
    base[55:75, 110:116] = 150.0  # a static warm person-like post
    frames, truth = [], []
    for t in range(n):
        f = base + rng.normal(0, 2.0, (h, w))
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (10 + 2 * t, 60), (5, 11), 0, 0, 360, 1, -1)
        f[m > 0] = 190.0
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
        truth.append(m > 0)
    return frames, truth


def test_video_labels_keep_the_moving_blob_and_not_the_static_warm_things():
    frames, truth = _moving_blob_video()
    cfg = vl.VideoLabelConfig(label_every=5, neighbour=2, change_gap=4, median_frames=40)
    labels = vl.video_labels(frames, cfg)
    assert labels and all(i % 5 == 2 for i in labels)
    for t, lab in labels.items():
        m = lab.mask > 0
        assert iou(m, truth[t]) > 0.7, t
        assert not m[5:30].any()  # the warm wall is not salient ...
        assert not m[55:75, 110:116].any()  # ... nor the post
    lab = labels[22]
    assert lab.weight[60, 112] == cfg.static_person_weight  # the post: not taught either way
    assert lab.weight[2, 64] == 1.0  # plain background


def test_video_labels_skip_frames_where_everything_moved():
    frames, _ = _moving_blob_video(n=40)
    texture = cv2.GaussianBlur(np.random.default_rng(5).normal(0, 400, (96, 128)), (0, 0), 3)
    frames = [np.clip(f + texture, 0, 255).astype(np.uint8) for f in frames]
    for t in range(18, 25):  # the camera panned for a moment
        frames[t] = np.roll(frames[t], 7 * (t - 16), axis=1)
    cfg = vl.VideoLabelConfig(
        label_every=1, neighbour=2, change_gap=4, median_frames=40, max_moving=0.3
    )
    labels = vl.video_labels(frames, cfg)
    assert 5 in labels and 30 in labels and not set(range(18, 25)) & set(labels)


def test_image_label_marks_a_hot_person_and_ignores_a_hot_band():
    img = _noisy(120, 160, level=40)
    img[40:90, 70:84] = 220.0  # a person
    img[0:12, :] = 200.0  # a hot band along the top edge
    lab = pl.image_label(np.clip(img, 0, 255).astype(np.uint8))
    m = lab.mask > 0
    assert m[45:85, 72:82].mean() > 0.9 and not m[0:12].any()
    assert lab.weight[100, 20] == 1.0
    assert lab.weight[40, 77] < 1.0  # the object's border band is down-weighted
    assert (lab.weight[50:80, 74:80] == 1.0).all()  # the person's inside is taught at full weight


def test_read_voc_and_its_errors(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text(
        "<annotation><object><name>Person</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
        "<xmax>5</xmax><ymax>9</ymax></bndbox></object>"
        "<object><name>Car</name></object></annotation>"
    )
    assert read_voc(xml) == [Box("Person", 1, 2, 5, 9)]
    bad = tmp_path / "b.xml"
    bad.write_text("<annotation><object>")
    with pytest.raises(BoxFileError, match="b.xml"):
        read_voc(bad)


def test_box_scores_count_found_boxes_and_mask_inside_boxes():
    mask = np.zeros((50, 50), bool)
    mask[10:20, 10:20] = True  # fills box A
    mask[40:45, 40:45] = True  # outside every box
    boxes = [
        Box("Person", 10, 10, 19, 19),
        Box("Car", 30, 0, 39, 9),
        Box("DontCare", 0, 40, 9, 49),
    ]
    r = box_scores(mask, boxes)
    assert (r["boxes"], r["found"], r["mask_pixels"], r["mask_in_boxes"]) == (2, 1, 125, 100)
    total = sum_box_scores([r, r])
    assert total["recall"] == 0.5 and total["precision"] == 0.8
    assert total["recall_per_class"] == {
        "car": {"boxes": 2, "recall": 0.0},
        "person": {"boxes": 2, "recall": 1.0},
    }


def test_box_recall_by_size_and_class_from_yolo_labels(tmp_path, capsys):
    """Small (< 32 px tall), medium and large boxes; the mask covers the large ones only."""
    ir = np.full((240, 320), 40, np.uint8)
    ir[10:130, 10:40] = 200  # a large person (120 px tall): the only hot thing
    mask = (ir > 100).astype(np.float32)
    boxes = [
        Box("person", 10, 10, 39, 129),  # large, covered
        Box("person", 100, 100, 109, 129),  # small (30 px), not covered
        Box("car", 150, 100, 199, 159),  # medium (60 px), not covered
        Box("car", 5, 5, 44, 134),  # large (130 px), covered 120*30/(130*40) = 0.69
    ]
    r = box_scores(mask, boxes, classes={"person", "car"})
    assert r["per_size"] == {"large": [2, 2], "small": [1, 0], "medium": [1, 0]}
    total = sum_box_scores([r])
    assert list(total["recall_per_size"]) == ["small", "medium", "large"]
    assert total["recall_per_class_size"]["person/small"] == {"boxes": 1, "recall": 0.0}
    assert total["recall_per_class_size"]["car/large"] == {"boxes": 1, "recall": 1.0}
    assert box_scores(mask, boxes, classes={"car"})["boxes"] == 2

    (tmp_path / "ir").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "ir" / "a.png"), ir)
    (tmp_path / "labels" / "classes.txt").write_text("person\nbicycle\ncar\n")
    (tmp_path / "labels" / "a.txt").write_text(
        "".join(
            f"{c} {(b.x0 + b.x1 + 1) / 640} {(b.y0 + b.y1 + 1) / 480} "
            f"{(b.x1 + 1 - b.x0) / 320} {(b.y1 + 1 - b.y0) / 240}\n"
            for c, b in zip((0, 0, 2, 2), boxes)
        )
    )
    res = evaluate_boxes(str(tmp_path / "ir"), str(tmp_path / "labels"), lambda _: mask)
    assert res["recall_per_size"]["large"] == {"boxes": 2, "recall": 1.0}
    assert res["recall_per_class"]["person"] == {"boxes": 2, "recall": 0.5}
    only_cars = evaluate_boxes(str(tmp_path / "ir"), str(tmp_path / "labels"), lambda _: mask,
                               classes=["2"])  # fmt: skip
    assert only_cars["boxes"] == 2 and only_cars["recall"] == 0.5

    argv = ["eval-mask", "--ir", str(tmp_path / "ir"), "--boxes", str(tmp_path / "labels")]
    assert cli.main(argv + ["--source", "thermal", "--classes", "person"]) == 0
    out = capsys.readouterr().out
    assert "| person | small | 1 |" in out and "| all | large | 1 |" in out and "car" not in out


def test_temporal_stability_is_the_consecutive_frame_iou():
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b = np.roll(a, 2, axis=1)
    r = temporal_stability({"v_1": a, "v_2": a, "v_10": b}, lambda s: s.split("_")[0])
    assert r["per_group"]["v"]["pairs"] == 2
    assert r["stability"] == pytest.approx((1.0 + 8 / 24) / 2)


def _hit_uav(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i, split in enumerate(["train", "train", "val", "test"]):
        img = _noisy(64, 80, seed=i)
        img[20:40, 30:40] = 200
        cv2.imwrite(str(root / "images" / f"im{i}.jpg"), np.clip(img, 0, 255).astype(np.uint8))
        (root / "annotations" / f"im{i}.xml").write_text(
            "<annotation><object><name>Person</name><bndbox><xmin>28</xmin><ymin>18</ymin>"
            "<xmax>41</xmax><ymax>41</ymax></bndbox></object></annotation>"
        )
    (root / "annotations" / "im1.xml").write_text("<annotation><object>")  # broken: skipped
    (root / "train.txt").write_text("im0\nim1\n")
    (root / "val.txt").write_text("im2\n")
    (root / "test.txt").write_text("im3\n")
    return root


def test_make_sos_data_hit_uav_keeps_the_split_and_skips_a_bad_file(tmp_path, capsys):
    root = _hit_uav(tmp_path / "hit")
    out = tmp_path / "out"
    rc = cli.main(["make-sos-data", "--source", "hit_uav", "--root", str(root), "--out", str(out)])
    assert rc == 0
    assert sorted(p.name for p in (out / "train" / "mask").iterdir()) == ["im0.png"]
    assert [p.name for p in (out / "val" / "weight").iterdir()] == ["im2.png"]
    copied = (out / "test" / "ir" / "im3.jpg").read_bytes()
    assert copied == (root / "images" / "im3.jpg").read_bytes()
    mask = cv2.imread(str(out / "train" / "mask" / "im0.png"), cv2.IMREAD_GRAYSCALE)
    assert mask[25:35, 32:38].min() == 255 and mask[:10].max() == 0
    assert "im1.xml" in (out / "make_sos_data_hit_uav.json").read_text()


def test_make_sos_data_video_holds_out_whole_videos(tmp_path):
    frames, _ = _moving_blob_video(n=30)
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("a", "b"):
        wr = cv2.VideoWriter(
            str(vids / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96), False
        )
        for f in frames:
            wr.write(f)
        wr.release()
    (vids / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    rep = sos_sources.make_videos(
        [vids],
        out,
        hold_out=["b"],
        config=vl.VideoLabelConfig(label_every=10, neighbour=2, change_gap=4),
    )
    assert rep.written == {"train": 3, "heldout": 3}
    assert len(rep.skipped) == 1 and "broken" in rep.skipped[0]
    assert {p.stem.split("_")[0] for p in (out / "heldout" / "ir").iterdir()} == {"b"}
    assert (out / "train" / "mask" / "a_00002.png").is_file()
    with pytest.raises(sos_sources.SourceError, match="not there"):
        sos_sources.make_videos([vids], out, hold_out=["zzz"])


def test_a_person_walking_past_a_warm_wall_does_not_take_the_wall_along():
    frames, truth = _moving_blob_video(n=40)
    wall = np.zeros((96, 128), bool)
    wall[35:90, 60:128] = True  # a big warm wall the blob walks in front of
    frames = [np.where(wall & ~m, 120, f).astype(np.uint8) for f, m in zip(frames, truth)]

    def merged(frame):  # a classical mask that marks the wall and the person as one object
        region = (np.arange(128) >= 40)[None, :] & (np.arange(96) >= 35)[:, None]
        return ((frame > 100) & region).astype(float)

    cfg = vl.VideoLabelConfig(label_every=5, neighbour=2, change_gap=4, median_frames=40)
    labels = vl.video_labels(frames, cfg, agreement=merged)
    for t in (27, 32):  # the blob is in front of the wall
        m = labels[t].mask > 0
        assert iou(m, truth[t]) > 0.6 and (m & wall & ~truth[t]).sum() < 0.2 * truth[t].sum()


def test_object_like_keeps_a_close_person_and_drops_walls_and_bands():
    frame = np.zeros((100, 160), bool)
    person = frame.copy()
    person[20:100, 60:95] = True  # 17.5 % of the frame, tall, cut by the bottom edge
    wall = frame.copy()
    wall[30:70, 20:120] = True  # 25 % and wide
    band = frame.copy()
    band[0:10, :] = True  # along the top edge
    blob = frame.copy()
    blob[40:50, 40:48] = True
    assert pl.object_like(person) and pl.object_like(blob)
    assert not pl.object_like(wall) and not pl.object_like(band)


def test_eval_mask_boxes_and_stability_from_the_command_line(tmp_path, capsys):
    root = _hit_uav(tmp_path / "hit")
    rc = cli.main(
        [
            "eval-mask",
            "--ir",
            str(root / "images"),
            "--boxes",
            str(root / "annotations"),
            "--stems",
            str(root / "train.txt"),
            "--source",
            "thermal",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "box recall 1.000" in out and "on 1 images, 1 boxes" in out  # im1: broken
    frames, _ = _moving_blob_video(n=6)
    (tmp_path / "v").mkdir()
    for t in (0, 2, 4):
        cv2.imwrite(str(tmp_path / "v" / f"clip_{t}.png"), frames[t])
    rc = cli.main(["eval-mask", "--ir", str(tmp_path / "v"), "--stability", "--source", "thermal"])
    out = capsys.readouterr().out
    assert rc == 0 and "video clip" in out and "(2 pairs)" in out
    assert cli.main(["eval-mask", "--ir", str(tmp_path / "v"), "--source", "thermal"]) == 2


def test_eval_mask_names_the_problem_of_bad_box_options(tmp_path, capsys):
    root = _hit_uav(tmp_path / "hit")
    argv = ["eval-mask", "--ir", str(root / "images"), "--source", "thermal", "--boxes"]
    assert cli.main(argv + [str(tmp_path / "none")]) == 2
    assert "none: not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(argv + [str(tmp_path / "empty")]) == 2
    assert "has an annotation in" in capsys.readouterr().err
    rc = cli.main(
        ["eval-mask", "--ir", str(tmp_path / "missing"), "--boxes", str(root / "annotations")]
    )
    assert rc == 2 and "missing" in capsys.readouterr().err
    rc = cli.main(["eval-mask", "--ir", str(root / "images"), "--stability", "--held-out"])
    assert rc == 2 and "--held-out needs --source sosnet" in capsys.readouterr().err
