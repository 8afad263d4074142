"""Convert sensor_msgs/Image and CompressedImage messages to and from NumPy arrays.

Works on any object with the message's fields, so the same code serves rclpy's
``sensor_msgs.msg.Image`` (``data`` is an ``array.array('B')``) and the rosbags
dataclasses (``data`` is a ``numpy.uint8`` array). It never imports rclpy.

Decoding returns a *view* on the message buffer whenever the layout allows it:
row padding (``step > width * bytes_per_pixel``) is skipped by slicing, not by
copying. A copy is made only when it cannot be avoided: 16-bit or float data in
the non-native byte order, rows that would leave multi-byte pixels unaligned, or a
``data`` field that does not expose the buffer protocol (a plain list). The view is
read-only when the buffer is (``bytes``), so copy before writing into it.

Channel order is the message's own (``rgb8`` decodes to RGB); :func:`to_bgr` and
:func:`to_gray` turn any supported encoding into the OpenCV conventions.
``8UC1``/``8UC3`` carry no colour meaning; like cv_bridge we treat ``8UC3`` as BGR
(OpenCV's default order) when a colour conversion is asked for.
"""

from __future__ import annotations

import array
import re
import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Optional

import cv2
import numpy as np


class ImageDecodeError(ValueError):
    """A message cannot be turned into an array; the text says which field is wrong."""


@dataclass(frozen=True)
class PixelFormat:
    """Memory layout of one ``sensor_msgs/Image`` encoding."""

    dtype: np.dtype
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)
_F32 = np.dtype(np.float32)

#: The encodings this module reads and writes (names as in sensor_msgs/image_encodings.hpp).
ENCODINGS: Mapping[str, PixelFormat] = MappingProxyType(
    {
        "mono8": PixelFormat(_U8, 1),
        "8UC1": PixelFormat(_U8, 1),
        "mono16": PixelFormat(_U16, 1),
        "16UC1": PixelFormat(_U16, 1),
        "32FC1": PixelFormat(_F32, 1),
        "rgb8": PixelFormat(_U8, 3),
        "bgr8": PixelFormat(_U8, 3),
        "8UC3": PixelFormat(_U8, 3),
        "rgba8": PixelFormat(_U8, 4),
        "bgra8": PixelFormat(_U8, 4),
    }
)

_TO_BGR: Mapping[str, Optional[int]] = MappingProxyType(
    {
        "mono8": cv2.COLOR_GRAY2BGR,
        "8UC1": cv2.COLOR_GRAY2BGR,
        "mono16": cv2.COLOR_GRAY2BGR,
        "16UC1": cv2.COLOR_GRAY2BGR,
        "32FC1": cv2.COLOR_GRAY2BGR,
        "rgb8": cv2.COLOR_RGB2BGR,
        "bgr8": None,
        "8UC3": None,
        "rgba8": cv2.COLOR_RGBA2BGR,
        "bgra8": cv2.COLOR_BGRA2BGR,
    }
)

_TO_GRAY: Mapping[str, Optional[int]] = MappingProxyType(
    {
        "mono8": None,
        "8UC1": None,
        "mono16": None,
        "16UC1": None,
        "32FC1": None,
        "rgb8": cv2.COLOR_RGB2GRAY,
        "bgr8": cv2.COLOR_BGR2GRAY,
        "8UC3": cv2.COLOR_BGR2GRAY,
        "rgba8": cv2.COLOR_RGBA2GRAY,
        "bgra8": cv2.COLOR_BGRA2GRAY,
    }
)

_HOST_IS_BIGENDIAN = sys.byteorder == "big"


def pixel_format(encoding: str) -> PixelFormat:
    """Layout of ``encoding``; ValueError naming it if it is not supported."""
    fmt = ENCODINGS.get(encoding)
    if fmt is None:
        raise ValueError(_unsupported(encoding))
    return fmt


def _unsupported(encoding: object) -> str:
    return f"unsupported encoding {encoding!r}; supported: {', '.join(ENCODINGS)}"


# --------------------------------------------------------------------------- decoding


