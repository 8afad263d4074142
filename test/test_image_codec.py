"""Tests of sosmaskfuse_core.image_codec and thermal_agc on real rclpy and rosbags messages."""

import array
import importlib.util
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sosmaskfuse_core.formats.image_codec import (
    ENCODINGS,
    ImageDecodeError,
    array_to_compressed,
    array_to_image_fields,
    compressed_to_array,
    fill_compressed_msg,
    fill_image_msg,
    image_to_array,
    message_to_array,
    to_bgr,
    to_gray,
)
from sosmaskfuse_core.thermal.agc import ThermalAGC, stretch_to_uint8

HAVE_RCLPY_MSGS = importlib.util.find_spec("sensor_msgs") is not None
HAVE_ROSBAGS = importlib.util.find_spec("rosbags") is not None
LITTLE_ENDIAN_HOST = sys.byteorder == "little"

FLAVOURS = [
    pytest.param(
        "rclpy",
        marks=pytest.mark.skipif(
            not HAVE_RCLPY_MSGS, reason="sensor_msgs (rclpy message package) is not importable"
        ),
    ),
    pytest.param(
        "rosbags", marks=pytest.mark.skipif(not HAVE_ROSBAGS, reason="rosbags is not installed")
    ),
    "bytes",
]


def _rosbags_store():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def _rosbags_types():
    return _rosbags_store().types


def empty_image(flavour):
    """A fresh, empty Image of the given kind, as a node or the bag tool would make it."""
    if flavour == "rclpy":
        from sensor_msgs.msg import Image

        return Image()
    if flavour == "rosbags":
        types = _rosbags_types()
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""
        )
        return types["sensor_msgs/msg/Image"](
            header=header,
            height=0,
            width=0,
            encoding="",
            is_bigendian=0,
            step=0,
            data=np.zeros(0, np.uint8),
        )
    return SimpleNamespace(height=0, width=0, encoding="", is_bigendian=0, step=0, data=b"")


def raw_image(flavour, *, height, width, encoding, step, data, is_bigendian=0):
    """An Image with hand-made fields; ``data`` is bytes, stored as each library stores it."""
    msg = empty_image(flavour)
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian, msg.step = is_bigendian, step
    if flavour == "rclpy":
        msg.data = array.array("B", data)
    elif flavour == "rosbags":
        msg.data = np.frombuffer(data, np.uint8).copy()
    else:
        msg.data = bytes(data)
    return msg


def message_buffer(msg):
    return msg.data if isinstance(msg.data, np.ndarray) else np.frombuffer(msg.data, np.uint8)


def random_pixels(encoding, height=5, width=7, seed=0):
    fmt = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) if fmt.channels == 1 else (height, width, fmt.channels)
    if fmt.dtype.kind == "f":
        return rng.normal(300.0, 20.0, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(fmt.dtype).max + 1, shape, dtype=fmt.dtype)


def padded_rows(pixels, pad, fill=0xEE):
    """Row-major bytes of ``pixels`` with ``pad`` junk bytes after every row."""
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad), fill, np.uint8)
    return np.hstack([rows, junk]).tobytes(), rows.shape[1] + pad


