"""sensor_msgs/CompressedImage (PNG, JPEG) to and from arrays, sized from the header first.

A compressed message says nothing about its size, and OpenCV cannot tell it before it
decodes: 57 bytes of PNG can claim 40000 x 30000 pixels (OpenCV then raises), and 389 KB of
PNG can hold 400 million zeros that it would decode in full. `compressed_size` therefore reads
the width and height from the PNG IHDR chunk or the JPEG frame header (SOF) and
`compressed_to_array` refuses an image above the pixel cap before decoding a byte of it. Only
PNG and JPEG data are accepted (what image_transport's compressed transport sends).
"""

from __future__ import annotations

import array
import re
import struct
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Optional

import cv2
import numpy as np

from .pixels import DEFAULT_MAX_PIXELS, ImageDecodeError, check_size, flat_bytes

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, lossless, ...); not DHT C4, JPG C8, DAC CC.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and the restart markers

_CODEC_WORDS: Mapping[str, str] = MappingProxyType({"png": "png", "jpeg": "jpeg", "jpg": "jpeg"})


def compressed_codec(fmt: str, *, name: str = "compressed image") -> Optional[str]:
    """``'png'`` or ``'jpeg'`` named by a CompressedImage ``format``; None if it names none.

    Accepts plain names (``"png"``, ``"jpeg"``) and image_transport's long form
    (``"mono16; png compressed"``, ``"rgb8; jpeg compressed bgr8"``). The
    ``compressedDepth`` transport (an extra header before the PNG) is rejected.
    """
    lowered = fmt.lower()
    if "compresseddepth" in lowered:
        raise ImageDecodeError(f"{name}: format {fmt!r}: compressedDepth is not supported")
    words = [w for w in re.split(r"[;\s]+", lowered) if w]
    codecs = {_CODEC_WORDS[w] for w in words if w in _CODEC_WORDS}
    if len(codecs) > 1:
        raise ImageDecodeError(f"{name}: format {fmt!r} names several codecs")
    if not codecs and words:
        raise ImageDecodeError(f"{name}: format {fmt!r} names no supported codec (png, jpeg)")
    return codecs.pop() if codecs else None


def sniff_codec(data: bytes | np.ndarray) -> Optional[str]:
    """``'png'`` or ``'jpeg'`` from the signature that `data` starts with; None if neither."""
    head = bytes(flat_bytes(data)[:8])
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    return None


def compressed_size(
    data: bytes | np.ndarray, *, name: str = "compressed image", fmt: str = ""
) -> tuple[str, int, int]:
    """(codec, width, height) read from the PNG or JPEG header of `data`, without decoding.

    ImageDecodeError when the data is neither PNG nor JPEG, or its header is cut short.
    """
    head = bytes(flat_bytes(data).data[: 1 << 16])
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise ImageDecodeError(f"{name}: PNG data without an IHDR header")
        width, height = struct.unpack(">II", head[16:24])
        return "png", width, height
    if head.startswith(b"\xff\xd8"):
        return ("jpeg", *_jpeg_size(flat_bytes(data), name))
    raise ImageDecodeError(
        f"{name}: could not decode {flat_bytes(data).size} bytes as {fmt!r}: "
        "the data is neither PNG nor JPEG"
    )


def _jpeg_size(data: np.ndarray, name: str) -> tuple[int, int]:
    """Width and height from the first JPEG start-of-frame segment."""
    buf = data.data
    i, n = 2, len(buf)
    while i + 4 <= n:
        if buf[i] != 0xFF:
            raise ImageDecodeError(f"{name}: JPEG data has no marker at byte {i}")
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header came first
            break
        length = (buf[i + 2] << 8) | buf[i + 3]
        if marker in _JPEG_SOF:
            if i + 9 > n:
                break
            height = (buf[i + 5] << 8) | buf[i + 6]
            width = (buf[i + 7] << 8) | buf[i + 8]
            return width, height
        i += 2 + length
    raise ImageDecodeError(f"{name}: JPEG data without a frame header (SOF)")