def _flat_bytes(data: Any) -> np.ndarray:
    """``data`` as a 1-D uint8 array, sharing its memory when it exposes a buffer."""
    if isinstance(data, np.ndarray):
        return (
            data.reshape(-1).view(np.uint8)
            if data.flags.c_contiguous
            else np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        )
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # e.g. a list of ints in a hand-built message
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_array(msg: Any, *, name: str = "image") -> np.ndarray:
    """Pixels of a ``sensor_msgs/Image``-like ``msg`` as HxW (one channel) or HxWxC.

    ``name`` prefixes error messages (e.g. ``"thermal image"``). The result is a view
    on ``msg.data`` where possible (see the module docstring), in native byte order.
    Raises :class:`ImageDecodeError` for an unsupported encoding, zero width or
    height, ``step`` shorter than a row, ``data`` shorter than ``step * height``, or a
    ``32FC1`` image holding NaN or infinity.
    """
    encoding = msg.encoding
    fmt = ENCODINGS.get(encoding)
    if fmt is None:
        raise ImageDecodeError(f"{name}: {_unsupported(encoding)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"{name}: empty image, width={width} height={height}")
    row_bytes = width * fmt.bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f"{name}: step={step} is less than width*bytes_per_pixel = "
            f"{width}*{fmt.bytes_per_pixel} = {row_bytes} ({encoding})"
        )
    flat = _flat_bytes(msg.data)
    if flat.size < step * height:
        raise ImageDecodeError(
            f"{name}: data has {flat.size} bytes, step*height = {step * height}"
        )

    rows = flat[: step * height].reshape(height, step)[:, :row_bytes]
    wire_dtype = fmt.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = rows.view(wire_dtype)
    if fmt.channels > 1:
        pixels = pixels.reshape(height, width, fmt.channels)
    if not wire_dtype.isnative:
        pixels = pixels.astype(fmt.dtype)  # byte swap: the one unavoidable copy
    elif not pixels.flags.aligned:
        pixels = pixels.copy()  # odd step with multi-byte pixels
    if fmt.dtype.kind == "f" and not np.isfinite(pixels).all():
        bad = int(pixels.size - np.count_nonzero(np.isfinite(pixels)))
        raise ImageDecodeError(f"{name}: {encoding} image holds {bad} NaN/inf pixels")
    return pixels


def to_bgr(image: np.ndarray, encoding: str) -> np.ndarray:
    """``image`` (decoded with ``encoding``) as HxWx3 BGR, same dtype; no copy for bgr8/8UC3."""
    pixel_format(encoding)
    code = _TO_BGR[encoding]
    return image if code is None else cv2.cvtColor(image, code)


def to_gray(image: np.ndarray, encoding: str) -> np.ndarray:
    """``image`` (decoded with ``encoding``) as HxW single channel; no copy for mono encodings."""
    pixel_format(encoding)
    code = _TO_GRAY[encoding]
    if code is None:
        return image.reshape(image.shape[:2])
    return cv2.cvtColor(image, code)


#: Channel index of (B, G, R) in each colour encoding.
_BGR_INDEX: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "bgr8": (0, 1, 2),
        "8UC3": (0, 1, 2),
        "bgra8": (0, 1, 2),
        "rgb8": (2, 1, 0),
        "rgba8": (2, 1, 0),
    }
)
#: PIL's convert('L'): L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16
#: (ITU-R 601, 16.16 fixed point).
LUMA_WEIGHTS_BGR = (7471, 38470, 19595)


def to_luma(image: np.ndarray, encoding: str) -> np.ndarray:
    """8-bit luma (HxW uint8) of an 8-bit image, with PIL's integer formula.

    The reference reads its fusion inputs with ``convert('L')``. Mono images pass through.
    """
    pixel_format(encoding)
    if image.ndim == 2 or image.shape[2] == 1:
        return image.reshape(image.shape[:2])
    b, g, r = (image[:, :, c].astype(np.uint32) for c in _BGR_INDEX[encoding])
    wb, wg, wr = LUMA_WEIGHTS_BGR
    return ((b * wb + g * wg + r * wr + 0x8000) >> 16).astype(np.uint8)


# --------------------------------------------------------------------------- encoding


class ImageFields(NamedTuple):
    """Values for the fields of a ``sensor_msgs/Image`` (the header excepted).

    The names match the message, so ``RosbagsImage(header=h, **fields._asdict())``
    builds a rosbags message; for rclpy use :func:`fill_image_msg`, which is fast.
    """

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray  # 1-D uint8, C order, no row padding


