"""`sosmaskfuse make-bag`: bags from generated videos and folders, and the shared M3SVD videos."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from bag_helpers import SEC, one_torch_thread, read_bag, stamp_of, tiny_pipeline
from conftest import shared_path

from sosmaskfuse_core import cli
from sosmaskfuse_core.formats.image_codec import compressed_to_array, image_to_array
from sosmaskfuse_core.formats.rosbag_io import COMPRESSED_IMAGE, IMAGE, typestore
from sosmaskfuse_core.pipeline.frames import FramePreparer
from sosmaskfuse_core.pipeline.pair_stage import PairStage
from sosmaskfuse_core.tools.fuse_bag import BagFusion, BagJob
from sosmaskfuse_core.tools.make_bag import gray_to_counts

T_TOPIC, V_TOPIC = "/camera/thermal/image_raw", "/camera/visible/image_raw"


def make_bag(*argv):
    args = cli.build_parser().parse_args(["make-bag", *map(str, argv)])
    stream = io.StringIO()
    return args.func(args, stream=stream), stream.getvalue()


def write_video(path, frames, fps=10.0):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def read_video(path):
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def test_from_videos_mono16_at_the_video_rate(tmp_path):
    rng = np.random.default_rng(0)
    # smooth frames, so MJPG keeps them close to what was written
    base = [
        cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (9, 9), 3)
        for _ in range(6)
    ]
    write_video(tmp_path / "ir.avi", base, fps=12.5)
    write_video(tmp_path / "vis.avi", [np.ascontiguousarray(f[::-1]) for f in base], fps=12.5)
    code, text = make_bag(
        "--ir-video",
        tmp_path / "ir.avi",
        "--vis-video",
        tmp_path / "vis.avi",
        "--out",
        tmp_path / "bag",
        "--thermal-encoding",
        "mono16",
        "--max-frames",
        4,
        "--start-time",
        1000.5,
        "--storage",
        "sqlite3",
        "--frame-ids",
        "ir_link",
        "rgb_link",
    )
    assert code == 0, text
    assert "wrote 4 pairs (8 messages) at 12.5 Hz" in text and "mono16 64x48" in text
    got, conns = read_bag(tmp_path / "bag")
    assert (tmp_path / "bag" / "bag.db3").is_file()
    assert conns[T_TOPIC].digest == conns[V_TOPIC].digest == typestore().hash_rihs01(IMAGE)
    expected_stamps = [
        1000 * SEC + SEC // 2 + i * SEC * 2 // 25 for i in range(4)
    ]  # 1 / 12.5 s apart
    ir_frames, vis_frames = read_video(tmp_path / "ir.avi"), read_video(tmp_path / "vis.avi")
    for i, ((t_log, th, _), (v_log, vis, _)) in enumerate(zip(got[T_TOPIC], got[V_TOPIC])):
        assert stamp_of(th) == stamp_of(vis) == t_log == v_log == expected_stamps[i]
        assert (th.encoding, vis.encoding, th.header.frame_id, vis.header.frame_id) == (
            "mono16",
            "rgb8",
            "ir_link",
            "rgb_link",
        )
        counts = image_to_array(th)
        assert counts.min() >= 7000 and counts.max() <= 7000 + 16 * 255
        assert np.array_equal(
            counts, gray_to_counts(cv2.cvtColor(ir_frames[i], cv2.COLOR_BGR2GRAY))
        )
        assert np.array_equal(image_to_array(vis), cv2.cvtColor(vis_frames[i], cv2.COLOR_BGR2RGB))


def test_from_folders_paired_by_stem_with_skips_reported(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "ir").mkdir()
    (tmp_path / "vis").mkdir()
    for stem in ("a", "b", "c"):
        cv2.imwrite(
            str(tmp_path / "ir" / f"{stem}.png"), rng.integers(0, 256, (40, 56), dtype=np.uint8)
        )
    for stem in ("a", "b", "c", "d"):
        cv2.imwrite(
            str(tmp_path / "vis" / f"{stem}.png"),
            rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        )
    (tmp_path / "ir" / "b.png").write_bytes(b"not an image")
    code, text = make_bag(
        "--ir-dir",
        tmp_path / "ir",
        "--vis-dir",
        tmp_path / "vis",
        "--out",
        tmp_path / "bag",
        "--rate",
        5,
        "--start-time",
        10,
        "--visible-encoding",
        "bgr8",
    )
    assert code == 1, text
    assert (
        "wrote 2 pairs" in text and "2 skipped" in text and "d.png: no partner in --ir-dir" in text
    )
    assert "b.png: not an image" in text
    got, _ = read_bag(tmp_path / "bag")
    assert [stamp_of(m) for _, m, _ in got[V_TOPIC]] == [10 * SEC, 10 * SEC + SEC // 5]
    assert np.array_equal(
        image_to_array(got[V_TOPIC][1][1]), cv2.imread(str(tmp_path / "vis" / "c.png"))
    )
    assert (got[T_TOPIC][0][1].width, got[T_TOPIC][0][1].height) == (
        56,
        40,
    )  # sizes may differ: the node registers


def test_compressed_topics(tmp_path):
    (tmp_path / "ir").mkdir()
    (tmp_path / "vis").mkdir()
    ir = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    cv2.imwrite(str(tmp_path / "ir" / "x.png"), ir)
    cv2.imwrite(str(tmp_path / "vis" / "x.png"), np.full((48, 64, 3), 100, np.uint8))
    code, text = make_bag(
        "--ir-dir",
        tmp_path / "ir",
        "--vis-dir",
        tmp_path / "vis",
        "--out",
        tmp_path / "bag",
        "--compressed",
        "--thermal-encoding",
        "mono16",
        "--thermal-topic",
        "/t/image",
        "--visible-topic",
        "/v/image",
    )
    assert code == 0, text
    got, conns = read_bag(tmp_path / "bag")
    assert (
        conns["/t/image/compressed"].msgtype
        == conns["/v/image/compressed"].msgtype
        == COMPRESSED_IMAGE
    )
    assert conns["/t/image/compressed"].digest == typestore().hash_rihs01(COMPRESSED_IMAGE)
    thermal = got["/t/image/compressed"][0][1]
    assert thermal.format == "mono16; png compressed"
    assert np.array_equal(compressed_to_array(thermal), gray_to_counts(ir))  # PNG is lossless


def test_bad_invocations_create_nothing(tmp_path):
    code, text = make_bag("--ir-video", tmp_path / "x.avi", "--out", tmp_path / "bag")
    assert code == 2 and "give --ir-video and --vis-video" in text
    code, text = make_bag(
        "--ir-video",
        tmp_path / "x.avi",
        "--vis-video",
        tmp_path / "y.avi",
        "--out",
        tmp_path / "bag",
    )
    assert code == 2 and "not a video" in text
    (tmp_path / "empty_ir").mkdir()
    (tmp_path / "empty_vis").mkdir()
    code, text = make_bag(
        "--ir-dir",
        tmp_path / "empty_ir",
        "--vis-dir",
        tmp_path / "empty_vis",
        "--out",
        tmp_path / "bag",
    )
    assert code == 2 and "no frame pairs" in text
    for topic, problem in (
        ("/camera/thermal image", "character ' ' at index 15"),
        ("camera/thermal", "does not start with '/'"),
        ("/camera/1st", "token '1st' starts with a digit"),
        ("/camera/visible/image_raw", "are one topic"),
    ):
        code, text = make_bag(
            "--ir-dir",
            tmp_path / "empty_ir",
            "--vis-dir",
            tmp_path / "empty_vis",
            "--out",
            tmp_path / "bag",
            "--thermal-topic",
            topic,
        )
        assert code == 2 and problem in text, text
    assert "--thermal-topic '/camera/1st' is not a valid ROS 2 topic name" in make_bag(
        "--ir-dir", tmp_path / "empty_ir", "--vis-dir", tmp_path / "empty_vis",
        "--out", tmp_path / "bag", "--thermal-topic", "/camera/1st",
    )[1]  # fmt: skip
    assert not (tmp_path / "bag").exists()


@pytest.mark.shared_data
def test_m3svd_video_pair_to_bag_to_fused_bag(tmp_path):
    root = shared_path("data", "m3svd_video")
    ir_video = sorted((root / "infrared").glob("*.mp4"))[0]
    vis_video = root / "visible" / ir_video.name
    code, text = make_bag(
        "--ir-video",
        ir_video,
        "--vis-video",
        vis_video,
        "--out",
        tmp_path / "bag",
        "--max-frames",
        10,
        "--thermal-encoding",
        "mono16",
        "--start-time",
        1700000000,
    )
    assert code == 0, text
    with one_torch_thread():
        fusion = BagFusion(
            tmp_path / "bag",
            tmp_path / "fused",
            BagJob(T_TOPIC, V_TOPIC, batch_size=5),
            PairStage(tiny_pipeline(), FramePreparer(size=(320, 240))),
        )
        report = fusion.run()
    assert (
        report.pairs == 10 and not report.skipped and report.unpaired == {T_TOPIC: 0, V_TOPIC: 0}
    )
    got, _ = read_bag(tmp_path / "fused")
    assert [stamp_of(m) for _, m, _ in got["/camera/fused_image"]] == [
        stamp_of(m) for _, m, _ in got[V_TOPIC]
    ]
    assert {(m.width, m.height) for _, m, _ in got["/camera/fused_image"]} == {(320, 240)}
    assert got[V_TOPIC][0][1].width == 640
