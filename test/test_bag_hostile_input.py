"""`sosmaskfuse bag` on hostile input: each problem costs only what it damaged, named.

A PNG header claiming 40000x30000 costs one message (it once killed the node and aborted the
bag job); a corrupted chunk of a checksummed MCAP costs that chunk's messages (it once stopped
the whole bag: "Chunk checksum mismatch", 0 of 12 pairs); a negative stamp costs its message;
a metadata.yaml that is not text, a folder without one, an output namespace that makes invalid
topic names and a write that fails part way are clear errors, never tracebacks.
"""

from __future__ import annotations

import errno
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed")

from bag_helpers import (  # noqa: E402
    COMPRESSED_IMAGE,
    SEC,
    THERMAL,
    VISIBLE,
    compressed_msg,
    frames,
    image_msg,
    pair_entries,
    read_bag,
    save_tiny_checkpoints,
    stamp_of,
    tiny_pipeline,
    write_bag,
)
from rosbags.rosbag2 import Reader, ReaderError  # noqa: E402

from sosmaskfuse_core import cli  # noqa: E402
from sosmaskfuse_core.formats import rosbag_io  # noqa: E402
from sosmaskfuse_core.formats.ros_names import check_topic_name, topic_name_problem  # noqa: E402
from sosmaskfuse_core.formats.rosbag_io import make_header, typestore  # noqa: E402
from sosmaskfuse_core.pipeline.pair_stage import PairStage  # noqa: E402
from sosmaskfuse_core.tools.fuse_bag import BagJob, fuse_bag  # noqa: E402

FUSED = "/cam/fused_image"


def _png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def run_bag(tmp_path: Path, bag: Path, out: Path, *extra: str) -> tuple[int, str]:
    """`sosmaskfuse bag` in this process: (exit code, what it printed)."""
    ae, sos = save_tiny_checkpoints(tmp_path)
    args = cli.build_parser().parse_args(
        [
            "bag",
            "--in",
            str(bag),
            "--out",
            str(out),
            "--thermal-topic",
            THERMAL,
            "--visible-topic",
            VISIBLE,
            "--autoencoder",
            ae,
            "--sosnet",
            sos,
            "--device",
            "cpu",
            *extra,
        ]
    )
    stream = io.StringIO()
    return args.func(args, stream=stream), stream.getvalue()


def test_a_png_bomb_in_a_bag_is_skipped_with_the_bag_path(tmp_path):
    ae, sos = save_tiny_checkpoints(tmp_path)
    entries = []
    for i in range(3):
        stamp = 100 * SEC + i * SEC // 10
        ir, vis = frames(i)
        thermal = compressed_msg(ir, "png", stamp, "thermal_frame")
        if i == 1:
            bomb = np.frombuffer(_png_bomb(40000, 30000), np.uint8).copy()
            thermal = typestore().types[COMPRESSED_IMAGE](
                header=make_header(stamp, "thermal_frame"), format="png", data=bomb
            )
        entries.append((THERMAL, stamp, thermal))
        entries.append((VISIBLE, stamp + 1000, compressed_msg(vis, "png", stamp, "visible_frame")))
    bag = tmp_path / "hostile_in"
    write_bag(bag, "mcap", entries)
    args = cli.build_parser().parse_args(
        [
            "bag",
            "--in",
            str(bag),
            "--out",
            str(tmp_path / "out"),
            "--thermal-topic",
            THERMAL,
            "--visible-topic",
            VISIBLE,
            "--autoencoder",
            ae,
            "--sosnet",
            sos,
            "--device",
            "cpu",
        ]
    )
    stream = io.StringIO()
    code = args.func(args, stream=stream)
    text = stream.getvalue()
    assert code == 1, text  # something was skipped
    assert "fused 2 pairs" in text and f"1 corrupt messages skipped in {bag}" in text
    assert "the PNG header says 40000x30000" in text and "max_input_pixels" in text
    got, _ = read_bag(tmp_path / "out")
    assert len(got["/cam/fused_image"]) == 2


