"""`sosmaskfuse bag`: fuse a bag's thermal/visible pairs into a new bag, as the fusion node would.

    sosmaskfuse bag --in IN_BAG --out OUT_BAG --thermal-topic T --visible-topic V [node parameters]

Reads a rosbag2 bag (a folder with metadata.yaml, or a single .mcap/.db3 file; MCAP or SQLite3
storage, found from the input) whose two topics hold sensor_msgs/Image or CompressedImage.
Messages are taken in bag (log-time, i.e. receive-time) order and paired by their header stamps
with message_filters' ApproximateTime rules (--sync-queue-size, --sync-slop), the way the node
pairs them live; pairs are fused in batches (--batch-size; pairs of one size share a pass).
With --mask-source topic, masks recorded on --mask-topic are paired in as the node's `mask` input.

The new bag (--out-storage mcap|sqlite3, default the input's) holds every input topic copied
byte for byte, with its type, definition, type hash and offered QoS profiles, plus

    <namespace>/fused_image   sensor_msgs/Image, mono8 (bgr8 with --color-output)
    <namespace>/sos_mask      sensor_msgs/Image, mono8 (left out with --no-mask)

stamped with the visible frame's header and written at the visible message's log time. The
namespace is --output-namespace, by default the longest namespace the two input topics share:
/camera/thermal/image_raw + /camera/visible/image_raw -> /camera/fused_image, which is where a
node pushed into /camera (its inputs remapped from thermal/image_raw and visible/image_raw)
publishes. Topics with no namespace in common give /fused_image and /sos_mask.

A message that cannot be decoded (bad CDR, unknown encoding, truncated pixels, above
--max-input-pixels) is reported with its topic and time and skipped; a pair that cannot be fused
is reported the same way, and an MCAP chunk that cannot be read (a checksum mismatch) with its
file, byte offset, log times and the messages it held: the rest of the bag is still fused. Each
makes the exit code 1. Frames left without a partner are normal and only counted.

The bag is written in a hidden folder beside OUT_BAG (.OUT_BAG.partial-<pid>) and renamed to
OUT_BAG once closed, so OUT_BAG only ever holds a closed bag. Ctrl-C, SIGTERM (docker stop,
systemd) and SIGHUP (a lost terminal) stop the run the same way: the bag of what was done is
closed and renamed to OUT_BAG, marked incomplete in its custom_data (sosmaskfuse.complete:
"false"), and the exit code is 128 + the signal's number (130, 143, 129). A rerun with the same
OUT_BAG replaces an incomplete bag (and removes the partial folder a killed run left); a
complete one is never overwritten. A namespace that makes invalid ROS 2 topic names, a missing
input or an existing complete output stop the run before anything is written (exit code 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sosmaskfuse_core.commands.options import add_setting_options, setting_values
from sosmaskfuse_core.commands.stop_signals import StopSignals
from sosmaskfuse_core.formats.bag_output import (
    commit,
    is_incomplete,
    partial_dir,
    partial_dirs,
    pid_alive,
)
from sosmaskfuse_core.formats.rosbag_io import STORAGES
from sosmaskfuse_core.pipeline.builder import build_stage
from sosmaskfuse_core.pipeline.devices import retain_freed_host_memory, set_cpu_threads
from sosmaskfuse_core.pipeline.stage_clock import stage_table
from sosmaskfuse_core.progress import Progress
from sosmaskfuse_core.settings import BAG
from sosmaskfuse_core.tools.fuse_bag import BagJob, BagJobError, BagReport, fuse_bag


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bag",
        help="fuse the thermal/visible pairs of a rosbag2 bag into a new bag",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--in",
        dest="input",
        required=True,
        type=Path,
        metavar="BAG",
        help="input bag: folder with metadata.yaml, or an .mcap/.db3 file",
    )
    p.add_argument(
        "--out",
        dest="output",
        required=True,
        type=Path,
        metavar="BAG",
        help="output bag folder (must not exist)",
    )
    add_job_options(p)
    p.set_defaults(func=run)
    return p


def add_job_options(p: argparse.ArgumentParser) -> None:
    """Topics, output layout, batch size and the node's settings: all of a bag job but its paths.

    `sosmaskfuse fleet` takes the same options.
    """
    p.add_argument(
        "--thermal-topic", required=True, help="sensor_msgs/Image or CompressedImage topic"
    )
    p.add_argument(
        "--visible-topic", required=True, help="sensor_msgs/Image or CompressedImage topic"
    )
    p.add_argument(
        "--output-namespace",
        metavar="NS",
        help="namespace of fused_image and sos_mask (default: the one the input topics share)",
    )
    p.add_argument("--out-storage", choices=tuple(STORAGES), help="default: the input's storage")
    p.add_argument("--batch-size", type=int, default=4, help="pairs fused in one pass (default 4)")
    p.add_argument(
        "--mask-topic", metavar="TOPIC", help="recorded masks, with --mask-source topic"
    )
    add_setting_options(p, BAG)


def job_from_args(args: argparse.Namespace, values: Mapping[str, Any] | None = None) -> BagJob:
    """The BagJob of add_job_options' options (ValueError for bad values).

    `values`: the settings values of `args` (`setting_values(args, BAG)`), if already read.
    """
    values = setting_values(args, BAG) if values is None else values
    return BagJob(
        thermal_topic=args.thermal_topic,
        visible_topic=args.visible_topic,
        output_namespace=args.output_namespace,
        sync_queue_size=values["sync_queue_size"],
        sync_slop=values["sync_slop"],
        batch_size=args.batch_size,
        storage=args.out_storage,
        mask_topic=args.mask_topic,
        max_input_pixels=values["max_input_pixels"],
    )


def run(args: argparse.Namespace, *, stream=None) -> int:
    stream = stream or sys.stderr
    try:
        values = setting_values(args, BAG)
        job = job_from_args(args, values)
        replacing = check_output(args.output)
        if not args.input.exists():
            raise ValueError(f"{args.input}: no such bag")
        stage, sources = build_stage(values)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=stream)
        return 2
    if replacing:
        print(f"{args.output}: an incomplete bag of a stopped run; replacing it", file=stream)
    set_cpu_threads(values["cpu_threads"])
    if stage.pipeline.device.type == "cpu":
        retain_freed_host_memory()  # reuse freed buffers: no page faults per layer
    print(
        f"{args.input} -> {args.output}: pairing {' + '.join(job.input_topics)} "
        f"on {stage.pipeline.device} ({stage.pipeline.backend.name} backend); {sources}",
        file=stream,
    )
    partial = partial_dir(args.output, str(os.getpid()))
    progress = Progress(None, "bag", unit="pairs", stream=stream)
    with StopSignals() as stop:
        try:
            partial.mkdir(parents=True)
            dst = partial / args.output.name
            report = fuse_bag(args.input, dst, job, stage, sources, progress)
        except (BagJobError, OSError) as exc:
            shutil.rmtree(partial, ignore_errors=True)
            print(f"error: {exc}", file=stream)
            return 2
        except KeyboardInterrupt:  # before the job began
            shutil.rmtree(partial, ignore_errors=True)
            print(f"interrupted ({stop.name or 'SIGINT'}) before the bag was opened", file=stream)
            return stop.exit_code
        finally:
            progress.close()
        stop.disarm()  # the bag is closed: a signal now must not cut the rename short
        closed = (partial / args.output.name / "metadata.yaml").is_file()
        if closed:
            commit(partial, args.output, str(os.getpid()))
        shutil.rmtree(partial, ignore_errors=True)
    if report.error and not report.storage:  # failed before the output was opened
        print(f"error: {report.error}", file=stream)
        return 2
    print_summary(report, args.output, stream)
    if report.error:
        print(f"error: stopped early: {report.error}", file=stream)
        if not closed:
            print("error: the bag could not be closed; nothing was written", file=stream)
        return 2
    if report.interrupted:
        print(
            f"stopped by {stop.name or 'SIGINT'}: {args.output} holds the pairs done so far, "
            "marked incomplete (a rerun replaces it)",
            file=stream,
        )
        return stop.exit_code
    return 1 if report.skipped else 0


def check_output(output: Path) -> bool:
    """Whether `output` is an incomplete bag a rerun replaces; ValueError when it must not run.

    A complete bag (or anything else) at `output` is never replaced. Partial folders of runs
    that are gone are removed; one of a live process means another run is writing `output`.
    """
    replacing = output.exists() and is_incomplete(output)
    if output.exists() and not replacing:
        raise ValueError(f"{output} exists; choose a new output bag")
    for partial in partial_dirs(output):
        tag = partial.name.rsplit("partial-", 1)[-1]
        if tag.isdigit() and int(tag) != os.getpid() and pid_alive(int(tag)):
            raise ValueError(f"{output}: another run (process {tag}) is writing it ({partial})")
        shutil.rmtree(partial, ignore_errors=True)  # left by a run that was killed
    return replacing


def print_summary(report: BagReport, output: Path, stream=None) -> None:
    """The account of a run: pairs, outputs, unpaired frames, skipped messages, time and rate."""
    stream = stream or sys.stderr

    def say(line: str) -> None:
        print(line, file=stream)

    rate = (
        f" ({report.pairs / report.seconds:.2f} pairs/s)"
        if report.seconds > 0 and report.pairs
        else ""
    )
    state = "interrupted: " if report.interrupted else ""
    say(
        f"{state}fused {report.pairs} pairs in {report.seconds:.1f} s{rate} "
        f"-> {output} ({report.storage})"
    )
    if report.fused_topic:
        outs = [report.fused_topic] + ([report.mask_topic] if report.mask_topic else [])
        say(
            f"  wrote {', '.join(outs)}: {report.pairs} messages each; "
            f"copied {report.copied} input messages"
        )
    if report.stage_ms and report.pairs:
        say(f"  time per pair (ms): {stage_table(report.stage_ms)}")
    for topic, n in report.unpaired.items():
        say(f"  {topic}: {report.frames[topic]} frames, {n} unpaired")
    if report.not_copied:
        say(f"  not copied (no type definition): {', '.join(sorted(set(report.not_copied)))}")
    for title, items in (
        ("corrupt messages skipped", report.corrupt),
        ("pairs not fused", report.failed),
        ("unreadable chunks lost", report.lost),
    ):
        if items:
            where = f" in {report.source}" if report.source else ""
            say(f"  {len(items)} {title}{where}:")
            for item in items:
                say(f"    {item}")
