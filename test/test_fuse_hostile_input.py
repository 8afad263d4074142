"""Hostile image files for `fuse` and `make-bag`: each costs only itself, named in the report.

A 57-byte PNG claiming 40000x30000, a real 20000x20000 PNG (389 KB of zeros), a 3 GB sparse
file named .png, a BMP header claiming 40000x30000, a FIFO, a symbolic link loop, a link to
nothing and a folder named like images: once a traceback that lost every pair after it (or a
silent skip), now each is reported by name, every good pair is still written and the exit
code is 1. Also the checks before a run starts, and 16-bit thermal files through the gain
control.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from sosmaskfuse_core import cli
from sosmaskfuse_core.formats import image_files
from sosmaskfuse_core.formats.image_files import ImageReadError, read_image
from sosmaskfuse_core.models import checkpoints

GB = 1 << 30


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    chunks = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def png_bomb(width: int, height: int) -> bytes:
    """A PNG header claiming width x height, with no pixel data (57 bytes)."""
    return _png(width, height, b"")


def real_zero_png(width: int, height: int) -> bytes:
    """A valid 8-bit gray PNG of zeros, compressed row by row (never held whole in memory)."""
    packer = zlib.compressobj(6)
    row = b"\0" * (width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return _png(width, height, idat)


def bmp_bomb(width: int, height: int) -> bytes:
    """A BMP file header + BITMAPINFOHEADER claiming width x height 24-bit pixels, no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: a blocking open of a FIFO would never return."""

    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "huge.png"
    path.write_bytes(real_zero_png(20000, 20000))
    return path


def hostile_files(folder: Path, big_png: Path) -> dict[str, str]:
    """Stem -> the reason `fuse` must give, for a file of that stem written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bomb.png").write_bytes(png_bomb(40000, 30000))
    os.link(big_png, folder / "huge.png")
    with open(folder / "sparse.png", "wb") as f:
        f.truncate(3 * GB)  # no blocks on disk; a reader that reads it whole needs 3 GB
    (folder / "bmpbomb.bmp").write_bytes(bmp_bomb(40000, 30000))
    os.mkfifo(folder / "fifo.png")
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "dangling.png").symlink_to("absent.png")
    (folder / "sub.png").mkdir()
    return {
        "bomb": "the PNG header says 40000x30000 = 1200000000 pixels is more than "
        "max_input_pixels = 67108864",
        "huge": "the PNG header says 20000x20000 = 400000000 pixels",
        "sparse": f"{3 * GB} bytes, more than an image within max_input_pixels can take",
        "bmpbomb": "OpenCV could not decode it",
        "fifo": "a FIFO (named pipe), not an image file",
        "loop": "a symbolic link loop",
        "dangling": "a symbolic link to nothing",
        "sub": "a folder, not an image file",
    }


# --- the reader ----------------------------------------------------------------------------------


def test_the_reader_refuses_each_hostile_file_by_name_without_decoding_it(
    tmp_path, big_png, monkeypatch
):
    reasons = hostile_files(tmp_path, big_png)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a hostile file reached the decoder")

    decode = cv2.imdecode
    monkeypatch.setattr(image_files.cv2, "imdecode", no_decoding)
    for stem, reason in reasons.items():
        if stem == "bmpbomb":
            continue  # no header reader for BMP: OpenCV's own limit refuses it while decoding
        (path,) = tmp_path.glob(f"{stem}.*")
        with deadline(10), pytest.raises(ImageReadError) as caught:
            read_image(path)
        assert str(caught.value).startswith(f"{path}: ") and reason in str(caught.value)
    monkeypatch.setattr(image_files.cv2, "imdecode", decode)
    with pytest.raises(ImageReadError, match="bmpbomb.bmp: OpenCV could not decode it"):
        read_image(tmp_path / "bmpbomb.bmp")


def test_the_cap_is_a_parameter_and_formats_without_a_header_reader_are_checked_after_decoding(
    tmp_path,
):
    image = np.random.default_rng(0).integers(0, 256, (30, 40), dtype=np.uint8)
    for suffix in (".png", ".jpg", ".bmp", ".pgm"):
        cv2.imwrite(str(tmp_path / f"a{suffix}"), image)
        assert read_image(tmp_path / f"a{suffix}", cv2.IMREAD_GRAYSCALE).shape == (30, 40)
        assert read_image(tmp_path / f"a{suffix}", max_pixels=1200).shape[:2] == (30, 40)
        with pytest.raises(ImageReadError, match=f"a\\{suffix}: .*40x30 = 1200 pixels.* = 1199"):
            read_image(tmp_path / f"a{suffix}", max_pixels=1199)
    # the file-size cap follows the pixel cap: 16 bytes a pixel (RGBA float) plus 1 MiB
    assert image_files.max_file_bytes(1000) == 16 * 1000 + (1 << 20)
    with open(tmp_path / "big.pgm", "wb") as f:
        f.truncate(image_files.max_file_bytes(1000) + 1)
    with pytest.raises(ImageReadError, match=r"big.pgm: 1064577 bytes, more than"):
        read_image(tmp_path / "big.pgm", max_pixels=1000)


