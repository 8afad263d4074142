"""`sosmaskfuse bag`: fuse the thermal/visible pairs of a rosbag2 recording into a new bag, as the fusion node would.

    sosmaskfuse bag --in IN_BAG --out OUT_BAG --thermal-topic T --visible-topic V [node parameters]

Reads a rosbag2 bag (a folder with metadata.yaml, or a single .mcap/.db3 file; MCAP or SQLite3
storage, found from the input) whose two topics hold sensor_msgs/Image or CompressedImage.
Messages are taken in bag (log-time, i.e. receive-time) order and paired by their header stamps
with message_filters' ApproximateTime rules (--sync-queue-size, --sync-slop), the way the node
pairs them live; pairs are fused in batches (--batch-size; pairs of one size share a pass).

The new bag (--out-storage mcap|sqlite3, default the input's) holds every input topic copied
byte for byte, with its type, definition, type hash and offered QoS profiles, plus

    <namespace>/fused_image   sensor_msgs/Image, mono8 (bgr8 with --color-output)
    <namespace>/sos_mask      sensor_msgs/Image, mono8 (left out with --no-mask)

stamped with the visible frame's header and written at the visible message's log time. The
namespace is --output-namespace, by default the longest namespace the two input topics share:
/camera/thermal/image_raw + /camera/visible/image_raw -> /camera/fused_image, which is where a
node pushed into /camera (its inputs remapped from thermal/image_raw and visible/image_raw)
publishes. Topics with no namespace in common give /fused_image and /sos_mask.

A message that cannot be decoded (bad CDR, unknown encoding, truncated pixels) is reported with
its topic and time and skipped; a pair that cannot be fused is reported the same way. Both make
the exit code 1. Frames left without a partner are normal and only counted. Ctrl-C (or an error)
stops the run with a valid, closed bag of what was done (exit code 130 after Ctrl-C).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError, Writer, WriterError
from rosbags.serde import SerdeError

from . import __version__, fusion_options
from .approx_sync import ApproximateTimeSync
from .frames import FramePreparer
from .image_codec import ImageDecodeError, array_to_image_fields, message_to_array
from .pipeline import FusionPipeline, FusionResult
from .progress import Progress
from .rosbag_io import (IMAGE, IMAGE_TYPES, STORAGES, CopyError, add_image_connection, closing_writer,
                        copy_connection, format_time, stamp_ns, storage_of, typestore)

log = logging.getLogger(__name__)

ROLES = ("thermal", "visible")


class BagJobError(ValueError):
    """The job cannot start: a topic is missing or of the wrong type, or an output topic exists."""


@dataclass(frozen=True)
class BagJob:
    """What to read and how to pair and write (the fusion itself is the pipeline's business)."""

    thermal_topic: str
    visible_topic: str
    output_namespace: str | None = None  # None: the longest namespace the input topics share
    sync_queue_size: int = 10
    sync_slop: float = 0.05
    batch_size: int = 4
    write_mask: bool = True
    storage: str | None = None  # None: the input bag's storage (mcap if that is unknown)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size {self.batch_size}: must be at least 1")
        if self.storage is not None and self.storage not in STORAGES:
            raise ValueError(f"storage {self.storage!r}: expected one of {', '.join(STORAGES)}")
        if self.thermal_topic == self.visible_topic:
            raise ValueError(f"the thermal and visible topics are the same ({self.thermal_topic})")

    def output_topics(self) -> tuple[str, str]:
        """(fused_image, sos_mask) topic names."""
        ns = self.output_namespace if self.output_namespace is not None else \
            common_namespace(self.thermal_topic, self.visible_topic)
        ns = "/" + ns.strip("/") if ns.strip("/") else ""
        return f"{ns}/fused_image", f"{ns}/sos_mask"


def common_namespace(*topics: str) -> str:
    """The longest namespace shared by all topics: /a/b/x and /a/c/y -> /a; nothing shared -> /."""
    spaces = [[part for part in topic.strip("/").split("/")[:-1] if part] for topic in topics]
    shared: list[str] = []
    for parts in zip(*spaces):
        if len(set(parts)) != 1:
            break
        shared.append(parts[0])
    return "/" + "/".join(shared)


@dataclass
class Skipped:
    """A message or pair left out: where it was in the bag and why."""

    topic: str
    log_time: int
    stamp: int | None
    reason: str

    def __str__(self) -> str:
        stamp = f", stamp {format_time(self.stamp)}" if self.stamp is not None else ""
        return f"{self.topic} at {format_time(self.log_time)}{stamp}: {self.reason}"


@dataclass
class BagReport:
    """What a run did, filled in as it goes (so an interrupted run still has its account)."""

    storage: str = ""
    fused_topic: str = ""
    mask_topic: str | None = None
    frames: dict[str, int] = field(default_factory=dict)  # decoded frames per input topic
    paired: dict[str, int] = field(default_factory=dict)
    pairs: int = 0  # pairs fused and written
    copied: int = 0  # input messages copied
    corrupt: list[Skipped] = field(default_factory=list)
    failed: list[Skipped] = field(default_factory=list)  # decoded pairs that could not be fused
    not_copied: list[str] = field(default_factory=list)  # topics whose type could not be described
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def unpaired(self) -> dict[str, int]:
        return {topic: n - self.paired.get(topic, 0) for topic, n in self.frames.items()}

    @property
    def skipped(self) -> bool:
        return bool(self.corrupt or self.failed)


@dataclass
class _Frame:
    """A decoded input message: its header (stamp, frame_id), pixels and log time."""

    header: Any
    encoding: str
    image: np.ndarray
    log_time: int
    stamp: int


class BagFusion:
    """One bag-to-bag run. `run()` fills `report`, also when it is interrupted."""

    def __init__(self, src: str | Path, dst: str | Path, job: BagJob, pipeline: FusionPipeline,
                 preparer: FramePreparer | None = None, custom_data: Mapping[str, str] | None = None) -> None:
        self.src, self.dst = Path(src), Path(dst)
        self.job = job
        self.pipeline = pipeline
        self.preparer = preparer or FramePreparer()
        self.custom_data = dict(custom_data or {})
        self.report = BagReport()
        self._store = typestore()
        self._image_cls = self._store.types[IMAGE]

    # --- the run -----------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> BagReport:
        """Read, pair, fuse, write. A `progress` without a total gets the number of pairs to expect."""
        start = time.perf_counter()
        report = self.report
        try:
            with Reader(self.src) as reader:
                roles = self._check(reader)
                if progress is not None and progress.total is None:
                    progress.total = min(reader.topics[t].msgcount for t in (self.job.thermal_topic,
                                                                             self.job.visible_topic))
                storage = self.job.storage or storage_of(reader) or "mcap"
                with closing_writer(self.dst, storage) as writer:
                    report.storage = storage
                    self._write(reader, writer, roles, progress)
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        finally:
            report.seconds = time.perf_counter() - start
        return report

    def _check(self, reader: Reader) -> dict[int, int]:
        """Input connection id -> 0 (thermal) or 1 (visible); BagJobError when the job cannot run."""
        topics = reader.topics
        images = sorted(t for t, info in topics.items() if info.msgtype in IMAGE_TYPES)
        roles: dict[int, int] = {}
        for index, (role, topic) in enumerate(zip(ROLES, (self.job.thermal_topic, self.job.visible_topic))):
            info = topics.get(topic)
            if info is None:
                hint = f"; image topics in the bag: {', '.join(images)}" if images else "; it has no image topics"
                raise BagJobError(f"{self.src}: no {role} topic {topic}{hint}")
            if info.msgtype not in IMAGE_TYPES:
                raise BagJobError(f"{self.src}: {topic} holds {info.msgtype}, not {' or '.join(IMAGE_TYPES)}")
            roles.update({c.id: index for c in info.connections})
        self.report.fused_topic, mask_topic = self.job.output_topics()
        self.report.mask_topic = mask_topic if self.job.write_mask else None
        for out in (self.report.fused_topic, self.report.mask_topic):
            if out in topics:
                raise BagJobError(f"{self.src} already has a topic {out}; choose another --output-namespace")
        self.report.frames = {self.job.thermal_topic: 0, self.job.visible_topic: 0}
        self.report.paired = dict(self.report.frames)
        return roles

    def _write(self, reader: Reader, writer: Writer, roles: dict[int, int], progress: Progress | None) -> None:
        report = self.report
        copies: dict[int, Connection] = {}
        for conn in reader.connections:
            try:
                copies[conn.id] = copy_connection(writer, conn)
            except CopyError as exc:
                report.not_copied.append(conn.topic)
                log.warning("not copied: %s", exc)
        outputs = {"fused": add_image_connection(writer, report.fused_topic)}
        if report.mask_topic:
            outputs["mask"] = add_image_connection(writer, report.mask_topic)
        for key, value in self._provenance().items():
            writer.set_custom_data(key, value)

        sync: ApproximateTimeSync[_Frame] = ApproximateTimeSync(2, self.job.sync_queue_size, self.job.sync_slop)
        pending: list[tuple[_Frame, _Frame]] = []
        for conn, log_time, raw in reader.messages():
            copy = copies.get(conn.id)
            if copy is not None:
                writer.write(copy, log_time, raw)
                report.copied += 1
            index = roles.get(conn.id)
            if index is None:
                continue
            frame = self._decode(conn, log_time, raw, ROLES[index])
            if frame is None:
                continue
            report.frames[conn.topic] += 1
            pair = sync.add(index, frame, frame.stamp)
            if pair is not None:
                report.paired[self.job.thermal_topic] += 1
                report.paired[self.job.visible_topic] += 1
                pending.append((pair[0], pair[1]))
                if len(pending) >= self.job.batch_size:
                    self._fuse_and_write(pending, writer, outputs, progress)
                    pending = []
        if pending:
            self._fuse_and_write(pending, writer, outputs, progress)

    def _provenance(self) -> dict[str, str]:
        job = dataclasses.asdict(self.job)
        config = dataclasses.asdict(self.pipeline.config)
        agc = dataclasses.asdict(self.preparer.agc)
        homography = None if self.preparer.homography is None else self.preparer.homography.ravel().tolist()
        return {"sosmaskfuse.version": __version__, "sosmaskfuse.input": str(self.src),
                "sosmaskfuse.job": json.dumps(job), "sosmaskfuse.pipeline": json.dumps(config),
                "sosmaskfuse.mask_source": self.pipeline.mask_source,
                "sosmaskfuse.frames": json.dumps({"agc": agc, "homography": homography}), **self.custom_data}

    # --- decoding --------------------------------------------------------------------------------

    def _decode(self, conn: Connection, log_time: int, raw: bytes | memoryview, role: str) -> _Frame | None:
        """The message as a frame, or None after reporting it as corrupt."""
        stamp = None
        try:
            msg = self._store.deserialize_cdr(raw, conn.msgtype)
            stamp = stamp_ns(msg.header)
            if stamp < 0:
                raise ValueError(f"negative header stamp {stamp} ns")
            image, encoding = message_to_array(msg, name=f"{role} image")
        except (SerdeError, ImageDecodeError, ValueError) as exc:  # SerdeError: bad CDR
            self._skip(self.report.corrupt, Skipped(conn.topic, log_time, stamp, str(exc)))
            return None
        return _Frame(msg.header, encoding, image, log_time, stamp)

    # --- fusing ----------------------------------------------------------------------------------

    def _fuse_and_write(self, pairs: Sequence[tuple[_Frame, _Frame]], writer: Writer,
                        outputs: dict[str, Connection], progress: Progress | None) -> None:
        """Prepare, fuse (one pass per frame size) and write the outputs in pair order."""
        prepared: list[tuple[_Frame, np.ndarray, np.ndarray]] = []
        for thermal, visible in pairs:
            try:
                ir, vis = self.preparer.prepare(thermal.image, thermal.encoding, visible.image, visible.encoding)
            except ValueError as exc:
                self._fail(visible, str(exc))
                continue
            # torch wants writable arrays; decoded messages are read-only views on the bag's bytes
            prepared.append((visible, np.require(ir, requirements="W"), np.require(vis, requirements="W")))
        groups: dict[tuple, list[int]] = {}
        for i, (_, ir, vis) in enumerate(prepared):
            groups.setdefault((ir.shape, vis.shape), []).append(i)
        results: dict[int, FusionResult] = {}
        for members in groups.values():
            results.update(self._fuse_group([prepared[i] for i in members], members))
        for i, (visible, _, _) in enumerate(prepared):
            result = results.get(i)
            if result is None:
                continue
            self._write_outputs(writer, outputs, visible, result)
            self.report.pairs += 1
            if progress is not None:
                progress.step()

    def _fuse_group(self, items: list[tuple[_Frame, np.ndarray, np.ndarray]],
                    indices: list[int]) -> dict[int, FusionResult]:
        """Same-size pairs in one pass; if the pass fails, pair by pair, so one bad pair costs only itself."""
        try:
            fused = self.pipeline.fuse_batch([ir for _, ir, _ in items], [vis for _, _, vis in items])
            return dict(zip(indices, fused))
        except (ValueError, RuntimeError) as exc:
            if len(items) == 1:
                self._fail(items[0][0], str(exc))
                return {}
        out: dict[int, FusionResult] = {}
        for item, index in zip(items, indices):
            out.update(self._fuse_group([item], [index]))
        return out

    def _write_outputs(self, writer: Writer, outputs: dict[str, Connection], visible: _Frame,
                       result: FusionResult) -> None:
        images = {"fused": (result.fused, "bgr8" if result.fused.ndim == 3 else "mono8"),
                  "mask": (result.mask_u8, "mono8")}
        for key, conn in outputs.items():
            fields = array_to_image_fields(*images[key])
            msg = self._image_cls(header=visible.header, **fields._asdict())
            writer.write(conn, visible.log_time, self._store.serialize_cdr(msg, IMAGE))

    def _fail(self, visible: _Frame, reason: str) -> None:
        self._skip(self.report.failed, Skipped(self.job.visible_topic, visible.log_time, visible.stamp,
                                               f"pair not fused: {reason}"))

    @staticmethod
    def _skip(where: list[Skipped], item: Skipped) -> None:
        where.append(item)
        log.warning("skipped %s", item)


# --- command line ----------------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bag", help="fuse the thermal/visible pairs of a rosbag2 bag into a new bag",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="input", required=True, type=Path, metavar="BAG",
                   help="input bag: folder with metadata.yaml, or an .mcap/.db3 file")
    p.add_argument("--out", dest="output", required=True, type=Path, metavar="BAG",
                   help="output bag folder (must not exist)")
    p.add_argument("--thermal-topic", required=True, help="sensor_msgs/Image or CompressedImage topic")
    p.add_argument("--visible-topic", required=True, help="sensor_msgs/Image or CompressedImage topic")
    p.add_argument("--output-namespace", metavar="NS",
                   help="namespace of fused_image and sos_mask (default: the one the input topics share)")
    p.add_argument("--out-storage", choices=tuple(STORAGES), help="default: the input's storage")
    p.add_argument("--batch-size", type=int, default=4, help="pairs fused in one pass (default 4)")
    p.add_argument("--no-mask", action="store_true", help="do not write sos_mask (node: publish_mask false)")
    fusion_options.add_node_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, *, stream=None) -> int:
    stream = stream or sys.stderr
    try:
        job = BagJob(thermal_topic=args.thermal_topic, visible_topic=args.visible_topic,
                     output_namespace=args.output_namespace, sync_queue_size=args.sync_queue_size,
                     sync_slop=args.sync_slop, batch_size=args.batch_size, write_mask=not args.no_mask,
                     storage=args.out_storage)
        if args.output.exists():
            raise ValueError(f"{args.output} exists; choose a new output bag")
        if not args.input.exists():
            raise ValueError(f"{args.input}: no such bag")
        pipeline, sources, preparer = fusion_options.build(args)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=stream)
        return 2
    fusion = BagFusion(args.input, args.output, job, pipeline, preparer,
                       custom_data={"sosmaskfuse.models": str(sources)})
    print(f"{args.input} -> {args.output}: pairing {job.thermal_topic} + {job.visible_topic} "
          f"on {pipeline.device}; {sources}", file=stream)
    progress = Progress(None, "bag", unit="pairs", stream=stream)
    error = ""
    try:
        fusion.run(progress)
    except KeyboardInterrupt:
        pass
    except BagJobError as exc:
        print(f"error: {exc}", file=stream)
        return 2
    except (ReaderError, WriterError, OSError) as exc:  # an unreadable input, a full disk
        error = str(exc)
    finally:
        progress.close()
    if error and not fusion.report.storage:  # failed before the output was opened
        print(f"error: {error}", file=stream)
        return 2
    print_summary(fusion.report, args.output, stream)
    if error:
        print(f"error: stopped early: {error}", file=stream)
        return 2
    if fusion.report.interrupted:
        return 130
    return 1 if fusion.report.skipped else 0


def print_summary(report: BagReport, output: Path, stream=None) -> None:
    """The account of a run: pairs, outputs, unpaired frames, skipped messages, time and rate."""
    stream = stream or sys.stderr

    def say(line: str) -> None:
        print(line, file=stream)

    rate = f" ({report.pairs / report.seconds:.2f} pairs/s)" if report.seconds > 0 and report.pairs else ""
    state = "interrupted: " if report.interrupted else ""
    say(f"{state}fused {report.pairs} pairs in {report.seconds:.1f} s{rate} -> {output} ({report.storage})")
    if report.fused_topic:
        outs = [report.fused_topic] + ([report.mask_topic] if report.mask_topic else [])
        say(f"  wrote {', '.join(outs)}: {report.pairs} messages each; copied {report.copied} input messages")
    for topic, n in report.unpaired.items():
        say(f"  {topic}: {report.frames[topic]} frames, {n} unpaired")
    if report.not_copied:
        say(f"  not copied (no type definition): {', '.join(sorted(set(report.not_copied)))}")
    for title, items in (("corrupt messages skipped", report.corrupt), ("pairs not fused", report.failed)):
        if items:
            say(f"  {len(items)} {title}:")
            for item in items:
                say(f"    {item}")