# ----------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_round_trip_is_exact_and_zero_copy(flavour, encoding):
    pixels = random_pixels(encoding)
    msg = empty_image(flavour)
    if flavour == "bytes":
        fields = array_to_image_fields(pixels, encoding)
        msg = SimpleNamespace(**fields._asdict())
        msg.data = fields.data.tobytes()
    else:
        assert fill_image_msg(msg, pixels, encoding) is msg
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * ENCODINGS[encoding].bytes_per_pixel
    assert msg.is_bigendian == (0 if LITTLE_ENDIAN_HOST else 1)

    decoded = image_to_array(msg)
    np.testing.assert_array_equal(decoded, pixels)
    assert decoded.dtype == pixels.dtype and decoded.dtype.isnative
    assert np.shares_memory(decoded, message_buffer(msg))


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_padded_rows_are_skipped_without_copy(flavour, encoding):
    pixels = random_pixels(encoding, seed=1)
    pad = 4 * ENCODINGS[encoding].dtype.itemsize + 4  # keeps rows aligned for 16/32-bit
    data, step = padded_rows(pixels, pad)
    msg = raw_image(
        flavour,
        height=5,
        width=7,
        encoding=encoding,
        step=step,
        data=data,
        is_bigendian=int(not LITTLE_ENDIAN_HOST),
    )
    decoded = image_to_array(msg)
    np.testing.assert_array_equal(decoded, pixels)
    assert np.shares_memory(decoded, message_buffer(msg))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_trailing_bytes_after_last_row_are_ignored(flavour):
    pixels = random_pixels("mono8")
    msg = raw_image(
        flavour,
        height=5,
        width=7,
        encoding="mono8",
        step=7,
        data=pixels.tobytes() + b"\x01\x02\x03",
    )
    np.testing.assert_array_equal(image_to_array(msg), pixels)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1"])
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("pad", [0, 6])
def test_big_endian_data_is_byte_swapped(flavour, encoding, pad):
    pixels = random_pixels(encoding, seed=2)
    wire = pixels.astype(pixels.dtype.newbyteorder(">"))
    data, step = padded_rows(wire, pad)
    msg = raw_image(
        flavour, height=5, width=7, encoding=encoding, step=step, data=data, is_bigendian=1
    )
    decoded = image_to_array(msg)
    np.testing.assert_array_equal(decoded, pixels)
    assert decoded.dtype.isnative
    if LITTLE_ENDIAN_HOST:
        assert not np.shares_memory(decoded, message_buffer(msg))


def test_big_endian_mono16_by_hand():
    # 0x0102 = 258 and 0xA0B0 = 41136, most significant byte first.
    msg = raw_image(
        "bytes",
        height=1,
        width=2,
        encoding="mono16",
        step=4,
        data=bytes([0x01, 0x02, 0xA0, 0xB0]),
        is_bigendian=1,
    )
    np.testing.assert_array_equal(image_to_array(msg), [[258, 41136]])
    little = raw_image(
        "bytes",
        height=1,
        width=2,
        encoding="16UC1",
        step=4,
        data=bytes([0x02, 0x01, 0xB0, 0xA0]),
        is_bigendian=0,
    )
    np.testing.assert_array_equal(image_to_array(little), [[258, 41136]])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_odd_step_for_16_bit_gives_aligned_copy(flavour):
    pixels = random_pixels("mono16", seed=3)
    data, step = padded_rows(pixels, 1)
    msg = raw_image(
        flavour,
        height=5,
        width=7,
        encoding="mono16",
        step=step,
        data=data,
        is_bigendian=int(not LITTLE_ENDIAN_HOST),
    )
    decoded = image_to_array(msg)
    np.testing.assert_array_equal(decoded, pixels)
    assert decoded.flags.aligned


def test_bytes_data_decodes_to_read_only_view():
    msg = raw_image("bytes", height=2, width=2, encoding="mono8", step=2, data=b"\x01\x02\x03\x04")
    decoded = image_to_array(msg)
    assert not decoded.flags.writeable
    assert decoded.base is not None


def test_list_data_is_accepted_with_a_copy():
    msg = SimpleNamespace(
        height=1, width=3, encoding="mono8", is_bigendian=0, step=3, data=[1, 2, 3]
    )
    np.testing.assert_array_equal(image_to_array(msg), [[1, 2, 3]])


# ----------------------------------------------------------------------------- errors


def _bad(encoding="mono8", height=2, width=3, step=3, data=b"\0" * 6, is_bigendian=0):
    return SimpleNamespace(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=data,
    )


@pytest.mark.parametrize(
    "msg, text",
    [
        (_bad(encoding="yuv422"), "image: unsupported encoding 'yuv422'"),
        (_bad(encoding=""), "unsupported encoding ''"),
        (_bad(width=0, step=0), "image: empty image, width=0 height=2"),
        (_bad(height=0), "image: empty image, width=3 height=0"),
        (
            _bad(encoding="rgb8", step=8, data=b"\0" * 18),
            "image: step=8 is less than width*bytes_per_pixel = 3*3 = 9 (rgb8)",
        ),
        (_bad(step=4, data=b"\0" * 7), "image: data has 7 bytes, step*height = 8"),
    ],
)
def test_decode_errors_name_the_problem(msg, text):
    with pytest.raises(ImageDecodeError) as info:
        image_to_array(msg)
    assert text in str(info.value)
    assert isinstance(info.value, ValueError)


