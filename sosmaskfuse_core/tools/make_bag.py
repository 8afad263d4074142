"""Make a rosbag2 bag of thermal + visible camera topics from two videos or two image folders.

The command line is `sosmaskfuse_core.commands.make_bag`, which describes the bag's layout.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sosmaskfuse_core.formats.image_codec import (
    CompressedFields,
    ImageFields,
    array_to_compressed,
    array_to_image_fields,
)
from sosmaskfuse_core.formats.image_files import ImageReadError, pair_by_stem, read_image
from sosmaskfuse_core.formats.ros_names import check_topic_name
from sosmaskfuse_core.formats.rosbag_io import (
    COMPRESSED_IMAGE,
    IMAGE,
    NS_PER_SECOND,
    STORAGES,
    add_image_connection,
    closing_writer,
    make_header,
    qos_profile,
    typestore,
)
from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.thermal.agc import stretch_to_uint8

THERMAL_TOPIC = "/camera/thermal/image_raw"
VISIBLE_TOPIC = "/camera/visible/image_raw"
FRAME_IDS = ("thermal_optical_frame", "visible_optical_frame")
#: mono16 thermal: counts = MONO16_OFFSET + MONO16_GAIN * gray.
MONO16_OFFSET, MONO16_GAIN = 7000, 16
FOLDER_RATE = 10.0
THERMAL_ENCODINGS = ("mono8", "mono16")
VISIBLE_ENCODINGS = ("rgb8", "bgr8")


def gray_to_counts(gray: np.ndarray) -> np.ndarray:
    """8-bit gray -> plausible 16-bit thermal counts, 7000 + 16 * gray."""
    return (MONO16_OFFSET + MONO16_GAIN * gray.astype(np.uint16)).astype(np.uint16)


# --- frame sources -------------------------------------------------------------------------------


@dataclass
class FrameSource:
    """Synchronised frame pairs: (name, thermal gray uint8 or uint16, visible BGR uint8)."""

    description: str
    rate: float | None  # frames per second the source declares (videos); None for folders
    pairs: Iterator[tuple[str, np.ndarray, np.ndarray]]
    skipped: list[tuple[str, str]] = field(
        default_factory=list
    )  # (what, why), filled while iterating
    note: str = ""  # e.g. which video ended first, known once iteration ends
    count: int | None = None  # pairs to expect, where known beforehand (for progress)


def _thermal_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    return image


def video_frames(ir_video: Path, vis_video: Path) -> FrameSource:
    """Frame i of both videos, until one ends. ValueError if either cannot be opened."""
    caps = []
    for path in (ir_video, vis_video):
        cap = cv2.VideoCapture(str(path))
        if not path.is_file() or not cap.isOpened():
            raise ValueError(f"{path}: not a video OpenCV can open")
        caps.append(cap)
    rates = [cap.get(cv2.CAP_PROP_FPS) or 0.0 for cap in caps]
    rate = rates[1] or rates[0] or None
    if rates[0] and rates[1] and abs(rates[0] - rates[1]) > 0.01 * rates[1]:
        print(
            f"warning: {ir_video.name} runs at {rates[0]:g} fps, "
            f"{vis_video.name} at {rates[1]:g} fps; "
            "frames are paired by index",
            file=sys.stderr,
        )
    counts = [
        int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) for cap in caps
    ]  # container's figure: a hint only
    source = FrameSource(
        f"{ir_video} + {vis_video}", rate, iter(()), count=min(counts) if min(counts) > 0 else None
    )

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        index = 0
        try:
            while True:
                ok_ir, ir = caps[0].read()
                ok_vis, vis = caps[1].read()
                if not (ok_ir and ok_vis):
                    if ok_ir != ok_vis:
                        ended = ir_video if not ok_ir else vis_video
                        source.note = f"{ended.name} ended after {index} frames"
                    return
                yield f"frame {index}", _thermal_gray(ir), vis
                index += 1
        finally:
            for cap in caps:
                cap.release()

    source.pairs = pairs()
    return source


def folder_frames(ir_dir: Path, vis_dir: Path) -> FrameSource:
    """Pairs of files with one stem, in sorted order. NotADirectoryError for a missing folder."""
    pairing = pair_by_stem(ir_dir, vis_dir, names=("--ir-dir", "--vis-dir"))
    source = FrameSource(
        f"{ir_dir} + {vis_dir}",
        None,
        iter(()),
        skipped=[(str(path), reason) for path, reason in pairing.unmatched],
        count=len(pairing.pairs),
    )

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for stem, (ir_path, vis_path) in pairing.pairs:
            try:
                ir = _thermal_gray(read_image(ir_path, cv2.IMREAD_UNCHANGED))
                vis = read_image(vis_path, cv2.IMREAD_COLOR)
            except ImageReadError as exc:
                source.skipped.append((stem, str(exc)))
                continue
            if ir.dtype not in (np.uint8, np.uint16):
                source.skipped.append(
                    (stem, f"{ir_path.name}: {ir.dtype} pixels (8 or 16 bit expected)")
                )
                continue
            yield stem, ir, vis

    source.pairs = pairs()
    return source


# --- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagLayout:
    """Topics, frames and encodings of the bag to write."""

    thermal_topic: str = THERMAL_TOPIC
    visible_topic: str = VISIBLE_TOPIC
    frame_ids: tuple[str, str] = FRAME_IDS
    thermal_encoding: str = "mono8"
    visible_encoding: str = "rgb8"
    compressed: bool = False
    reliability: str = "reliable"
    storage: str = "mcap"

    def __post_init__(self) -> None:
        if self.thermal_encoding not in THERMAL_ENCODINGS:
            raise ValueError(
                f"thermal encoding {self.thermal_encoding!r}: "
                f"expected {' or '.join(THERMAL_ENCODINGS)}"
            )
        if self.visible_encoding not in VISIBLE_ENCODINGS:
            raise ValueError(
                f"visible encoding {self.visible_encoding!r}: "
                f"expected {' or '.join(VISIBLE_ENCODINGS)}"
            )
        if self.storage not in STORAGES:
            raise ValueError(f"storage {self.storage!r}: expected one of {', '.join(STORAGES)}")
        if self.reliability not in ("reliable", "best_effort"):
            raise ValueError(f"reliability {self.reliability!r}: expected reliable or best_effort")
        for role, topic in zip(("--thermal-topic", "--visible-topic"), self.topics()):
            check_topic_name(topic, role)
        if len(set(self.topics())) == 1:
            raise ValueError(f"--thermal-topic and --visible-topic are one topic ({topic})")

    def topics(self) -> tuple[str, str]:
        suffix = "/compressed" if self.compressed else ""
        return self.thermal_topic.rstrip("/") + suffix, self.visible_topic.rstrip("/") + suffix


@dataclass
class MakeBagReport:
    pairs: int = 0
    first_stamp: int = 0
    last_stamp: int = 0
    rate: float = 0.0
    topics: tuple[str, str] = ("", "")
    sizes: tuple[tuple[int, int], tuple[int, int]] = (
        (0, 0),
        (0, 0),
    )  # (width, height) of the first pair
    skipped: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


def thermal_pixels(gray: np.ndarray, encoding: str) -> np.ndarray:
    """The thermal frame in ``encoding`` (see the module docstring for the mono16 mapping)."""
    if encoding == "mono16":
        return gray if gray.dtype == np.uint16 else gray_to_counts(gray)
    return (
        gray if gray.dtype == np.uint8 else stretch_to_uint8(gray, 0.0, 65535.0)
    )  # the AGC's stretch: x / 257


def write_bag(
    out: Path,
    source: FrameSource,
    layout: BagLayout = BagLayout(),
    *,
    rate: float | None = None,
    start_ns: int | None = None,
    max_frames: int | None = None,
    progress: Progress | None = None,
) -> MakeBagReport:
    """Write the source's pairs as a new bag.

    ValueError if it has no pairs (nothing is created then).
    """
    rate = (source.rate or FOLDER_RATE) if rate is None else rate
    if not rate > 0:
        raise ValueError(f"rate {rate}: must be positive")
    start_ns = time.time_ns() if start_ns is None else int(start_ns)
    first = next(source.pairs, None)
    if first is None or max_frames == 0:
        raise ValueError(f"{source.description}: no frame pairs to write")
    store = typestore()
    report = MakeBagReport(rate=rate, topics=layout.topics())
    kind = COMPRESSED_IMAGE if layout.compressed else IMAGE
    cls = store.types[kind]
    qos = qos_profile(layout.reliability)

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        yield first
        yield from source.pairs

    with closing_writer(out, layout.storage) as writer:
        conns = [add_image_connection(writer, topic, kind, qos) for topic in report.topics]
        for index, (_, ir, vis) in enumerate(pairs()):
            if max_frames is not None and index >= max_frames:
                break
            stamp = start_ns + round(index * NS_PER_SECOND / rate)
            thermal = thermal_pixels(ir, layout.thermal_encoding)
            for conn, frame_id, image, encoding in (
                (conns[0], layout.frame_ids[0], thermal, layout.thermal_encoding),
                (conns[1], layout.frame_ids[1], vis, layout.visible_encoding),
            ):
                header = make_header(stamp, frame_id)
                fields: CompressedFields | ImageFields
                if layout.compressed:
                    fields = array_to_compressed(image, "png" if conn is conns[0] else "jpeg")
                else:
                    if encoding == "rgb8":
                        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                    fields = array_to_image_fields(image, encoding)
                writer.write(
                    conn, stamp, store.serialize_cdr(cls(header=header, **fields._asdict()), kind)
                )
            if index == 0:
                report.first_stamp = stamp
                report.sizes = ((ir.shape[1], ir.shape[0]), (vis.shape[1], vis.shape[0]))
            report.pairs, report.last_stamp = index + 1, stamp
            if progress is not None:
                progress.step()
    report.skipped = list(source.skipped)
    report.note = source.note
    return report


# --- command line --------------------------------------------------------------------------------