# --- fuse --------------------------------------------------------------------------------------


@pytest.fixture
def weights(tmp_path, tiny_autoencoder, tiny_sosnet):
    ae_path, sos_path = tmp_path / "ae.pt", tmp_path / "sos.pt"
    checkpoints.save_checkpoint(ae_path, tiny_autoencoder)
    checkpoints.save_checkpoint(sos_path, tiny_sosnet)
    return str(ae_path), str(sos_path)


def write_pairs(root: Path, stems, size=(40, 56)) -> None:
    rng = np.random.default_rng(1)
    for sub in ("ir", "vis"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        cv2.imwrite(str(root / "ir" / f"{stem}.png"), rng.integers(0, 256, size, dtype=np.uint8))
        cv2.imwrite(
            str(root / "vis" / f"{stem}.png"), rng.integers(0, 256, size + (3,), dtype=np.uint8)
        )


def fuse(tmp_path, weights, *extra, ir=None, vis=None, out=None):
    return cli.main(
        [
            "fuse",
            "--ir",
            str(ir or tmp_path / "ir"),
            "--vis",
            str(vis or tmp_path / "vis"),
            "--out",
            str(out or tmp_path / "out"),
            "--autoencoder",
            weights[0],
            "--sosnet",
            weights[1],
            "--device",
            "cpu",
            *extra,
        ]
    )


def test_fuse_reports_each_hostile_thermal_file_and_writes_every_good_pair(
    tmp_path, weights, big_png, capsys
):
    reasons = hostile_files(tmp_path / "ir", big_png)
    good = ["a", "m", "z"]  # before, between and after the hostile stems in name order
    write_pairs(tmp_path, good)
    for stem in reasons:  # each hostile thermal file gets a good visible partner
        cv2.imwrite(str(tmp_path / "vis" / f"{stem}.png"), np.zeros((40, 56, 3), np.uint8))
    with deadline(300):
        code = fuse(tmp_path, weights)
    err = capsys.readouterr().err
    assert code == 1, err
    assert sorted(p.stem for p in (tmp_path / "out" / "fused").iterdir()) == good
    assert f"fused 3 of {3 + len(reasons)} pairs" in err and f"{len(reasons)} failed" in err
    lines = [line.strip() for line in err.splitlines()]
    for stem, reason in reasons.items():
        (line,) = [ln for ln in lines if ln.startswith(f"{stem}: ")]
        assert reason in line and str(tmp_path / "ir" / stem) in line, line


def test_sixteen_bit_thermal_files_go_through_the_gain_control(tmp_path, weights):
    """Counts 7000 + 16 g under a fixed 7000..11080 window are g again: the 8-bit result.

    Read as OpenCV's colour reader gives it (the top 8 bits), the same file would be 17 gray
    levels (27..43); the default percentile window matches numpy's percentiles.
    """
    rng = np.random.default_rng(3)
    gray = cv2.GaussianBlur(rng.integers(0, 256, (40, 56), dtype=np.uint8), (5, 5), 0)
    gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX)
    counts = (7000 + 16 * gray.astype(np.uint16)).astype(np.uint16)
    assert len(np.unique(counts >> 8)) <= 17  # what the top 8 bits keep
    low, high = np.percentile(counts, (1, 99))
    stretched = np.rint(np.clip((counts - low) * 255.0 / (high - low), 0, 255)).astype(np.uint8)
    visible = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    for name, thermal in (("counts", counts), ("gray", gray), ("stretched", stretched)):
        (tmp_path / name / "ir").mkdir(parents=True)
        (tmp_path / name / "vis").mkdir()
        cv2.imwrite(str(tmp_path / name / "ir" / "f.png"), thermal)
        cv2.imwrite(str(tmp_path / name / "vis" / "f.png"), visible)

    def fused(name, out, *extra):
        code = fuse(
            tmp_path,
            weights,
            "--fusion-mode",
            "imvf",
            *extra,
            ir=tmp_path / name / "ir",
            vis=tmp_path / name / "vis",
            out=tmp_path / out,
        )
        assert code == 0
        return cv2.imread(str(tmp_path / out / "fused" / "f.png"), cv2.IMREAD_UNCHANGED)

    fixed = ("--thermal-agc", "fixed", "--agc-min", "7000", "--agc-max", "11080")
    assert np.array_equal(fused("counts", "fixed", *fixed), fused("gray", "gray"))
    by_percentile = fused("counts", "percentile").astype(int)
    expected = fused("stretched", "stretched").astype(int)
    assert np.abs(by_percentile - expected).max() <= 1