def test_short_data_message_uses_the_given_name():
    msg = _bad(encoding="32FC1", height=480, width=640, step=2560, data=b"\0" * 1000)
    with pytest.raises(
        ImageDecodeError, match=r"^thermal image: data has 1000 bytes, step\*height = 1228800$"
    ):
        image_to_array(msg, name="thermal image")


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_are_rejected(bad_value):
    pixels = np.ones((2, 3), np.float32)
    pixels[1, 2] = bad_value
    msg = _bad(
        encoding="32FC1", step=12, data=pixels.tobytes(), is_bigendian=int(not LITTLE_ENDIAN_HOST)
    )
    with pytest.raises(ImageDecodeError, match=r"thermal: 32FC1 image holds 1 NaN/inf pixels"):
        image_to_array(msg, name="thermal")


@pytest.mark.parametrize(
    "pixels, encoding, text",
    [
        (np.zeros((2, 3), np.uint16), "mono8", "mono8 needs dtype uint8, got uint16"),
        (np.zeros((2, 3), np.int16), "mono16", "mono16 needs dtype uint16, got int16"),
        (np.zeros((2, 3), np.uint8), "rgb8", "rgb8 needs a HxWx3 array, got shape (2, 3)"),
        (np.zeros((2, 3, 3), np.uint8), "bgra8", "bgra8 needs a HxWx4 array"),
        (np.zeros((2, 3, 2), np.uint8), "mono8", "mono8 needs a HxW array"),
        (np.zeros((0, 3), np.uint8), "mono8", "cannot encode an empty image"),
        (np.zeros((2, 3), np.uint8), "yuv422", "unsupported encoding 'yuv422'"),
    ],
)
def test_encode_errors(pixels, encoding, text):
    with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(")", r"\)")):
        array_to_image_fields(pixels, encoding)


def test_encode_accepts_hxwx1_and_non_contiguous_and_big_endian_arrays():
    pixels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    np.testing.assert_array_equal(
        array_to_image_fields(pixels[..., None], "mono16").data, pixels.view(np.uint8).ravel()
    )
    view = pixels[:, ::2]
    fields = array_to_image_fields(view, "16UC1")
    assert (fields.width, fields.step) == (2, 4)
    np.testing.assert_array_equal(image_to_array(SimpleNamespace(**fields._asdict())), view)
    swapped = pixels.astype(">u2")
    fields = array_to_image_fields(swapped, "mono16")
    np.testing.assert_array_equal(image_to_array(SimpleNamespace(**fields._asdict())), pixels)


def test_encode_shares_memory_with_contiguous_input():
    pixels = random_pixels("bgr8")
    assert np.shares_memory(array_to_image_fields(pixels, "bgr8").data, pixels)


@pytest.mark.skipif(not HAVE_RCLPY_MSGS, reason="sensor_msgs is not importable")
def test_fill_rclpy_image_sets_header_and_copies_into_array_array():
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    header = Header(frame_id="thermal")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    pixels = random_pixels("mono16")
    msg = fill_image_msg(Image(), pixels, "mono16", header=header)
    assert msg.header.frame_id == "thermal" and msg.header.stamp.sec == 12
    assert isinstance(msg.data, array.array) and len(msg.data) == pixels.nbytes
    assert not np.shares_memory(message_buffer(msg), pixels)
    checked = fill_image_msg(Image(check_fields=True), pixels, "mono16")
    np.testing.assert_array_equal(image_to_array(checked), pixels)


