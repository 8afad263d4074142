"""Offline tools: fuse a bag or folder as the node would, make bags from videos, synthetic street.

Library code only; each has its command line in `sosmaskfuse_core.commands`. The subpackage
`fleet` fuses many bags on Ray (imported on its own: Ray is optional).
"""

from .contact_sheet import contact_sheet
from .fuse_bag import BagFusion, BagJob, BagJobError, BagReport, common_namespace, fuse_bag
from .fuse_folder import FolderReport, fuse_folder, fuse_pair
from .make_bag import (
    BagLayout,
    FrameSource,
    MakeBagReport,
    folder_frames,
    gray_to_counts,
    video_frames,
    write_bag,
)
from .synthetic_scene import SceneFrame, SyntheticScene

__all__ = [
    "BagFusion",
    "BagJob",
    "BagJobError",
    "BagLayout",
    "BagReport",
    "FolderReport",
    "FrameSource",
    "MakeBagReport",
    "SceneFrame",
    "SyntheticScene",
    "common_namespace",
    "contact_sheet",
    "folder_frames",
    "fuse_bag",
    "fuse_folder",
    "fuse_pair",
    "gray_to_counts",
    "video_frames",
    "write_bag",
]
