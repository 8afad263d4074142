"""ROS data formats without ROS: image messages, ApproximateTime pairing, rosbag2 I/O, image files.

Image messages are converted to and from arrays.

Nothing here imports rclpy: the codec works on rclpy messages and rosbags dataclasses alike, the
synchroniser reproduces message_filters' rules, and bags are read and written with `rosbags`.
"""

from .approx_sync import (
    DEFAULT_QUEUE_SIZE,
    DEFAULT_SLOP,
    ApproximateTimeSync,
    slop_to_ns,
    stamp_to_ns,
)
from .image_codec import (
    ENCODINGS,
    ImageDecodeError,
    array_to_compressed,
    array_to_image_fields,
    fill_compressed_msg,
    fill_image_msg,
    image_to_array,
    message_to_array,
    to_bgr,
    to_gray,
    to_luma,
)
from .image_files import (
    ImageReadError,
    Pairing,
    list_images,
    pair_by_stem,
    read_image,
    write_image,
)
from .rosbag_io import (
    COMPRESSED_IMAGE,
    IMAGE,
    IMAGE_TYPES,
    STORAGES,
    closing_writer,
    copy_connection,
    qos_profile,
    typestore,
)

__all__ = [
    "COMPRESSED_IMAGE",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_SLOP",
    "ENCODINGS",
    "IMAGE",
    "IMAGE_TYPES",
    "STORAGES",
    "ApproximateTimeSync",
    "ImageDecodeError",
    "ImageReadError",
    "Pairing",
    "array_to_compressed",
    "array_to_image_fields",
    "closing_writer",
    "copy_connection",
    "fill_compressed_msg",
    "fill_image_msg",
    "image_to_array",
    "list_images",
    "message_to_array",
    "pair_by_stem",
    "qos_profile",
    "read_image",
    "slop_to_ns",
    "stamp_to_ns",
    "to_bgr",
    "to_gray",
    "to_luma",
    "typestore",
    "write_image",
]
