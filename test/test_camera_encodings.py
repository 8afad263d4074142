"""Camera encodings (bayer, YUV 4:2:2, NV21, 16-bit colour) and the pixel cap, in the shared codec.

Expected colours are computed by hand: a flat-colour mosaic laid out from the pattern's
letters, and ITU-R BT.601 video-range YUV -> RGB written out here.
"""

from __future__ import annotations

import struct
import zlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sosmaskfuse_core.formats.image_codec import (
    CAMERA_ENCODINGS,
    ImageDecodeError,
    compressed_size,
    compressed_to_array,
    message_to_array,
    to_uint8,
)
from sosmaskfuse_core.pipeline.frames import FramePreparer

BGR = (10, 100, 200)  # a flat colour, as B, G, R


def _image(encoding, data, width, height, step=None, bigendian=0):
    return SimpleNamespace(
        encoding=encoding,
        width=width,
        height=height,
        step=step if step is not None else len(data) // height,
        is_bigendian=bigendian,
        data=bytes(data),
    )


def _mosaic(pattern: str, bgr, height=8, width=10, dtype=np.uint8) -> np.ndarray:
    """A bayer mosaic of one colour: `pattern` names the 2x2 block's colours row by row."""
    channel = {"b": 0, "g": 1, "r": 2}
    m = np.zeros((height, width), dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        m[dy::2, dx::2] = bgr[channel[pattern[k]]]
    return m


def _bt601(y, u, v):
    """Video-range BT.601 YUV -> (B, G, R), as cameras encode it."""
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    return tuple(
        float(np.clip(x, 0, 255))
        for x in (c + 2.018 * d, c - 0.391 * d - 0.813 * e, c + 1.596 * e)
    )


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_8_bit_mosaics_demosaic_to_their_colour(pattern):
    mosaic = _mosaic(pattern, BGR)
    image, encoding = message_to_array(_image(f"bayer_{pattern}8", mosaic.tobytes(), 10, 8))
    assert encoding == "bgr8" and image.shape == (8, 10, 3)
    assert (image[2:-2, 2:-2] == BGR).all(), image[4, 4]  # away from the border


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bigendian", [0, 1])
def test_bayer_16_bit_mosaics_keep_16_bits_and_the_byte_order(pattern, bigendian):
    colour = (1000, 20000, 60000)
    mosaic = _mosaic(pattern, colour, dtype=np.uint16)
    data = mosaic.astype(">u2" if bigendian else "<u2").tobytes()
    image, encoding = message_to_array(
        _image(f"bayer_{pattern}16", data, 10, 8, bigendian=bigendian)
    )
    assert encoding == "bgr16" and image.dtype == np.uint16
    assert (image[2:-2, 2:-2] == colour).all(), image[4, 4]


@pytest.mark.parametrize(
    "encoding,order",
    [("yuv422", "uyvy"), ("uyvy", "uyvy"), ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")],
)
@pytest.mark.parametrize("yuv", [(81, 90, 240), (145, 54, 34), (50, 128, 128)])
def test_packed_yuv422_decodes_with_bt601(encoding, order, yuv):
    y, u, v = yuv
    width, height = 6, 4
    quad = [u, y, v, y] if order == "uyvy" else [y, u, y, v]
    row = bytes(quad * (width // 2)) + b"\xee" * 4  # 4 bytes of row padding
    image, out = message_to_array(_image(encoding, row * height, width, height, step=len(row)))
    assert out == "bgr8" and image.shape == (height, width, 3)
    np.testing.assert_allclose(image.reshape(-1, 3), [_bt601(y, u, v)] * width * height, atol=2)


def test_nv21_is_a_luma_plane_then_interleaved_v_u():
    width, height = 8, 6
    y, u, v = 81, 90, 240  # red: swapping U and V would give a blue-ish colour
    data = bytes([y] * width * height) + bytes([v, u] * (width // 2) * (height // 2))
    image, encoding = message_to_array(_image("nv21", data, width, height, step=width))
    assert encoding == "bgr8" and image.shape == (height, width, 3)
    np.testing.assert_allclose(image.reshape(-1, 3), [_bt601(y, u, v)] * width * height, atol=2)
    assert image[0, 0, 2] > 200 and image[0, 0, 0] < 40


@pytest.mark.parametrize(
    "encoding,width,height,data,text",
    [
        ("yuv422", 5, 2, bytes(20), "yuv422 needs an even width, got 5"),
        ("nv21", 8, 5, bytes(60), "nv21 needs an even height, got 5"),
        ("nv21", 8, 6, bytes(8 * 6), r"data has 48 bytes, step\*9 rows = 72"),
        ("bayer_rggb8", 1, 4, bytes(4), "a bayer mosaic needs at least 2x2"),
        ("bayer_rggb16", 4, 4, bytes(16), "data has 16 bytes, step\\*height = 32"),
    ],
)
def test_camera_layout_errors_name_the_problem(encoding, width, height, data, text):
    msg = _image(encoding, data, width, height, step=len(data) // max(height, 1))
    if encoding.endswith("16"):
        msg.step = width * 2
    if encoding == "nv21":
        msg.step = width
    with pytest.raises(ImageDecodeError, match="visible image: " + text):
        message_to_array(msg, name="visible image")


def test_every_listed_camera_encoding_is_decoded():
    assert set(CAMERA_ENCODINGS) == {
        *(f"bayer_{p}{b}" for p in ("rggb", "bggr", "gbrg", "grbg") for b in (8, 16)),
        "yuv422",
        "uyvy",
        "yuv422_yuy2",
        "yuyv",
        "nv21",
    }


# ----------------------------------------------------------------------------- 16-bit visible


def test_16_bit_visible_images_are_taken_as_full_range():
    counts = np.array([[0, 257, 32896], [65535, 128, 129]], np.uint16)
    assert to_uint8(counts).tolist() == [[0, 1, 128], [255, 0, 1]]
    prep = FramePreparer(gray_visible=True)
    vis16 = np.full((20, 20, 3), 65535, np.uint16)
    thermal = np.zeros((20, 20), np.uint8)
    _, vis = prep.prepare(thermal, "mono8", vis16, "bgr16")
    assert vis.dtype == np.uint8 and (vis == 255).all()


# ----------------------------------------------------------------------------- the pixel cap


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR chunk claiming width x height, an empty IDAT and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def _compressed(data: bytes, fmt: str = "png"):
    return SimpleNamespace(format=fmt, data=data)


def test_a_tiny_png_claiming_a_huge_size_is_refused_before_decoding():
    bomb = _png_header_only(40000, 30000)
    assert len(bomb) < 60
    with pytest.raises(ImageDecodeError, match=r"thermal image: the PNG header says 40000x30000"):
        message_to_array(_compressed(bomb), name="thermal image")
    # without the cap OpenCV's own limit raises cv2.error: it comes out as ImageDecodeError too
    with pytest.raises(ImageDecodeError, match="thermal image: OpenCV could not decode"):
        compressed_to_array(_compressed(bomb), name="thermal image", max_pixels=None)


def test_the_cap_applies_to_the_header_size_of_real_png_and_jpeg_data():
    img = np.zeros((40, 48), np.uint8)
    for ext, codec, params in (
        (".png", "png", []),
        (".jpg", "jpeg", []),
        (".jpg", "jpeg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),  # SOF2
    ):
        ok, buf = cv2.imencode(ext, img, params)
        data = buf.tobytes()
        assert compressed_size(data) == (codec, 48, 40)
        assert compressed_to_array(_compressed(data, codec), max_pixels=48 * 40).shape == (40, 48)
        with pytest.raises(ImageDecodeError, match="48x40 = 1920 pixels is more than"):
            compressed_to_array(_compressed(data, codec), max_pixels=48 * 40 - 1)


def test_a_zero_filled_png_of_400_megapixels_is_refused_unread():
    big = _png_header_only(20000, 20000)
    with pytest.raises(ImageDecodeError, match="20000x20000 = 400000000 pixels"):
        message_to_array(_compressed(big))


@pytest.mark.parametrize(
    "data,text",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDX" + bytes(17), "PNG data without an IHDR"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(7) + b"\xff\xd9", "without a frame header"),
        (b"GIF89a" + bytes(20), "neither PNG nor JPEG"),
    ],
)
def test_headers_that_cannot_be_sized_are_refused(data, text):
    with pytest.raises(ImageDecodeError, match=text):
        message_to_array(_compressed(data))


def test_raw_images_above_the_cap_are_refused_before_their_data_is_read():
    claimed = _image("rgb8", b"", 20000, 20000, step=60000)
    with pytest.raises(ImageDecodeError, match="visible image: 20000x20000 = 400000000 pixels"):
        message_to_array(claimed, name="visible image")
    mosaic = _image("bayer_rggb8", b"", 20000, 20000, step=20000)
    with pytest.raises(ImageDecodeError, match="more than max_input_pixels"):
        message_to_array(mosaic)
    small = _image("mono8", bytes(12), 4, 3)
    with pytest.raises(
        ImageDecodeError, match="4x3 = 12 pixels is more than max_input_pixels = 11"
    ):
        message_to_array(small, max_pixels=11)
    assert message_to_array(small, max_pixels=12)[0].shape == (3, 4)