def array_to_image_fields(image: np.ndarray, encoding: str) -> ImageFields:
    """Describe ``image`` (HxW or HxWxC) as the fields of an Image with ``encoding``.

    ``data`` shares memory with ``image`` when it is C-contiguous and in native byte
    order; ``is_bigendian`` is the host's order. ValueError if the array's dtype or
    shape does not fit the encoding.
    """
    fmt = pixel_format(encoding)
    image = np.asarray(image)
    if image.dtype.kind != fmt.dtype.kind or image.dtype.itemsize != fmt.dtype.itemsize:
        raise ValueError(f"{encoding} needs dtype {fmt.dtype}, got {image.dtype}")
    shape_ok = (image.ndim == 2 and fmt.channels == 1) or (
        image.ndim == 3 and image.shape[2] == fmt.channels
    )
    if not shape_ok:
        want = "HxW" if fmt.channels == 1 else f"HxWx{fmt.channels}"
        raise ValueError(f"{encoding} needs a {want} array, got shape {image.shape}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"cannot encode an empty image of shape {image.shape}")
    if not image.dtype.isnative:
        image = image.astype(fmt.dtype)
    data = np.ascontiguousarray(image).reshape(-1).view(np.uint8)
    return ImageFields(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(_HOST_IS_BIGENDIAN),
        step=width * fmt.bytes_per_pixel,
        data=data,
    )


def fill_image_msg(msg: Any, image: np.ndarray, encoding: str, header: Any = None) -> Any:
    """Write ``image`` into ``msg`` (rclpy or rosbags Image) and return ``msg``.

    If ``msg.data`` is an ``array.array`` (rclpy) the pixels are copied once into a
    new ``array.array('B')`` -- the fastest assignment rclpy's field setter accepts,
    and one that stays fast with ``ROS_PYTHON_CHECK_FIELDS=1``. Otherwise (rosbags)
    ``msg.data`` becomes the uint8 array of :func:`array_to_image_fields`, which may
    share memory with ``image``. ``header`` is assigned when given.
    """
    fields = array_to_image_fields(image, encoding)
    if header is not None:
        msg.header = header
    msg.height = fields.height
    msg.width = fields.width
    msg.encoding = fields.encoding
    msg.is_bigendian = fields.is_bigendian
    msg.step = fields.step
    msg.data = _as_byte_array(fields.data) if isinstance(msg.data, array.array) else fields.data
    return msg


def _as_byte_array(data: np.ndarray) -> array.array:
    out = array.array("B")
    out.frombytes(memoryview(data))
    return out


# --------------------------------------------------------------------------- compressed

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


def compressed_to_array(msg: Any, *, name: str = "compressed image") -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage``-like ``msg`` (PNG or JPEG).

    Returns what ``cv2.imdecode(..., IMREAD_UNCHANGED)`` gives: HxW for grey (uint8,
    or uint16 for 16-bit PNG), HxWx3 BGR or HxWx4 BGRA. An empty ``format`` is
    accepted (the codec is read from the bytes). Raises :class:`ImageDecodeError`.
    """
    compressed_codec(msg.format, name=name)
    buf = _flat_bytes(msg.data)
    if buf.size == 0:
        raise ImageDecodeError(f"{name}: data is empty")
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageDecodeError(
            f"{name}: OpenCV could not decode {buf.size} bytes as {msg.format!r}"
        )
    return image


class CompressedFields(NamedTuple):
    """Values for the fields of a ``sensor_msgs/CompressedImage`` (the header excepted)."""

    format: str
    data: np.ndarray  # 1-D uint8


def _opencv_encoding(image: np.ndarray) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype == np.uint16 and channels == 1:
        return "mono16"
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
    encoding = _opencv_encoding(image)
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
    msg.data = _as_byte_array(fields.data) if isinstance(msg.data, array.array) else fields.data
    return msg


# --------------------------------------------------------------------------- either kind


def message_to_array(msg: Any, *, name: str = "image") -> tuple[np.ndarray, str]:
    """Pixels and encoding of an Image- or CompressedImage-like ``msg`` (told apart by ``format``).

    An Image decodes as :func:`image_to_array` with its own encoding; a compressed image as
    :func:`compressed_to_array`, in OpenCV's order, with the encoding that names the result
    (mono8, mono16, bgr8 or bgra8). Raises :class:`ImageDecodeError`.
    """
    if not hasattr(msg, "format"):
        return image_to_array(msg, name=name), msg.encoding
    image = compressed_to_array(msg, name=name)
    try:
        return image, _opencv_encoding(image)
    except ValueError:
        raise ImageDecodeError(
            f"{name}: decoded to a {image.dtype} array of shape {image.shape}, "
            "which no supported encoding names"
        ) from None