@pytest.mark.skipif(not HAVE_ROSBAGS, reason="rosbags is not installed")
def test_rosbags_image_from_fields_serialises_and_decodes():
    store = _rosbags_store()
    types = store.types
    pixels = random_pixels("rgb8", height=4, width=6)
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=1, nanosec=2), frame_id="vis"
    )
    msg = types["sensor_msgs/msg/Image"](
        header=header, **array_to_image_fields(pixels, "rgb8")._asdict()
    )
    raw = store.serialize_cdr(msg, "sensor_msgs/msg/Image")
    back = store.deserialize_cdr(raw, "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(image_to_array(back), pixels)


# ----------------------------------------------------------------------------- colour helpers


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_to_bgr_and_to_gray(encoding):
    pixels = random_pixels(encoding, seed=4)
    if ENCODINGS[encoding].channels == 1:
        expected_bgr = np.repeat(pixels[..., None], 3, axis=2)
        expected_gray = pixels
    else:
        bgr = pixels[..., [2, 1, 0]] if encoding.startswith("rgb") else pixels[..., :3]
        expected_bgr = bgr
        b, g, r = (bgr[..., i].astype(np.float64) for i in range(3))
        expected_gray = np.rint(0.114 * b + 0.587 * g + 0.299 * r)
    np.testing.assert_array_equal(to_bgr(pixels, encoding), expected_bgr)
    gray = to_gray(pixels, encoding)
    assert gray.shape == pixels.shape[:2]
    np.testing.assert_allclose(gray, expected_gray, atol=1)


def test_colour_helpers_on_padded_views():
    pixels = random_pixels("rgb8", seed=5)
    data, step = padded_rows(pixels, 3)
    view = image_to_array(
        raw_image("bytes", height=5, width=7, encoding="rgb8", step=step, data=data)
    )
    np.testing.assert_array_equal(to_bgr(view, "rgb8"), pixels[..., ::-1])
    assert to_bgr(pixels, "bgr8") is pixels


def test_colour_helpers_reject_unknown_encoding():
    with pytest.raises(ValueError, match="unsupported encoding 'bayer_rggb8'"):
        to_bgr(np.zeros((2, 2), np.uint8), "bayer_rggb8")


# ----------------------------------------------------------------------------- compressed


def _compressed(fmt, data):
    return SimpleNamespace(format=fmt, data=data)


@pytest.mark.parametrize(
    "pixels, format_text",
    [
        (random_pixels("mono8"), "mono8; png compressed"),
        (random_pixels("mono16"), "mono16; png compressed"),
        (random_pixels("bgr8"), "bgr8; png compressed bgr8"),
        (random_pixels("bgra8"), "bgra8; png compressed bgra8"),
    ],
)
def test_png_round_trip_is_lossless(pixels, format_text):
    fields = array_to_compressed(pixels, "png")
    assert fields.format == format_text
    decoded = compressed_to_array(_compressed(fields.format, fields.data))
    np.testing.assert_array_equal(decoded, pixels)
    assert decoded.dtype == pixels.dtype


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(channels):
    yy, xx = np.mgrid[0:48, 0:64]
    smooth = ((xx * 3 + yy * 2) % 256).astype(np.uint8)
    pixels = smooth if channels == 1 else np.dstack([smooth, 255 - smooth, smooth // 2])
    fields = array_to_compressed(pixels, "jpeg", jpeg_quality=95)
    assert fields.format.startswith(("mono8; jpeg compressed", "bgr8; jpeg compressed bgr8"))
    decoded = compressed_to_array(_compressed(fields.format, fields.data.tobytes()))
    assert decoded.shape == pixels.shape
    assert np.abs(decoded.astype(int) - pixels).mean() < 3


@pytest.mark.parametrize(
    "fmt",
    [
        "png",
        "PNG",
        "jpeg",
        "jpg",
        "",
        "mono16; png compressed",
        "rgb8; jpeg compressed bgr8",
        "bgr8; jpeg compressed ",
    ],
)
def test_compressed_format_strings_accepted(fmt):
    fields = array_to_compressed(random_pixels("mono8"), "png")
    # The codec is read from the bytes; the format text is only checked for sanity.
    assert compressed_to_array(_compressed(fmt, fields.data)).shape == (5, 7)


@pytest.mark.parametrize(
    "fmt, text",
    [
        ("16UC1; compressedDepth png", "compressedDepth is not supported"),
        ("tiff", "names no supported codec"),
        ("png jpeg", "names several codecs"),
    ],
)
def test_compressed_format_strings_rejected(fmt, text):
    with pytest.raises(ImageDecodeError, match=text):
        compressed_to_array(_compressed(fmt, b"\x89PNG"))


def test_compressed_bad_data():
    with pytest.raises(ImageDecodeError, match="depth: data is empty"):
        compressed_to_array(_compressed("png", b""), name="depth")
    with pytest.raises(ImageDecodeError, match="could not decode 5 bytes as 'png'"):
        compressed_to_array(_compressed("png", b"hello"))


def test_message_to_array_names_the_encoding_of_either_kind():
    gray16 = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    image, encoding = message_to_array(
        _compressed("mono16; png compressed", array_to_compressed(gray16).data)
    )
    assert encoding == "mono16" and np.array_equal(image, gray16)
    bgr = np.zeros((3, 4, 3), np.uint8)
    assert message_to_array(_compressed("png", array_to_compressed(bgr).data))[1] == "bgr8"
    rgb = array_to_image_fields(bgr, "rgb8")
    image, encoding = message_to_array(SimpleNamespace(**rgb._asdict()))
    assert encoding == "rgb8" and image.shape == (3, 4, 3)
    ok, colour16 = cv2.imencode(".png", np.full((3, 4, 3), 65535, np.uint16))
    image, encoding = message_to_array(_compressed("png", colour16.reshape(-1)))
    assert encoding == "bgr16" and image.dtype == np.uint16 and (image == 65535).all()
    ok, rgba16 = cv2.imencode(".png", np.zeros((3, 4, 4), np.uint16))
    with pytest.raises(ImageDecodeError, match="x: decoded to a uint16 array of shape"):
        message_to_array(_compressed("png", rgba16.reshape(-1)), name="x")


def test_compress_errors():
    with pytest.raises(ValueError, match="JPEG cannot hold mono16"):
        array_to_compressed(random_pixels("mono16"), "jpeg")
    with pytest.raises(ValueError, match="fmt must be 'png' or 'jpeg'"):
        array_to_compressed(random_pixels("mono8"), "webp")
    with pytest.raises(ValueError, match="cannot compress an array of dtype float32"):
        array_to_compressed(random_pixels("32FC1"), "png")


@pytest.mark.parametrize(
    "flavour",
    [
        pytest.param(
            "rclpy", marks=pytest.mark.skipif(not HAVE_RCLPY_MSGS, reason="no sensor_msgs")
        ),
        pytest.param("rosbags", marks=pytest.mark.skipif(not HAVE_ROSBAGS, reason="no rosbags")),
    ],
)
def test_fill_compressed_msg(flavour):
    if flavour == "rclpy":
        from sensor_msgs.msg import CompressedImage

        msg = CompressedImage()
    else:
        types = _rosbags_types()
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""
        )
        msg = types["sensor_msgs/msg/CompressedImage"](
            header=header, format="", data=np.zeros(0, np.uint8)
        )
    pixels = random_pixels("mono16")
    assert fill_compressed_msg(msg, pixels, "png") is msg
    assert msg.format == "mono16; png compressed"
    np.testing.assert_array_equal(compressed_to_array(msg), pixels)


# ----------------------------------------------------------------------------- cv_bridge


@pytest.mark.skipif(
    importlib.util.find_spec("cv_bridge") is None,
    reason="cv_bridge is not importable (it is not on PyPI; native ROS only)",
)
@pytest.mark.parametrize("encoding", ["mono8", "mono16", "rgb8", "bgr8", "bgra8", "32FC1"])
def test_matches_cv_bridge(encoding):
    from cv_bridge import CvBridge
    from sensor_msgs.msg import Image

    pixels = random_pixels(encoding, seed=6)
    ours = fill_image_msg(Image(), pixels, encoding)
    theirs = CvBridge().cv2_to_imgmsg(pixels, encoding=encoding)
    assert (ours.height, ours.width, ours.step, ours.encoding) == (
        theirs.height,
        theirs.width,
        theirs.step,
        theirs.encoding,
    )
    assert bytes(ours.data) == bytes(theirs.data)
    np.testing.assert_array_equal(
        image_to_array(theirs), CvBridge().imgmsg_to_cv2(theirs, desired_encoding="passthrough")
    )


# ----------------------------------------------------------------------------- thermal AGC


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (
            dict(mode="auto"),
            "ThermalAGC.mode must be one of minmax, percentile, fixed; got 'auto'",
        ),
        (dict(low_percent=-1), "low_percent and high_percent need 0 <= low_percent"),
        (dict(high_percent=100.5), "high_percent=100.5"),
        (dict(low_percent=50, high_percent=50), "low_percent=50, high_percent=50"),
        (dict(low_percent=float("nan")), "ThermalAGC.low_percent must be a finite number"),
        (dict(high_percent="99"), "ThermalAGC.high_percent must be a finite number; got '99'"),
        (dict(fixed_max=True), "ThermalAGC.fixed_max must be a finite number"),
        (dict(fixed_min=float("-inf")), "ThermalAGC.fixed_min must be a finite number"),
        (dict(fixed_min=3000, fixed_max=3000), "fixed_min must be below fixed_max"),
    ],
)
def test_agc_validation_names_the_field(kwargs, text):
    with pytest.raises(ValueError, match=text.replace("(", r"\(")):
        ThermalAGC(**kwargs)