def test_fuse_refuses_to_start_on_empty_or_equal_folders_and_a_file_for_out(
    tmp_path, weights, capsys
):
    write_pairs(tmp_path, ["a"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    assert fuse(tmp_path, weights, vis=tmp_path / "empty") == 2
    assert f"--vis {tmp_path / 'empty'}: no image files in this folder" in capsys.readouterr().err
    assert fuse(tmp_path, weights, vis=tmp_path / "ir") == 2
    assert "--ir and --vis are the same folder" in capsys.readouterr().err
    (tmp_path / "ir_link").symlink_to(tmp_path / "ir")
    assert fuse(tmp_path, weights, vis=tmp_path / "ir_link") == 2
    assert "same folder" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    cv2.imwrite(str(tmp_path / "other" / "b.png"), np.zeros((40, 56, 3), np.uint8))
    assert fuse(tmp_path, weights, vis=tmp_path / "other") == 2
    assert "no pairs: no file stem is in all of --ir, --vis" in capsys.readouterr().err
    # --out a file, or its fused/ a file: refused before the models load or a pair is fused
    (tmp_path / "out_file").write_text("x")
    start = time.perf_counter()
    assert fuse(tmp_path, weights, out=tmp_path / "out_file") == 2
    err = capsys.readouterr().err
    assert f"--out: {tmp_path / 'out_file'} is a file, not a folder" in err
    assert "pairs on" not in err  # nothing was loaded
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "fused").write_text("x")
    assert fuse(tmp_path, weights, out=tmp_path / "out2") == 2
    assert "out2/fused is a file" in capsys.readouterr().err
    assert time.perf_counter() - start < 60
    assert fuse(tmp_path, weights, out=tmp_path / "out_file" / "below") == 2
    assert "out_file/below" in capsys.readouterr().err


# --- make-bag ------------------------------------------------------------------------------------


def test_fuse_refuses_all_zero_weights_and_writes_nothing(
    tmp_path, weights, tiny_autoencoder, capsys
):
    """Finite but useless weights once gave black images and exit 0; now the probe stops it."""
    import copy

    import torch

    zero = copy.deepcopy(tiny_autoencoder)
    with torch.no_grad():
        for p in zero.parameters():
            p.zero_()
    zero_path = tmp_path / "zero.pt"
    checkpoints.save_checkpoint(zero_path, zero)
    write_pairs(tmp_path, ["a", "b"])
    assert fuse(tmp_path, (str(zero_path), weights[1])) == 2
    err = capsys.readouterr().err
    assert str(zero_path) in err and "autoencoder gives the same output" in err
    assert not (tmp_path / "out").exists()
    assert fuse(tmp_path, weights) == 0  # the same pairs with working weights
    assert sorted(p.name for p in (tmp_path / "out" / "fused").iterdir()) == ["a.png", "b.png"]


def test_make_bag_skips_hostile_files_by_name_and_writes_the_good_pairs(tmp_path, big_png):
    reasons = hostile_files(tmp_path / "ir", big_png)
    write_pairs(tmp_path, ["a", "z"])
    for stem in reasons:
        cv2.imwrite(str(tmp_path / "vis" / f"{stem}.png"), np.zeros((40, 56, 3), np.uint8))
    args = cli.build_parser().parse_args(
        [
            "make-bag",
            "--ir-dir",
            str(tmp_path / "ir"),
            "--vis-dir",
            str(tmp_path / "vis"),
            "--out",
            str(tmp_path / "bag"),
        ]
    )
    stream = io.StringIO()
    with deadline(120):
        code = args.func(args, stream=stream)
    text = stream.getvalue()
    assert code == 1, text
    assert "wrote 2 pairs" in text and f"{len(reasons)} skipped" in text
    for stem, reason in reasons.items():
        (line,) = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(f"{stem}: ")]
        assert reason in line, line
