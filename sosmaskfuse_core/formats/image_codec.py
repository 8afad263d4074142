"""Convert sensor_msgs/Image and CompressedImage messages to and from NumPy arrays.

The one codec the node and the bag tool share: `message_to_array` decodes any supported
message (the array encodings of `pixels.ENCODINGS`, the raw camera layouts of
`camera_encodings` such as bayer and YUV 4:2:2, and PNG/JPEG in `compressed`), refusing an
image above a pixel cap before its pixels are decoded.

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
import sys
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Optional

import cv2
import numpy as np

from .camera_encodings import CAMERA_ENCODINGS, decode_camera
from .compressed import (  # noqa: F401  (re-exported: the codec is where callers find them)
    CompressedFields,
    array_to_compressed,
    as_byte_array,
    compressed_codec,
    compressed_size,
    compressed_to_array,
    fill_compressed_msg,
    opencv_encoding,
)
from .pixels import (  # noqa: F401
    DEFAULT_MAX_PIXELS,
    ENCODINGS,
    ImageDecodeError,
    PixelFormat,
    pixel_format,
    read_pixels,
    unsupported,
)

#: Every encoding `message_to_array` decodes from a sensor_msgs/Image.
SUPPORTED: tuple[str, ...] = (*ENCODINGS, *CAMERA_ENCODINGS)

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
        "rgb16": cv2.COLOR_RGB2BGR,
        "bgr16": None,
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
        "rgb16": cv2.COLOR_RGB2GRAY,
        "bgr16": cv2.COLOR_BGR2GRAY,
    }
)

_HOST_IS_BIGENDIAN = sys.byteorder == "big"


# --------------------------------------------------------------------------- decoding


def image_to_array(
    msg: Any, *, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Pixels of a ``sensor_msgs/Image``-like ``msg`` as HxW (one channel) or HxWxC.

    ``name`` prefixes error messages (e.g. ``"thermal image"``). The result is a view
    on ``msg.data`` where possible (see the module docstring), in native byte order.
    Raises :class:`ImageDecodeError` for an unsupported encoding, zero width or
    height, more than `max_pixels` pixels (None: no cap), ``step`` shorter than a row,
    ``data`` shorter than ``step * height``, or a ``32FC1`` image holding NaN or infinity.
    The raw camera layouts (bayer, YUV) are decoded by :func:`message_to_array`.
    """
    encoding = msg.encoding
    fmt = ENCODINGS.get(encoding)
    if fmt is None:
        raise ImageDecodeError(f"{name}: {unsupported(encoding, SUPPORTED)}")
    pixels = read_pixels(msg, fmt, name=name, max_pixels=max_pixels)
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


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An 8-bit image: uint8 as it is, 16-bit data taken as full range (0..65535 -> 0..255).

    For display-range 16-bit images (a visible camera's mono16, rgb16 or 16-bit bayer), not
    for raw thermal counts, which go through the gain control (`ThermalAGC`).
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype != np.uint16:
        raise ValueError(f"expected a uint8 or uint16 image, got {image.dtype}")
    return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


#: Channel index of (B, G, R) in each colour encoding.
_BGR_INDEX: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "bgr8": (0, 1, 2),
        "8UC3": (0, 1, 2),
        "bgra8": (0, 1, 2),
        "rgb8": (2, 1, 0),
        "rgba8": (2, 1, 0),
        "rgb16": (2, 1, 0),
        "bgr16": (0, 1, 2),
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
    msg.data = as_byte_array(fields.data) if isinstance(msg.data, array.array) else fields.data
    return msg


# --------------------------------------------------------------------------- either kind


def message_to_array(
    msg: Any, *, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, str]:
    """Pixels and encoding of an Image- or CompressedImage-like ``msg`` (told apart by ``format``).

    An Image in one of ENCODINGS decodes as :func:`image_to_array` with its own encoding; a raw
    camera layout (bayer, YUV 4:2:2, NV21) is converted to ``bgr8`` (``bgr16``); a compressed
    image decodes as :func:`compressed_to_array`, in OpenCV's order, with the encoding that
    names the result (mono8, mono16, bgr8 or bgra8). Every image above `max_pixels` pixels is
    refused before its pixels are decoded. Raises :class:`ImageDecodeError`.
    """
    if not hasattr(msg, "format"):
        if msg.encoding in CAMERA_ENCODINGS:
            return decode_camera(msg, name=name, max_pixels=max_pixels)
        return image_to_array(msg, name=name, max_pixels=max_pixels), msg.encoding
    image = compressed_to_array(msg, name=name, max_pixels=max_pixels)
    try:
        return image, opencv_encoding(image)
    except ValueError:
        raise ImageDecodeError(
            f"{name}: decoded to a {image.dtype} array of shape {image.shape}, "
            "which no supported encoding names"
        ) from None