def compressed_to_array(
    msg: Any, *, name: str = "compressed image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage``-like ``msg`` (PNG or JPEG).

    Returns what ``cv2.imdecode(..., IMREAD_UNCHANGED)`` gives: HxW for grey (uint8,
    or uint16 for 16-bit PNG), HxWx3 BGR or HxWx4 BGRA. An empty ``format`` is
    accepted (the codec is read from the bytes). The size in the header is checked against
    `max_pixels` (None: no cap) before decoding. Raises :class:`ImageDecodeError`.
    """
    compressed_codec(msg.format, name=name)
    buf = flat_bytes(msg.data)
    if buf.size == 0:
        raise ImageDecodeError(f"{name}: data is empty")
    codec, width, height = compressed_size(buf, name=name, fmt=msg.format)
    check_size(width, height, max_pixels, name, what=f"the {codec.upper()} header says ")
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV's own limits, corrupt streams
        message = str(exc).strip().splitlines()[-1]
        raise ImageDecodeError(f"{name}: OpenCV could not decode the {codec}: {message}") from None
    if image is None:
        raise ImageDecodeError(
            f"{name}: OpenCV could not decode {buf.size} bytes as {msg.format!r}"
        )
    return image


class CompressedFields(NamedTuple):
    """Values for the fields of a ``sensor_msgs/CompressedImage`` (the header excepted)."""

    format: str
    data: np.ndarray  # 1-D uint8


def opencv_encoding(image: np.ndarray) -> str:
    """The encoding naming an array in OpenCV's order (mono8, mono16, bgr8, bgra8, bgr16)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype == np.uint16 and channels in (1, 3):
        return "mono16" if channels == 1 else "bgr16"
    if image.dtype == np.uint8:
        names = {1: "mono8", 3: "bgr8", 4: "bgra8"}
        if channels in names:
            return names[channels]
    raise ValueError(f"cannot compress an array of dtype {image.dtype} and shape {image.shape}")


def array_to_compressed(
    image: np.ndarray, fmt: str = "png", *, jpeg_quality: int = 90, png_level: int = 3
) -> CompressedFields:
    """Compress ``image`` (OpenCV order: HxW grey, HxWx3 BGR, HxWx4 BGRA) as PNG or JPEG.

    16-bit grey needs PNG. ``format`` follows image_transport, e.g.
    ``"bgr8; jpeg compressed bgr8"`` or ``"mono16; png compressed"``.
    """
    codec = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}.get(fmt.lower())
    if codec is None:
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    image = np.asarray(image)
    encoding = opencv_encoding(image)
    if encoding == "bgr16":
        raise ValueError(
            f"cannot compress an array of dtype {image.dtype} and shape {image.shape}"
        )
    if codec == "jpeg" and encoding in ("mono16", "bgra8"):
        raise ValueError(f"JPEG cannot hold {encoding}; use png")
    if codec == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)]
    ok, buf = cv2.imencode("." + ("jpg" if codec == "jpeg" else "png"), image, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {encoding} image as {codec}")
    target = f" {encoding}" if encoding in ("bgr8", "bgra8") else ""
    return CompressedFields(format=f"{encoding}; {codec} compressed{target}", data=buf.reshape(-1))


def fill_compressed_msg(
    msg: Any, image: np.ndarray, fmt: str = "png", header: Any = None, **options: int
) -> Any:
    """Compress ``image`` into ``msg`` (rclpy or rosbags CompressedImage); returns ``msg``."""
    fields = array_to_compressed(image, fmt, **options)
    if header is not None:
        msg.header = header
    msg.format = fields.format
    msg.data = as_byte_array(fields.data) if isinstance(msg.data, array.array) else fields.data
    return msg


def as_byte_array(data: np.ndarray) -> array.array:
    """`data` copied once into the array.array('B') that rclpy's data fields take fastest."""
    out = array.array("B")
    out.frombytes(data.data)
    return out
