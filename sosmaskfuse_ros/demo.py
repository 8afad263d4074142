"""`sosmaskfuse demo`: synthetic cameras and the fusion node on real DDS, recorded to MCAP.

It also writes a contact sheet.

Both nodes run as their own processes, exactly as `ros2 launch sosmaskfuse_ros demo.launch.py`
starts them; this process only records their topics (serialized bytes, as `ros2 bag record`
does) into an MCAP bag, then writes a contact sheet (thermal | visible | mask | fused) and
prints throughput and latency.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from sosmaskfuse_core.formats.image_codec import image_to_array, to_bgr
from sosmaskfuse_core.formats.rosbag_io import closing_writer, qos_profile, stamp_ns, typestore
from sosmaskfuse_core.tools.contact_sheet import contact_sheet

NAMESPACE = "/sosmaskfuse_demo"
# topic (relative to NAMESPACE) -> (message type, reliability the publisher offers)
TOPICS = {
    "thermal/image_raw": ("sensor_msgs/msg/Image", "best_effort"),
    "visible/image_raw": ("sensor_msgs/msg/Image", "best_effort"),
    "sos_mask": ("sensor_msgs/msg/Image", "reliable"),
    "fused_image": ("sensor_msgs/msg/Image", "reliable"),
}
DIAGNOSTICS = ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")


@dataclass
class Recording:
    """What the recorder saw: counts, fused arrival times and the last frames by stamp."""

    counts: dict[str, int] = field(default_factory=dict)
    fused_arrivals: list[tuple[int, int]] = field(
        default_factory=list
    )  # (receive wall ns, stamp ns)
    frames: dict[str, dict[int, bytes]] = field(
        default_factory=dict
    )  # topic -> stamp -> raw message
    diagnostics: bytes | None = None


def _node_command(module: str, name: str, params: dict) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        module,
        "--ros-args",
        "-r",
        f"__node:={name}",
        "-r",
        f"__ns:={NAMESPACE}",
    ]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return cmd


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    stream = open(log, "w")
    return subprocess.Popen(cmd, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _record(
    args: argparse.Namespace,
    writer,
    procs: dict[str, tuple[subprocess.Popen, Path]],
    start_processes: Callable[[], None],
) -> Recording:
    """Record every stream until enough fused frames have arrived.

    The subscriptions come first, then the node processes start, so the recorder is there from
    their first message.
    """
    store = typestore()
    rec = Recording(
        counts=dict.fromkeys(list(TOPICS) + [DIAGNOSTICS[0]], 0), frames={t: {} for t in TOPICS}
    )
    node = Node("sosmaskfuse_demo_recorder", namespace=NAMESPACE)
    connections = {}
    for topic, (msgtype, reliability) in TOPICS.items():
        full = f"{NAMESPACE}/{topic}"
        connections[topic] = writer.add_connection(
            full, msgtype, typestore=store, offered_qos_profiles=[qos_profile(reliability)]
        )
    connections[DIAGNOSTICS[0]] = writer.add_connection(
        DIAGNOSTICS[0],
        DIAGNOSTICS[1],
        typestore=store,
        offered_qos_profiles=[qos_profile("reliable", 10)],
    )

    def keep(topic: str):
        def callback(data: bytes) -> None:
            now = time.time_ns()
            writer.write(connections[topic], now, data)
            rec.counts[topic] += 1
            if topic == DIAGNOSTICS[0]:
                rec.diagnostics = data
                return
            msg: Any = store.deserialize_cdr(data, TOPICS[topic][0])  # a sensor_msgs message
            stamp = stamp_ns(msg.header)
            rec.frames[topic][stamp] = data
            if len(rec.frames[topic]) > 200:
                rec.frames[topic].pop(next(iter(rec.frames[topic])))
            if topic == "fused_image":
                rec.fused_arrivals.append((now, stamp))

        return callback

    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    for topic, (_, reliability) in TOPICS.items():
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=10,
            reliability=ReliabilityPolicy.BEST_EFFORT
            if reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE,
        )
        node.create_subscription(Image, topic, keep(topic), qos, raw=True)
    node.create_subscription(DiagnosticArray, DIAGNOSTICS[0], keep(DIAGNOSTICS[0]), 10, raw=True)
    start_processes()

    deadline = time.monotonic() + args.timeout
    last_report = 0
    try:
        # until enough fused frames, camera frames for the sheet (the recorder may match the
        # cameras' best-effort publishers later than the fusion node does) and the node's
        # diagnostics
        while (
            len(rec.fused_arrivals) < args.frames
            or rec.diagnostics is None
            or not (rec.frames["thermal/image_raw"] and rec.frames["visible/image_raw"])
        ) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
            for name, (proc, log) in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{_tail(log)}")
            if len(rec.fused_arrivals) != last_report:
                last_report = len(rec.fused_arrivals)
                print(f"  fused frame {last_report}/{args.frames}", file=sys.stderr, flush=True)
        # the node publishes each mask just after its fused image: wait briefly for the last one
        grace = time.monotonic() + 1.0
        while rec.counts["sos_mask"] < len(rec.fused_arrivals) and time.monotonic() < grace:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
    return rec


def _sheet(rec: Recording, rows: int) -> list[list]:
    """Up to `rows` fused frames spread over the run, each with its inputs and mask."""
    store = typestore()
    decode = {
        t: (lambda raw, t=t: image_to_array(store.deserialize_cdr(raw, TOPICS[t][0])))
        for t in TOPICS
    }
    fused = sorted(rec.frames["fused_image"])
    picked = [
        fused[round(i * (len(fused) - 1) / max(rows - 1, 1))] for i in range(min(rows, len(fused)))
    ]
    out = []
    for stamp in dict.fromkeys(picked):

        def nearest(topic: str) -> bytes | None:
            stamps = rec.frames[topic]
            if not stamps:
                return None
            return stamps[min(stamps, key=lambda s: abs(s - stamp))]

        raws = [nearest(t) for t in ("thermal/image_raw", "visible/image_raw", "sos_mask")]
        if any(r is None for r in raws):
            continue
        thermal, visible, mask = (
            decode[t](r)
            for t, r in zip(("thermal/image_raw", "visible/image_raw", "sos_mask"), raws)
        )
        out.append(
            [
                thermal,
                to_bgr(visible, "rgb8"),
                mask,
                decode["fused_image"](rec.frames["fused_image"][stamp]),
            ]
        )
    return out


def _diagnostic_values(rec: Recording) -> dict[str, str]:
    if rec.diagnostics is None:
        return {}
    msg: Any = typestore().deserialize_cdr(rec.diagnostics, DIAGNOSTICS[1])
    for status in msg.status:
        if status.name == f"{NAMESPACE}/sosmaskfuse: fusion":  # diagnostic_updater.use_fqn
            return {kv.key: kv.value for kv in status.values}
    return {}


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    bag = out / "demo_bag"
    logs = out / "logs"
    if bag.exists():
        shutil.rmtree(bag)  # the previous demo's recording
    logs.mkdir(parents=True, exist_ok=True)
    cam_w, cam_h = args.camera_size
    w, h = args.process_size or args.camera_size
    cameras = _node_command(
        "sosmaskfuse_ros.synthetic_cameras",
        "synthetic_cameras",
        {"rate": args.rate, "thermal_scale": 0.5, "width": cam_w, "height": cam_h},
    )
    fusion = _node_command(
        "sosmaskfuse_ros.fusion_node",
        "sosmaskfuse",
        {
            **({"process_width": w, "process_height": h} if args.process_size else {}),
            "autoencoder_weights": args.autoencoder,
            "precision": args.precision,
            "output_scaling": args.output_scaling,
            "device": args.device,
            "log_period": 5.0,
            "diagnostic_updater.period": 1.0,
            "diagnostic_updater.use_fqn": "true",
        },
    )
    print(
        f"demo: synthetic cameras ({cam_w}x{cam_h} at {args.rate:g} Hz) -> sosmaskfuse_node "
        f"(fusing at {w}x{h} on {args.device}) in namespace {NAMESPACE}, "
        f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}",
        file=sys.stderr,
    )
    procs: dict[str, tuple[subprocess.Popen, Path]] = {}
    rclpy.init()
    start = time.monotonic()

    def start_processes() -> None:
        for name, command in (("sosmaskfuse_node", fusion), ("synthetic_cameras", cameras)):
            procs[name] = (_start(command, logs / f"{name}.log"), logs / f"{name}.log")

    try:
        with closing_writer(bag, "mcap") as writer:
            rec = _record(args, writer, procs, start_processes)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for proc, _ in procs.values():
            _stop(proc)
        rclpy.try_shutdown()
    elapsed = time.monotonic() - start

    if not rec.fused_arrivals:
        print(
            f"error: no fused frame within {args.timeout:g} s; node log:\n"
            f"{_tail(logs / 'sosmaskfuse_node.log')}",
            file=sys.stderr,
        )
        return 1
    rows = _sheet(rec, args.sheet_rows)
    if not rows:
        print(
            f"error: no camera frame recorded within {args.timeout:g} s, so no contact sheet "
            f"(the bag {bag} holds what was recorded)",
            file=sys.stderr,
        )
        return 1
    sheet_path = out / "contact_sheet.png"
    cv2.imwrite(str(sheet_path), contact_sheet(rows))
    arrivals = rec.fused_arrivals
    latencies = [(recv - stamp) / 1e6 for recv, stamp in arrivals]
    span = (arrivals[-1][0] - arrivals[0][0]) / 1e9
    rate = (len(arrivals) - 1) / span if span > 0 else float("nan")
    diag = _diagnostic_values(rec)
    print(
        f"recorded {sum(rec.counts.values())} messages to {bag} "
        f"({', '.join(f'{t}: {n}' for t, n in rec.counts.items())})"
    )
    print(f"contact sheet: {sheet_path} ({len(rows)} rows)")
    print(
        f"throughput: {rate:.2f} fused frames/s at {w}x{h} (cameras at {args.rate:g} Hz; "
        f"stale pairs dropped: {diag.get('dropped pairs (stale)', '?')})"
    )
    print(
        f"latency, camera stamp to fused frame received: "
        f"median {statistics.median(latencies):.0f} ms, "
        f"max {max(latencies):.0f} ms; as the node measures it (stamp -> published): mean "
        f"{diag.get('latency mean (ms)', '?')} ms"
    )
    stages = {k[5:-5]: v for k, v in diag.items() if k.startswith("time ")}
    print(
        "time per pair in the node (ms, its last diagnostics period): "
        + (", ".join(f"{k} {v}" for k, v in stages.items()) or "?")
    )
    print(
        f"models: {diag.get('autoencoder', '?')}; mask: {diag.get('mask source', '?')}; "
        f"device {diag.get('device', '?')} {diag.get('precision', '?')}; total {elapsed:.0f} s"
    )
    return 0
