"""The memory layouts of sensor_msgs/Image encodings, and reading a message's rows safely.

One `PixelFormat` (dtype, channels) per encoding whose pixels are plain arrays; `read_pixels`
checks a message's size fields (against a pixel cap too, before anything is read), skips row
padding by slicing and honours the byte order. The codec (`image_codec`) and the camera
encodings (`camera_encodings`: bayer, YUV) are built on it. No rclpy: any object with the
message's fields will do.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

from sosmaskfuse_core.settings import table

#: The default cap on width x height of a decoded image (the `max_input_pixels` setting).
DEFAULT_MAX_PIXELS: int = table.default("max_input_pixels")


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

#: The encodings whose pixels are plain arrays (names as in sensor_msgs/image_encodings.hpp).
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
        "rgb16": PixelFormat(_U16, 3),
        "bgr16": PixelFormat(_U16, 3),
    }
)


def pixel_format(encoding: str) -> PixelFormat:
    """Layout of ``encoding``; ValueError naming it if it is not supported."""
    fmt = ENCODINGS.get(encoding)
    if fmt is None:
        raise ValueError(unsupported(encoding))
    return fmt


def unsupported(encoding: object, supported: Iterable[str] | None = None) -> str:
    """The error text for an encoding that is not in `supported` (default: ENCODINGS)."""
    names = ", ".join(supported if supported is not None else ENCODINGS)
    return f"unsupported encoding {encoding!r}; supported: {names}"


def flat_bytes(data: Any) -> np.ndarray:
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


def check_size(width: int, height: int, max_pixels: int | None, name: str, what: str = "") -> None:
    """ImageDecodeError for a zero size or one above `max_pixels` (None: no cap)."""
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"{name}: empty image, width={width} height={height}")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageDecodeError(
            f"{name}: {what}{width}x{height} = {width * height} pixels is more than "
            f"max_input_pixels = {max_pixels}; not decoded"
        )


def read_pixels(
    msg: Any,
    fmt: PixelFormat,
    *,
    name: str,
    rows: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The pixels of an Image-like `msg` laid out as `fmt`: HxW, or HxWxC for C > 1.

    `rows` reads that many rows of `step` bytes instead of `height` (a planar layout such as
    NV21 has more rows than the image). A view on ``msg.data`` where possible, in native byte
    order. ImageDecodeError names the field that is wrong.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    check_size(width, height, max_pixels, name)
    rows = height if rows is None else rows
    row_bytes = width * fmt.bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f"{name}: step={step} is less than width*bytes_per_pixel = "
            f"{width}*{fmt.bytes_per_pixel} = {row_bytes} ({msg.encoding})"
        )
    flat = flat_bytes(msg.data)
    if flat.size < step * rows:
        what = "step*height" if rows == height else f"step*{rows} rows"
        raise ImageDecodeError(f"{name}: data has {flat.size} bytes, {what} = {step * rows}")
    data = flat[: step * rows].reshape(rows, step)[:, :row_bytes]
    wire_dtype = fmt.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = data.view(wire_dtype)
    if fmt.channels > 1:
        pixels = pixels.reshape(rows, width, fmt.channels)
    if not wire_dtype.isnative:
        pixels = pixels.astype(fmt.dtype)  # byte swap: the one unavoidable copy
    elif not pixels.flags.aligned:
        pixels = pixels.copy()  # odd step with multi-byte pixels
    return pixels
