"""`sosmaskfuse bag` on hostile input: a PNG header claiming 40000x30000 costs one message.

The same 57-byte message that once killed the node aborted the bag job with a traceback and no
output; now it is reported (with the bag's path) and skipped, and every other pair is fused.
"""

from __future__ import annotations

import io
import struct
import zlib

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
    read_bag,
    save_tiny_checkpoints,
    write_bag,
)

from sosmaskfuse_core import cli  # noqa: E402
from sosmaskfuse_core.formats.rosbag_io import make_header, typestore  # noqa: E402


def _png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


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
