"""ROS data formats without ROS: image messages, ApproximateTime pairing, rosbag2 I/O, image files.

Also object boxes: VOC xml and YOLO txt annotation files, read by stem from a `BoxFolder`.

Image messages are converted to and from arrays by one codec (`image_codec`, built on `pixels`,
`camera_encodings` and `compressed`), which the node and the bag tool share.

Nothing here imports rclpy: the codec works on rclpy messages and rosbags dataclasses alike, the
synchroniser reproduces message_filters' rules, and bags are read and written with `rosbags`.
`rosbags` is imported only when a bag name is first used (`rosbag_io` loads on demand), so the
node and the folder job run where it is not installed.
"""

import importlib
from typing import Any

from .approx_sync import (
    DEFAULT_QUEUE_SIZE,
    DEFAULT_SLOP,
    ApproximateTimeSync,
    slop_to_ns,
    stamp_to_ns,
)
from .box_folder import BOX_FORMATS, BoxFolder
from .image_codec import (
    CAMERA_ENCODINGS,
    DEFAULT_MAX_PIXELS,
    ENCODINGS,
    SUPPORTED,
    ImageDecodeError,
    array_to_compressed,
    array_to_image_fields,
    compressed_size,
    fill_compressed_msg,
    fill_image_msg,
    image_to_array,
    message_to_array,
    to_bgr,
    to_gray,
    to_luma,
    to_uint8,
)
from .image_files import (
    ImageReadError,
    Pairing,
    list_images,
    pair_by_stem,
    read_image,
    write_image,
)
from .voc_boxes import Box, BoxFileError, read_voc
from .yolo_boxes import read_class_names, read_yolo

#: Names of `rosbag_io`, which imports `rosbags`: loaded when first asked for.
_ROSBAG_NAMES = (
    "COMPRESSED_IMAGE",
    "IMAGE",
    "IMAGE_TYPES",
    "STORAGES",
    "closing_writer",
    "copy_connection",
    "qos_profile",
    "typestore",
)


def __getattr__(name: str) -> Any:
    if name in _ROSBAG_NAMES:
        return getattr(importlib.import_module(".rosbag_io", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BOX_FORMATS",
    "CAMERA_ENCODINGS",
    "COMPRESSED_IMAGE",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_SLOP",
    "ENCODINGS",
    "IMAGE",
    "IMAGE_TYPES",
    "STORAGES",
    "SUPPORTED",
    "ApproximateTimeSync",
    "Box",
    "BoxFileError",
    "BoxFolder",
    "ImageDecodeError",
    "ImageReadError",
    "Pairing",
    "array_to_compressed",
    "array_to_image_fields",
    "closing_writer",
    "compressed_size",
    "copy_connection",
    "fill_compressed_msg",
    "fill_image_msg",
    "image_to_array",
    "list_images",
    "message_to_array",
    "pair_by_stem",
    "qos_profile",
    "read_class_names",
    "read_image",
    "read_voc",
    "read_yolo",
    "slop_to_ns",
    "stamp_to_ns",
    "to_bgr",
    "to_gray",
    "to_luma",
    "to_uint8",
    "typestore",
    "write_image",
]
