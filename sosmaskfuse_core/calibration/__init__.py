"""Registering a thermal + visible rig: the homography from thermal to visible pixels.

Two ways to find it: a board seen by both cameras (`calibrate_target`), or many synchronised
frames of ordinary scenes (`calibrate_targetless`); both refuse with the reason rather than
return a poor homography (`CalibrationRefused`). `AlignmentCheck` measures, cheaply, how far a
registered pair is from aligned; `AlignmentWatch` keeps a running node's last readings and
judges them. `sources` reads frames from folders or a bag, `report` writes the node's
parameter file, the report and the overlays.
The command line is `sosmaskfuse_core.commands.calibrate`; docs/calibration.md has the figures.
"""

from .board import BOARD_KINDS, BoardSpec, Detection, detect_board
from .check import AlignmentCheck, AlignmentReading
from .geometry import Pose, corner_error, describe, overlap_error, rig_homography
from .report import write_all
from .result import Calibration, CalibrationRefused, FramePair, FrameVerdict
from .search import SearchSpace
from .sources import Frames, SourceError, from_bag, from_folders
from .target import calibrate_target
from .targetless import TargetlessOptions, calibrate_targetless
from .watch import AlignmentVerdict, AlignmentWatch

__all__ = [
    "BOARD_KINDS",
    "AlignmentCheck",
    "AlignmentReading",
    "AlignmentVerdict",
    "AlignmentWatch",
    "BoardSpec",
    "Calibration",
    "CalibrationRefused",
    "Detection",
    "FramePair",
    "FrameVerdict",
    "Frames",
    "Pose",
    "SearchSpace",
    "SourceError",
    "TargetlessOptions",
    "calibrate_target",
    "calibrate_targetless",
    "corner_error",
    "describe",
    "detect_board",
    "from_bag",
    "from_folders",
    "overlap_error",
    "rig_homography",
    "write_all",
]
