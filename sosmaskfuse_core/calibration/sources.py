"""Frames to calibrate from: two folders paired by file stem, or two image topics of a bag.

Both give `FramePair`s of 8-bit gray images (16-bit thermal counts through the gain control,
colour through luma, as the node prepares them) and a `FrameVerdict` for every file or message
that could not be used. A bag's messages are decoded by `formats.image_codec` and paired by
`formats.approx_sync` with the node's ApproximateTime rules, as `sosmaskfuse bag` pairs them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sosmaskfuse_core.formats.approx_sync import ApproximateTimeSync
from sosmaskfuse_core.formats.image_codec import ImageDecodeError, message_to_array
from sosmaskfuse_core.formats.image_files import ImageReadError, pair_by_stem, read_image
from sosmaskfuse_core.pipeline.frames import FramePreparer
from sosmaskfuse_core.settings import table

from .result import FramePair, FrameVerdict

_PREPARER = FramePreparer(gray_visible=True)  # the node's gain control and luma


class SourceError(ValueError):
    """The frames cannot be read at all: a missing folder or bag, a wrong topic."""


@dataclass
class Frames:
    """The pairs read, and what was left out (file or message, reason)."""

    pairs: list[FramePair] = field(default_factory=list)
    skipped: list[FrameVerdict] = field(default_factory=list)
    description: str = ""


def gray8(image: np.ndarray, encoding: str, role: str) -> np.ndarray:
    """A decoded frame as 8-bit gray, as the node prepares it (thermal counts through the AGC)."""
    if role == "thermal":
        out = _PREPARER.thermal(image, encoding)
        return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY) if out.ndim == 3 else out
    return _PREPARER.visible(image, encoding)


def _spread(n: int, limit: int | None) -> list[int]:
    if limit is None or n <= limit:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, limit).round().astype(int).tolist()))


def from_folders(
    ir_dir: str | os.PathLike, vis_dir: str | os.PathLike, limit: int | None = None
) -> Frames:
    """The pairs of two folders matched by file stem (at most `limit`, evenly spread).

    SourceError for a missing folder or when no stem is in both.
    """
    try:
        pairing = pair_by_stem(ir_dir, vis_dir, names=("--ir", "--vis"))
    except NotADirectoryError as exc:
        raise SourceError(str(exc)) from None
    frames = Frames(description=f"{ir_dir} + {vis_dir}")
    frames.skipped += [FrameVerdict(str(p), False, reason) for p, reason in pairing.unmatched]
    if not pairing.pairs:
        raise SourceError(f"no file stem is in both {ir_dir} and {vis_dir}")
    for index in _spread(len(pairing.pairs), limit):
        stem, (ir_path, vis_path) = pairing.pairs[index]
        try:
            ir = read_image(ir_path, cv2.IMREAD_UNCHANGED)
            vis = read_image(vis_path, cv2.IMREAD_COLOR)
            encoding = {np.dtype(np.uint16): "mono16", np.dtype(np.float32): "32FC1"}.get(
                ir.dtype, "mono8" if ir.ndim == 2 else ("bgra8" if ir.shape[2] == 4 else "bgr8")
            )
            pair = FramePair(stem, gray8(ir, encoding, "thermal"), gray8(vis, "bgr8", "visible"))
        except (ImageReadError, ValueError) as exc:
            frames.skipped.append(FrameVerdict(stem, False, str(exc)))
            continue
        frames.pairs.append(pair)
    return frames


def from_bag(
    bag: str | os.PathLike,
    thermal_topic: str,
    visible_topic: str,
    *,
    limit: int | None = None,
    sync_slop: float = table.default("sync_slop"),
    sync_queue_size: int = table.default("sync_queue_size"),
) -> Frames:
    """The pairs of two image topics of a rosbag2 bag (at most `limit`, evenly spread).

    Messages are paired by header stamp in log-time order as the node pairs them; only the
    pairs kept are decoded. A message that cannot be decoded is skipped with its reason.
    SourceError for a missing bag or topic.
    """
    # rosbags only here: what reads image folders, and the node's alignment check, run without it
    from rosbags.rosbag2 import ReaderError
    from rosbags.serde import SerdeError

    from sosmaskfuse_core.formats.rosbag_io import (
        IMAGE_TYPES,
        format_time,
        open_bag,
        stamp_ns,
        typestore,
    )

    path = Path(bag)
    if not path.exists():
        raise SourceError(f"{path}: no such bag")
    frames = Frames(description=f"{path} ({thermal_topic} + {visible_topic})")
    store = typestore()
    try:
        with open_bag(path) as reader:
            topics = reader.topics
            for role, topic in (("thermal", thermal_topic), ("visible", visible_topic)):
                info = topics.get(topic)
                if info is None:
                    images = sorted(t for t, i in topics.items() if i.msgtype in IMAGE_TYPES)
                    raise SourceError(
                        f"{path}: no {role} topic {topic}; image topics: "
                        + (", ".join(images) or "none")
                    )
                if info.msgtype not in IMAGE_TYPES:
                    raise SourceError(f"{path}: {topic} holds {info.msgtype}, not an image")
            count = min(topics[thermal_topic].msgcount, topics[visible_topic].msgcount)
            stride = max(1, count // limit) if limit else 1
            roles = {c.id: 0 for c in topics[thermal_topic].connections}
            roles.update({c.id: 1 for c in topics[visible_topic].connections})
            sync: ApproximateTimeSync[Any] = ApproximateTimeSync(2, sync_queue_size, sync_slop)
            conns = [c for c in reader.connections if c.id in roles]
            matched = 0
            for conn, log_time, raw in reader.messages(connections=conns):
                try:
                    msg: Any = store.deserialize_cdr(raw, conn.msgtype)
                    stamp = stamp_ns(msg.header)
                except (SerdeError, ValueError) as exc:
                    frames.skipped.append(
                        FrameVerdict(f"{conn.topic} at {format_time(log_time)}", False, str(exc))
                    )
                    continue
                pair = sync.add(roles[conn.id], msg, stamp)
                if pair is None:
                    continue
                matched += 1
                if (matched - 1) % stride or (limit and len(frames.pairs) >= limit):
                    continue
                name = format_time(stamp_ns(pair[1].header))
                try:
                    grays: list[np.ndarray] = []
                    for m, role in zip(pair, ("thermal", "visible")):
                        image, encoding = message_to_array(m, name=f"{role} image")
                        grays.append(gray8(image, encoding, role))
                except (ImageDecodeError, ValueError) as exc:
                    frames.skipped.append(FrameVerdict(name, False, str(exc)))
                    continue
                frames.pairs.append(FramePair(name, grays[0], grays[1]))
    except ReaderError as exc:
        raise SourceError(f"{path}: {exc}") from None
    if not frames.pairs:
        raise SourceError(
            f"{path}: no {thermal_topic} / {visible_topic} pairs within {sync_slop} s"
        )
    return frames
