"""Raw camera layouts drivers publish (bayer mosaics, packed YUV 4:2:2, NV21) decoded to BGR.

These encodings are not arrays of pixels: a bayer image holds one colour per pixel, YUV 4:2:2
shares the chroma of two pixels, NV21 stores a luma plane and a half-size VU plane. They are
converted once, when the message is decoded, to ``bgr8`` (``bgr16`` for 16-bit bayer), as
cv_bridge converts them, so everything downstream sees ordinary images:

==================================  =================================================
encoding                            decoded as
==================================  =================================================
``bayer_rggb8`` ``bayer_bggr8``     ``bgr8``, bilinear demosaicing (OpenCV)
``bayer_gbrg8`` ``bayer_grbg8``
``bayer_*16``                       ``bgr16``
``yuv422`` / ``uyvy``               ``bgr8`` (U Y0 V Y1, ITU-R BT.601, video range)
``yuv422_yuy2`` / ``yuyv``          ``bgr8`` (Y0 U Y1 V)
``nv21``                            ``bgr8`` (Y plane, then interleaved V U at half size)
==================================  =================================================

The pattern names follow sensor_msgs (the colours of the top-left 2x2 block, row by row);
OpenCV names the same mosaics by their second row and column, hence e.g. RGGB ->
``COLOR_BayerBG2BGR``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import cv2
import numpy as np

from .pixels import DEFAULT_MAX_PIXELS, ImageDecodeError, PixelFormat, check_size, read_pixels


@dataclass(frozen=True)
class CameraLayout:
    """How one raw camera encoding is stored and turned into BGR."""

    stored: PixelFormat  # the layout of one row of the message
    code: int  # the cv2.cvtColor code to BGR
    result: str  # the encoding of the decoded image
    even: tuple[bool, bool] = (False, False)  # (width, height) must be even
    planar_rows: float = 1.0  # rows stored per image row (NV21: 1.5)


_U8_1 = PixelFormat(np.dtype(np.uint8), 1)
_U16_1 = PixelFormat(np.dtype(np.uint16), 1)
_U8_2 = PixelFormat(np.dtype(np.uint8), 2)

_BAYER = {
    "rggb": cv2.COLOR_BayerBG2BGR,
    "bggr": cv2.COLOR_BayerRG2BGR,
    "gbrg": cv2.COLOR_BayerGR2BGR,
    "grbg": cv2.COLOR_BayerGB2BGR,
}

#: The raw camera encodings, each with its stored layout and conversion.
CAMERA_ENCODINGS: Mapping[str, CameraLayout] = MappingProxyType(
    {
        **{f"bayer_{p}8": CameraLayout(_U8_1, code, "bgr8") for p, code in _BAYER.items()},
        **{f"bayer_{p}16": CameraLayout(_U16_1, code, "bgr16") for p, code in _BAYER.items()},
        "yuv422": CameraLayout(_U8_2, cv2.COLOR_YUV2BGR_UYVY, "bgr8", even=(True, False)),
        "uyvy": CameraLayout(_U8_2, cv2.COLOR_YUV2BGR_UYVY, "bgr8", even=(True, False)),
        "yuv422_yuy2": CameraLayout(_U8_2, cv2.COLOR_YUV2BGR_YUY2, "bgr8", even=(True, False)),
        "yuyv": CameraLayout(_U8_2, cv2.COLOR_YUV2BGR_YUY2, "bgr8", even=(True, False)),
        "nv21": CameraLayout(
            _U8_1, cv2.COLOR_YUV2BGR_NV21, "bgr8", even=(True, True), planar_rows=1.5
        ),
    }
)


def decode_camera(
    msg: Any, *, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, str]:
    """(BGR image, its encoding) of an Image-like `msg` in one of CAMERA_ENCODINGS.

    ImageDecodeError names a size the layout cannot have (odd width for YUV 4:2:2, odd sizes
    for NV21, a mosaic smaller than 2x2) and the usual field problems.
    """
    layout = CAMERA_ENCODINGS[msg.encoding]
    width, height = int(msg.width), int(msg.height)
    check_size(width, height, max_pixels, name)
    for size, even, what in ((width, layout.even[0], "width"), (height, layout.even[1], "height")):
        if even and size % 2:
            raise ImageDecodeError(f"{name}: {msg.encoding} needs an even {what}, got {size}")
    if layout.stored.channels == 1 and layout.planar_rows == 1.0 and min(width, height) < 2:
        raise ImageDecodeError(f"{name}: a bayer mosaic needs at least 2x2 pixels")
    rows = int(height * layout.planar_rows)
    stored = read_pixels(msg, layout.stored, name=name, rows=rows, max_pixels=max_pixels)
    return cv2.cvtColor(np.ascontiguousarray(stored), layout.code), layout.result