def test_agc_minmax_hand_values():
    counts = np.array([[0, 100], [400, 1020]], np.uint16)  # 255/1020 = 0.25 per count
    agc = ThermalAGC(mode="minmax")
    assert agc.limits(counts) == (0.0, 1020.0)
    np.testing.assert_array_equal(agc.apply(counts), [[0, 25], [100, 255]])


def test_agc_percentile_hand_values():
    counts = np.array([[0, 100], [200, 1000]], np.uint16)
    agc = ThermalAGC(mode="percentile", low_percent=25, high_percent=75)
    # ranks 0.75 and 2.25 of the sorted counts: 0 + 0.75*100 = 75 and 200 + 0.25*800 = 400
    assert agc.limits(counts) == (75.0, 400.0)
    # (100-75)*255/325 = 19.6 -> 20, (200-75)*255/325 = 98.08 -> 98, below/above clip
    np.testing.assert_array_equal(agc.apply(counts), [[0, 20], [98, 255]])


def test_agc_fixed_hand_values():
    counts = np.array([[500, 1000, 1400, 2020, 60000]], np.uint16)
    agc = ThermalAGC(mode="fixed", fixed_min=1000, fixed_max=2020)
    np.testing.assert_array_equal(agc.apply(counts), [[0, 0, 100, 255, 255]])