def test_the_node_pixel_cap_applies_to_the_bag(tmp_path):
    write_bag(tmp_path / "in", "mcap", pair_entries(2))  # 64x48 = 3072 pixels
    code, text = run_bag(tmp_path, tmp_path / "in", tmp_path / "out", "--max-input-pixels", "3071")
    assert code == 1, text
    assert "fused 0 pairs" in text and "4 corrupt messages skipped" in text
    assert "64x48 = 3072 pixels is more than max_input_pixels = 3071" in text


# --- chunks --------------------------------------------------------------------------------------


def mcap_chunks(path: Path) -> list[tuple[int, int, int, int, bytes]]:
    """(record offset, start, end, stored CRC, uncompressed records) of each chunk, by the spec.

    Walks the MCAP records from the file's start (magic, then opcode, length, body), so it
    checks the file without rosbags or our reader. Chunks are uncompressed in our bags.
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89MCAP0\r\n"
    chunks, i = [], 8
    while i + 9 <= len(data) - 8:
        op, length = data[i], struct.unpack_from("<Q", data, i + 1)[0]
        body = data[i + 9 : i + 9 + length]
        if op == 0x06:
            start, end, size, crc = struct.unpack_from("<QQQI", body)
            n = struct.unpack_from("<I", body, 28)[0]
            compression = body[32 : 32 + n].decode()
            assert compression == ""
            stored = struct.unpack_from("<Q", body, 32 + n)[0]
            records = body[40 + n : 40 + n + stored]
            assert len(records) == size
            chunks.append((i, start, end, crc, records))
        if op == 0x0F:  # data end: the summary follows
            break
        i += 9 + length
    return chunks


def big_pair_entries(n: int) -> list:
    """N pairs of 320x240 frames: about 300 KB a pair, so rosbags starts a chunk every 4 pairs."""
    out = []
    for i in range(n):
        stamp = 100 * SEC + i * SEC // 10
        ir, vis = frames(i, (240, 320))
        out.append((THERMAL, stamp, image_msg(ir, "mono8", stamp, "thermal_frame")))
        out.append((VISIBLE, stamp + 1000, image_msg(vis, "rgb8", stamp, "visible_frame")))
    return out


def test_our_mcap_bags_have_a_checksum_on_every_chunk(tmp_path):
    write_bag(tmp_path / "in", "mcap", big_pair_entries(12))
    chunks = mcap_chunks(tmp_path / "in" / "in.mcap")
    assert len(chunks) == 3
    for _, _, _, crc, records in chunks:
        assert crc != 0 and crc == zlib.crc32(records)
    # make-bag writes them too (it writes through the same writer)
    for sub in ("ir", "vis"):
        (tmp_path / sub).mkdir()
    for i in range(6):
        ir, vis = frames(i, (240, 320))
        cv2.imwrite(str(tmp_path / "ir" / f"{i}.png"), ir)
        cv2.imwrite(str(tmp_path / "vis" / f"{i}.png"), vis)
    args = cli.build_parser().parse_args(
        ["make-bag", "--ir-dir", str(tmp_path / "ir"), "--vis-dir", str(tmp_path / "vis"),
         "--out", str(tmp_path / "made")]
    )  # fmt: skip
    assert args.func(args, stream=io.StringIO()) == 0
    made = mcap_chunks(tmp_path / "made" / "made.mcap")
    assert len(made) >= 2 and all(crc == zlib.crc32(rec) != 0 for *_, crc, rec in made)


def test_a_corrupted_chunk_costs_only_its_messages(tmp_path):
    bag = tmp_path / "in"
    entries = big_pair_entries(12)
    write_bag(bag, "mcap", entries)
    offset, start, end, _, _ = mcap_chunks(bag / "in.mcap")[1]
    data = bytearray((bag / "in.mcap").read_bytes())
    data[offset + 9 + 40 + 5000] ^= 0xFF  # a pixel byte inside the second chunk's records
    (bag / "in.mcap").write_bytes(bytes(data))
    with pytest.raises(ReaderError, match="Chunk checksum mismatch"), Reader(bag) as reader:
        list(reader.messages())  # rosbags alone gives up on the whole bag

    code, text = run_bag(tmp_path, bag, tmp_path / "out")
    assert code == 1, text
    lost = [t for topic, t, _ in entries if start <= t <= end]  # by the file's own chunk index
    kept = [stamp_of(m) for topic, t, m in entries if topic == VISIBLE and t not in lost]
    assert len(lost) == 8 and len(kept) == 8
    got, _ = read_bag(tmp_path / "out")
    assert [stamp_of(m) for _, m, _ in got[FUSED]] == kept
    assert f"fused {len(kept)} pairs" in text and "1 unreadable chunks lost" in text
    assert (
        f"{bag / 'in.mcap'}: chunk at byte {offset}, log times "
        f"{rosbag_io.format_time(start)} to {rosbag_io.format_time(end)}: Chunk checksum "
        f"mismatch; lost 8 messages of {THERMAL} (4), {VISIBLE} (4)"
    ) in text


def test_a_negative_stamp_costs_its_message(tmp_path):
    entries = pair_entries(3)
    bad = image_msg(frames(1)[0], "mono8", 0, "thermal_frame")
    bad.header.stamp.sec = -5
    entries[2] = (THERMAL, entries[2][1], bad)
    write_bag(tmp_path / "in", "mcap", entries)
    report = fuse_bag(
        tmp_path / "in",
        tmp_path / "out",
        BagJob(THERMAL, VISIBLE),
        PairStage(tiny_pipeline()),
        "tiny",
    )
    assert report.error == "" and report.pairs == 2
    assert [(c.topic, c.log_time) for c in report.corrupt] == [(THERMAL, entries[2][1])]
    assert "negative header stamp" in report.corrupt[0].reason


# --- unreadable bags and bad options: errors that name the problem -------------------------------


def test_a_metadata_file_that_is_not_text_is_named(tmp_path):
    write_bag(tmp_path / "in", "mcap", pair_entries(2))
    (tmp_path / "in" / "metadata.yaml").write_bytes(bytes(range(256)) * 4)
    code, text = run_bag(tmp_path, tmp_path / "in", tmp_path / "out")
    assert code == 2, text
    assert f"{tmp_path / 'in' / 'metadata.yaml'}: not a rosbag2 metadata file" in text
    assert "Traceback" not in text and not (tmp_path / "out").exists()


def test_a_folder_without_metadata_says_the_bare_file_works(tmp_path):
    write_bag(tmp_path / "in", "mcap", pair_entries(2))
    (tmp_path / "in" / "metadata.yaml").unlink()
    code, text = run_bag(tmp_path, tmp_path / "in", tmp_path / "out")
    assert code == 2, text
    assert "no metadata.yaml in this folder; a bare storage file needs none: open " in text
    assert str(tmp_path / "in" / "in.mcap") in text
    code, text = run_bag(tmp_path, tmp_path / "in" / "in.mcap", tmp_path / "out")
    assert code == 0, text
    assert "fused 2 pairs" in text


@pytest.mark.parametrize(
    "namespace, problem",
    [
        ("bad name//x", "character ' ' at index 4"),
        ("cam//x", "'//' at index 4"),
        ("cam/2nd", "token '2nd' starts with a digit"),
        ("~/private", "character '~'"),
    ],
)
def test_an_output_namespace_that_makes_invalid_topic_names_stops_before_writing(
    tmp_path, namespace, problem
):
    write_bag(tmp_path / "in", "mcap", pair_entries(1))
    code, text = run_bag(
        tmp_path, tmp_path / "in", tmp_path / "out", "--output-namespace", namespace
    )
    assert code == 2, text
    assert f"output namespace {namespace!r} gives topic" in text and problem in text
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out*")) == []
    with pytest.raises(ValueError, match="not a valid ROS 2 topic name"):
        BagJob(THERMAL, VISIBLE, output_namespace=namespace)
    assert BagJob(THERMAL, VISIBLE, output_namespace="/fleet_1/cam/").output_topics()[0] == (
        "/fleet_1/cam/fused_image"
    )


def test_topic_name_rules_agree_with_rclpy():
    validate = pytest.importorskip("rclpy.validate_full_topic_name").validate_full_topic_name
    names = [
        "/a", "/a/b_c", "/A/B9", "/_x", "/a__b", "/" + "a" * 246, "/" + "a" * 247, "", "a", "/",
        "/a/", "/a//b", "/1a", "/a/2b", "/a b", "/~", "/a/{b}", "/é", "/a-b", "/a.b",
    ]  # fmt: skip
    for name in names:
        try:
            validate(name)
            valid = True
        except Exception:  # noqa: BLE001 - rclpy's InvalidTopicNameException
            valid = False
        assert (topic_name_problem(name) is None) == valid, name
    assert check_topic_name("/a/b") == "/a/b"


# --- a write that fails part way ---------------------------------------------------------------


def test_a_write_that_fails_part_way_is_an_error_not_a_finished_bag(tmp_path, monkeypatch):
    write_bag(tmp_path / "in", "mcap", pair_entries(4))
    written = []
    original = rosbag_io.BagWriter.write

    def disk_full_after_two_fused(self, conn, timestamp, data):
        if conn.topic == FUSED:
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            written.append(timestamp)
        return original(self, conn, timestamp, data)

    monkeypatch.setattr(rosbag_io.BagWriter, "write", disk_full_after_two_fused)
    code, text = run_bag(tmp_path, tmp_path / "in", tmp_path / "out", "--batch-size", "1")
    assert code == 2, text
    assert "error: stopped early" in text and "No space left on device" in text
    assert "fused 2 pairs" in text
    monkeypatch.setattr(rosbag_io.BagWriter, "write", original)
    got, _ = read_bag(tmp_path / "out")  # closed: what was written is readable ...
    assert len(got[FUSED]) == 2
    # ... and marked incomplete, so the rerun replaces it with the whole bag
    code, text = run_bag(tmp_path, tmp_path / "in", tmp_path / "out")
    assert code == 0, text
    assert "an incomplete bag of a stopped run; replacing it" in text
    got, _ = read_bag(tmp_path / "out")
    assert len(got[FUSED]) == 4
    code, text = run_bag(tmp_path, tmp_path / "in", tmp_path / "out")
    assert code == 2 and "exists; choose a new output bag" in text  # a complete bag is kept


def test_an_error_the_stage_lets_through_costs_only_its_pair(tmp_path):
    """MemoryError (or an OpenCV error) while fusing: the batch is retried pair by pair."""
    write_bag(tmp_path / "in", "mcap", pair_entries(4))
    pipeline = tiny_pipeline()
    original, poisoned = pipeline.fuse_batch, frames(2)[0]

    def out_of_memory_on_pair_2(thermals, *args, **kwargs):
        if any(np.array_equal(np.asarray(t), poisoned) for t in thermals):
            raise MemoryError()
        return original(thermals, *args, **kwargs)

    pipeline.fuse_batch = out_of_memory_on_pair_2
    report = fuse_bag(
        tmp_path / "in",
        tmp_path / "out",
        BagJob(THERMAL, VISIBLE, batch_size=2),
        PairStage(pipeline),
        "tiny",
    )
    assert report.error == "" and report.pairs == 3
    assert [f.reason for f in report.failed] == ["pair not fused: MemoryError while fusing"]
    got, _ = read_bag(tmp_path / "out")
    expected = [100 * SEC + i * SEC // 10 for i in (0, 1, 3)]  # pair_entries' stamps
    assert [stamp_of(m) for _, m, _ in got[FUSED]] == expected
