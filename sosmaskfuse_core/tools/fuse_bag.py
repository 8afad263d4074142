"""Fuse the thermal/visible pairs of a rosbag2 recording into a new bag, exactly as the node would.

`BagFusion(src, dst, job, stage).run()` reads the input bag (a folder with metadata.yaml, or a
single .mcap/.db3 file), pairs the two image topics by header stamp with message_filters'
ApproximateTime rules in log-time order (as the node pairs them live), fuses the pairs through
the node's `PairStage` in batches, and writes a new bag: every input topic copied byte for byte
plus `<namespace>/fused_image` and `<namespace>/sos_mask`, stamped with the visible frame's
header at the visible message's log time. `fuse_bag` is the whole job for one bag, used by
`sosmaskfuse bag` and by the fleet workers. The command line is `sosmaskfuse_core.commands.bag`.

What is lost is reported, never the run: a message that cannot be decoded, a pair that cannot
be fused, an MCAP chunk that cannot be read (`formats.rosbag_io.open_bag`: the other chunks
are still read). The output's custom_data says whether the whole input was read
(`formats.bag_output.COMPLETE_KEY`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError, Writer, WriterError
from rosbags.serde import SerdeError

from sosmaskfuse_core import __version__
from sosmaskfuse_core.formats.approx_sync import ApproximateTimeSync
from sosmaskfuse_core.formats.bag_output import COMPLETE_KEY
from sosmaskfuse_core.formats.image_codec import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    array_to_image_fields,
    message_to_array,
)
from sosmaskfuse_core.formats.ros_names import check_topic_name
from sosmaskfuse_core.formats.rosbag_io import (
    IMAGE,
    IMAGE_TYPES,
    STORAGES,
    CopyError,
    LostChunk,
    add_image_connection,
    closing_writer,
    copy_connection,
    format_time,
    lost_chunks,
    open_bag,
    stamp_ns,
    storage_of,
    typestore,
)
from sosmaskfuse_core.pipeline.pair_stage import Frame, PairOutputs, PairStage
from sosmaskfuse_core.progress import ProgressSink
from sosmaskfuse_core.settings import BAG, table

log = logging.getLogger(__name__)

ROLES = ("thermal", "visible", "mask")


class BagJobError(ValueError):
    """The job cannot start: a topic is missing or of the wrong type, or an output topic exists."""


@dataclass(frozen=True)
class BagJob:
    """What to read and how to pair and write (the fusion itself is the stage's business).

    mask_topic: masks recorded in the bag (mono8, in the visible camera's grid), paired with the
    images as the node pairs its `mask` input; needs a stage whose pipeline takes given masks
    (mask_source `topic`). max_input_pixels: the node's cap on a decoded image (None: none).
    ValueError for a bad value, e.g. a namespace that makes invalid ROS 2 topic names.
    """

    thermal_topic: str
    visible_topic: str
    output_namespace: str | None = None  # None: the longest namespace the input topics share
    sync_queue_size: int = table.default("sync_queue_size", BAG)
    sync_slop: float = table.default("sync_slop", BAG)
    batch_size: int = 4
    storage: str | None = None  # None: the input bag's storage (mcap if that is unknown)
    mask_topic: str | None = None
    max_input_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size {self.batch_size}: must be at least 1")
        if self.storage is not None and self.storage not in STORAGES:
            raise ValueError(f"storage {self.storage!r}: expected one of {', '.join(STORAGES)}")
        if len(set(self.input_topics)) != len(self.input_topics):
            raise ValueError(f"the input topics must differ ({', '.join(self.input_topics)})")
        what = (
            f"output namespace {self.output_namespace!r} gives"
            if self.output_namespace is not None
            else "the input topics' namespace (choose one: --output-namespace) gives"
        )
        for topic in self.output_topics():
            check_topic_name(topic, f"{what} topic")

    @property
    def input_topics(self) -> tuple[str, ...]:
        """Thermal, visible (and mask) topics, in the synchroniser's input order."""
        return (self.thermal_topic, self.visible_topic) + (
            (self.mask_topic,) if self.mask_topic else ()
        )

    def output_topics(self) -> tuple[str, str]:
        """(fused_image, sos_mask) topic names."""
        ns = (
            self.output_namespace
            if self.output_namespace is not None
            else common_namespace(self.thermal_topic, self.visible_topic)
        )
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
    source: str = ""  # the input bag, for messages
    fused_topic: str = ""
    mask_topic: str | None = None
    frames: dict[str, int] = field(default_factory=dict)  # decoded frames per input topic
    paired: dict[str, int] = field(default_factory=dict)
    pairs: int = 0  # pairs fused and written
    copied: int = 0  # input messages copied
    corrupt: list[Skipped] = field(default_factory=list)
    failed: list[Skipped] = field(default_factory=list)  # decoded pairs that could not be fused
    lost: list[LostChunk] = field(default_factory=list)  # MCAP chunks that could not be read
    not_copied: list[str] = field(default_factory=list)  # topics whose type could not be described
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)  # per pair: read, decode, ...
    interrupted: bool = False
    error: str = ""  # why the run stopped early: an unreadable input, a failed write (fuse_bag)

    @property
    def unpaired(self) -> dict[str, int]:
        """Decoded frames per input topic that found no partner."""
        return {topic: n - self.paired.get(topic, 0) for topic, n in self.frames.items()}

    @property
    def skipped(self) -> bool:
        """Whether a message, a pair or a chunk was left out (the exit code is then 1)."""
        return bool(self.corrupt or self.failed or self.lost)


@dataclass
class _Message:
    """A decoded input message: its frame (with the header), log time and stamp."""

    frame: Frame
    log_time: int
    stamp: int


def fuse_bag(
    src: str | Path,
    dst: str | Path,
    job: BagJob,
    stage: PairStage,
    sources: Any,
    progress: ProgressSink | None = None,
) -> BagReport:
    """One bag fused into the new bag `dst`, as `sosmaskfuse bag` (and each fleet worker) runs it.

    `sources` (the models' account from `build_stage`) goes into the bag's custom_data. An
    unreadable input or a failed write (ReaderError, WriterError, OSError) ends the run with
    `report.error` set (`report.storage` is empty if the output was never opened); Ctrl-C ends
    it with `report.interrupted`. Either way the bag written so far is valid and closed.
    BagJobError when the job does not fit the bag (nothing is written then).
    """
    fusion = BagFusion(src, dst, job, stage, custom_data={"sosmaskfuse.models": str(sources)})
    try:
        fusion.run(progress)
    except KeyboardInterrupt:
        pass
    except (ReaderError, WriterError, OSError) as exc:  # an unreadable input, a full disk
        error = str(exc)
        fusion.report.error = error if str(src) in error else f"{src}: {error}"
    return fusion.report


class BagFusion:
    """One bag-to-bag run. `run()` fills `report`, also when it is interrupted."""

    def __init__(
        self,
        src: str | Path,
        dst: str | Path,
        job: BagJob,
        stage: PairStage,
        custom_data: Mapping[str, str] | None = None,
    ) -> None:
        self.src, self.dst = Path(src), Path(dst)
        self.job = job
        self.stage = stage
        self.custom_data = dict(custom_data or {})
        self.report = BagReport(source=str(self.src))
        self._store = typestore()
        self._image_cls = self._store.types[IMAGE]

    # --- the run -----------------------------------------------------------------------------

    def run(self, progress: ProgressSink | None = None) -> BagReport:
        """Read, pair, fuse, write.

        A `progress` without a total gets the number of pairs to expect.
        """
        start = time.perf_counter()
        report = self.report
        self.stage.clock.take()  # this run's stages only
        try:
            with open_bag(self.src) as reader:
                roles = self._check(reader)
                if progress is not None and progress.total is None:
                    progress.total = min(reader.topics[t].msgcount for t in self.job.input_topics)
                storage = self.job.storage or storage_of(reader) or "mcap"
                with closing_writer(self.dst, storage) as writer:
                    report.storage = storage
                    complete = False
                    try:
                        self._write(reader, writer, roles, progress)
                        complete = True
                    finally:
                        report.lost = lost_chunks(reader)
                        writer.set_custom_data(COMPLETE_KEY, "true" if complete else "false")
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        finally:
            report.seconds = time.perf_counter() - start
            report.stage_ms = self.stage.clock.take()[1]
        return report

    def _check(self, reader: Reader) -> dict[int, int]:
        """Input connection id -> index in ROLES; BagJobError when the job cannot run."""
        topics = reader.topics
        images = sorted(t for t, info in topics.items() if info.msgtype in IMAGE_TYPES)
        roles: dict[int, int] = {}
        for index, (role, topic) in enumerate(zip(ROLES, self.job.input_topics)):
            info = topics.get(topic)
            if info is None:
                hint = (
                    f"; image topics in the bag: {', '.join(images)}"
                    if images
                    else "; it has no image topics"
                )
                raise BagJobError(f"{self.src}: no {role} topic {topic}{hint}")
            if info.msgtype not in IMAGE_TYPES:
                raise BagJobError(
                    f"{self.src}: {topic} holds {info.msgtype}, not {' or '.join(IMAGE_TYPES)}"
                )
            roles.update({c.id: index for c in info.connections})
        uses_masks = self.stage.pipeline.mask_source == "topic"
        if uses_masks != bool(self.job.mask_topic):
            raise BagJobError(
                "mask_source 'topic' and a mask topic go together: give --mask-topic with "
                "--mask-source topic"
                if uses_masks
                else "a mask topic is given but the mask source is "
                f"{self.stage.pipeline.mask_source!r}"
            )
        self.report.fused_topic, mask_topic = self.job.output_topics()
        self.report.mask_topic = mask_topic if self.stage.with_mask else None
        for out in (self.report.fused_topic, self.report.mask_topic):
            if out in topics:
                raise BagJobError(
                    f"{self.src} already has a topic {out}; choose another --output-namespace"
                )
        self.report.frames = dict.fromkeys(self.job.input_topics, 0)
        self.report.paired = dict(self.report.frames)
        return roles

    def _write(
        self, reader: Reader, writer: Writer, roles: dict[int, int], progress: ProgressSink | None
    ) -> None:
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

        inputs = self.job.input_topics
        sync: ApproximateTimeSync[_Message] = ApproximateTimeSync(
            len(inputs), self.job.sync_queue_size, self.job.sync_slop
        )
        pending: list[tuple[_Message, ...]] = []
        clock = self.stage.clock
        messages = reader.messages()
        while True:
            with clock("read"):
                item = next(messages, None)
            if item is None:
                break
            conn, log_time, raw = item
            copy = copies.get(conn.id)
            if copy is not None:
                with clock("write"):
                    writer.write(copy, log_time, raw)
                report.copied += 1
            index = roles.get(conn.id)
            if index is None:
                continue
            message = self._decode(conn, log_time, raw, ROLES[index])
            if message is None:
                continue
            report.frames[conn.topic] += 1
            matched = sync.add(index, message, message.stamp)
            if matched is not None:
                for topic in inputs:
                    report.paired[topic] += 1
                pending.append(tuple(matched))
                if len(pending) >= self.job.batch_size:
                    self._fuse_and_write(pending, writer, outputs, progress)
                    pending = []
        if pending:
            self._fuse_and_write(pending, writer, outputs, progress)

    def _provenance(self) -> dict[str, str]:
        preparer = self.stage.preparer
        job = dataclasses.asdict(self.job)
        config = dataclasses.asdict(self.stage.pipeline.config)
        agc = dataclasses.asdict(preparer.agc)
        homography = None if preparer.homography is None else preparer.homography.ravel().tolist()
        return {
            "sosmaskfuse.version": __version__,
            "sosmaskfuse.input": str(self.src),
            "sosmaskfuse.job": json.dumps(job),
            "sosmaskfuse.pipeline": json.dumps(config),
            "sosmaskfuse.mask_source": self.stage.pipeline.mask_source,
            "sosmaskfuse.frames": json.dumps({"agc": agc, "homography": homography}),
            **self.custom_data,
        }

    # --- decoding --------------------------------------------------------------------------------

    def _decode(
        self, conn: Connection, log_time: int, raw: bytes | memoryview, role: str
    ) -> _Message | None:
        """The message decoded, or None after reporting it as corrupt."""
        stamp = None
        try:
            with self.stage.clock("decode"):
                msg: Any = self._store.deserialize_cdr(raw, conn.msgtype)
                stamp = stamp_ns(msg.header)
                if stamp < 0:
                    raise ValueError(f"negative header stamp {stamp} ns")
                image, encoding = message_to_array(
                    msg, name=f"{role} image", max_pixels=self.job.max_input_pixels
                )
        except (SerdeError, ImageDecodeError, ValueError) as exc:  # SerdeError: bad CDR
            self._skip(self.report.corrupt, Skipped(conn.topic, log_time, stamp, str(exc)))
            return None
        return _Message(Frame(image, encoding, msg.header), log_time, stamp)

    # --- fusing ----------------------------------------------------------------------------------

    def _fuse_and_write(
        self,
        pairs: Sequence[tuple[_Message, ...]],
        writer: Writer,
        outputs: dict[str, Connection],
        progress: ProgressSink | None,
    ) -> None:
        """Fuse through the stage (one pass per frame size) and write the outputs in pair order."""
        frames = [(m[0].frame, m[1].frame, m[2].frame if len(m) > 2 else None) for m in pairs]
        for messages, result in zip(pairs, self.stage.run(frames)):
            visible = messages[1]
            if isinstance(result, Exception):
                self._skip(
                    self.report.failed,
                    Skipped(
                        self.job.visible_topic,
                        visible.log_time,
                        visible.stamp,
                        f"pair not fused: {result}",
                    ),
                )
                continue
            self._write_outputs(writer, outputs, visible, result)
            self.report.pairs += 1
            if progress is not None:
                progress.step()

    def _write_outputs(
        self,
        writer: Writer,
        outputs: dict[str, Connection],
        visible: _Message,
        result: PairOutputs,
    ) -> None:
        images = {
            "fused": (result.fused, result.fused_encoding),
            "mask": (result.mask, result.mask_encoding),
        }
        for key, conn in outputs.items():
            array, encoding = images[key]
            assert array is not None  # a mask connection exists only when masks are made
            with self.stage.clock("encode"):
                fields = array_to_image_fields(array, encoding)
                msg = self._image_cls(header=visible.frame.header, **fields._asdict())
                data = self._store.serialize_cdr(msg, IMAGE)
            with self.stage.clock("write"):
                writer.write(conn, visible.log_time, data)

    def _skip(self, where: list[Skipped], item: Skipped) -> None:
        where.append(item)
        log.warning("%s: skipped %s", self.src, item)