@pytest.mark.parametrize("mode", ["minmax", "percentile"])
def test_agc_constant_image_is_all_zeros(mode):
    flat = np.full((4, 5), 31000, np.uint16)
    out = ThermalAGC(mode=mode).apply(flat)
    assert out.dtype == np.uint8 and out.shape == (4, 5) and not out.any()


def test_agc_fixed_on_constant_image_still_maps_the_count():
    flat = np.full((2, 2), 1510, np.uint16)
    out = ThermalAGC(mode="fixed", fixed_min=1000, fixed_max=2020).apply(flat)
    np.testing.assert_array_equal(out, np.full((2, 2), 128))  # 127.5 rounds to even


def test_agc_uint8_passes_through_unchanged():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for mode in ("minmax", "percentile", "fixed"):
        assert ThermalAGC(mode=mode).apply(image) is image


@pytest.mark.parametrize("size", [1, 2, 3, 17, 640 * 512])
@pytest.mark.parametrize("percents", [(1, 99), (0, 100), (0.5, 99.5), (33.3, 66.7)])
def test_agc_histogram_percentiles_equal_numpy(size, percents):
    rng = np.random.default_rng(size)
    counts = rng.normal(30000, 3000, size).clip(0, 65535).astype(np.uint16).reshape(1, -1)
    agc = ThermalAGC(low_percent=percents[0], high_percent=percents[1])
    np.testing.assert_allclose(
        agc.limits(counts), np.percentile(counts, percents), rtol=0, atol=1e-6
    )


def test_agc_float32_and_padded_uint16_views():
    rng = np.random.default_rng(7)
    kelvin = rng.normal(300, 5, (6, 8)).astype(np.float32)
    agc = ThermalAGC()
    np.testing.assert_allclose(agc.limits(kelvin), np.percentile(kelvin, [1, 99]))
    assert agc.apply(kelvin).dtype == np.uint8
    counts = rng.integers(0, 65536, (6, 10), dtype=np.uint16)
    view = counts[:, :8]
    np.testing.assert_array_equal(agc.apply(view), agc.apply(view.copy()))


def test_agc_rejects_other_inputs():
    with pytest.raises(TypeError, match="got int16"):
        ThermalAGC().apply(np.zeros((2, 2), np.int16))
    with pytest.raises(ValueError, match=r"single-channel HxW image; got shape \(2, 2, 3\)"):
        ThermalAGC().apply(np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(ValueError, match="empty image"):
        ThermalAGC().apply(np.zeros((0, 2), np.uint16))


def test_stretch_to_uint8_matches_float64_reference():
    counts = np.arange(0, 65536, 7, dtype=np.uint16).reshape(1, -1)
    out = stretch_to_uint8(counts, 20000.0, 40000.0)
    exact = (counts.astype(np.float64) - 20000.0) * 255.0 / 20000.0
    reference = np.rint(np.clip(exact, 0, 255))
    away_from_ties = np.abs(exact - np.floor(exact) - 0.5) > 1e-3
    np.testing.assert_array_equal(out[away_from_ties], reference[away_from_ties])
