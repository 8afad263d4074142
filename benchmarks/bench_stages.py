r"""The whole per-pair path, stage by stage: `sosmaskfuse bag` and the node, against the targets.

    python benchmarks/bench_stages.py [--size 640x480] [--pairs 40] [--baseline-pairs 4]
        [--node] [--rate 15] [--frames 60] [--autoencoder auto] [--precision auto]

Bag: a bag of --pairs synthetic street pairs at --size (mono16 thermal, rgb8 visible, as
`make-bag --thermal-encoding mono16` writes) is fused by `fuse_bag`, the code of `sosmaskfuse
bag`, with the shipped defaults (or --autoencoder/--precision), and then, in the same process,
by the baseline: the paper preset (the full model in fp32, the paper's fusion), on
--baseline-pairs pairs. Printed: each stage's own time per pair (pipeline/stage_clock.py:
read, decode, prepare, load, classical mask, sos network, mask smoothing, autoencoder,
contrast guard, output, encode, write), pairs/s, the speed-up over the baseline and the
target of issue 23 (>= 10 pairs/s at 640x480).

Node (--node): `sosmaskfuse demo` with the synthetic cameras at --size and --rate, the node
with the shipped defaults, until --frames fused frames: fused frames/s, the latency (camera
stamp to fused frame received) and the node's own stage times from its diagnostics, against
the targets (>= 10 frames/s, median latency <= 150 ms).

The stage times are wall time in the thread that runs the stage; on a CPU the stages of one
pair add up to its time. Run it on a quiet machine: another job on the cores shows up in
every stage.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import parse_size, print_table

from sosmaskfuse_core.pipeline.builder import build_stage
from sosmaskfuse_core.pipeline.devices import retain_freed_host_memory
from sosmaskfuse_core.settings import BAG, presets, table
from sosmaskfuse_core.tools.fuse_bag import BagJob, fuse_bag
from sosmaskfuse_core.tools.make_bag import BagLayout, FrameSource, write_bag
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene

TARGET_PAIRS_PER_S = 10.0
TARGET_LATENCY_MS = 150.0


def synthetic_bag(folder: Path, size: tuple[int, int], pairs: int) -> Path:
    """A bag of `pairs` synthetic street pairs (the camera topics of `make-bag`)."""
    scene = SyntheticScene(*size, seed=0)

    def frames():
        for i in range(pairs):
            frame = scene.render(i / 10.0)
            yield f"{i:04d}", frame.thermal, frame.visible[:, :, ::-1].copy()  # BGR

    source = FrameSource("synthetic street", 10.0, frames(), count=pairs)
    out = folder / f"street_{size[0]}x{size[1]}"
    write_bag(out, source, BagLayout(thermal_encoding="mono16"))
    return out


def run_bag(bag: Path, out: Path, values: dict) -> tuple[float, dict[str, float], str]:
    """(pairs/s, stage ms per pair, what ran) of one `fuse_bag` run with these settings."""
    stage, sources = build_stage(values)
    layout = BagLayout()
    job = BagJob(*layout.topics())
    report = fuse_bag(bag, out, job, stage, sources)
    if report.error or not report.pairs:
        raise RuntimeError(f"{bag}: {report.error or 'no pair fused'}")
    what = f"{sources.autoencoder.split(' /')[0]}, {stage.pipeline.config.precision}"
    return report.pairs / report.seconds, report.stage_ms, what


def bag_table(args: argparse.Namespace, size: tuple[int, int]) -> None:
    defaults = {**table.defaults(BAG), "device": args.device}
    ours = {**defaults, "autoencoder_weights": args.autoencoder, "precision": args.precision}
    paper = presets.apply_preset({**defaults, "preset": "paper"})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bag = synthetic_bag(folder, size, max(args.pairs, args.baseline_pairs))
        small = synthetic_bag(folder / "small", size, args.baseline_pairs)
        runs = {
            "defaults": run_bag(bag, folder / "out_defaults", ours),
            "paper preset (baseline)": run_bag(small, folder / "out_paper", paper),
        }
    stages = list(dict.fromkeys(s for _, ms, _ in runs.values() for s in ms))
    base = runs["paper preset (baseline)"][0]
    rows = [
        [name, what, f"{rate:.2f}", f"x{rate / base:.1f}", f"{1000 / rate:.0f}"]
        + [f"{ms.get(s, 0.0):.1f}" for s in stages]
        for name, (rate, ms, what) in runs.items()
    ]
    print(f"\nbag: {args.pairs} pairs at {size[0]}x{size[1]} (baseline {args.baseline_pairs})")
    print_table(["run", "models", "pairs/s", "vs baseline", "ms/pair"] + stages, rows)
    rate = runs["defaults"][0]
    verdict = "met" if rate >= TARGET_PAIRS_PER_S else "NOT met"
    print(f"target >= {TARGET_PAIRS_PER_S:g} pairs/s with the defaults: {verdict} ({rate:.2f})")


def node_table(args: argparse.Namespace, size: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "sosmaskfuse_core.cli", "demo", "--out", tmp,
            "--camera-size", str(size[0]), str(size[1]), "--rate", str(args.rate),
            "--frames", str(args.frames), "--device", args.device,
            "--autoencoder", args.autoencoder, "--precision", args.precision,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        print(f"node: the demo failed:\n{proc.stdout}\n{proc.stderr[-2000:]}")
        return
    text = proc.stdout
    rate = float(re.search(r"throughput: ([\d.]+) fused", text).group(1))  # type: ignore[union-attr]
    median = float(re.search(r"median (\d+) ms", text).group(1))  # type: ignore[union-attr]
    print(f"\nnode: cameras {size[0]}x{size[1]} at {args.rate:g} Hz, {args.frames} frames")
    for line in text.splitlines():
        if line.startswith(("throughput", "latency", "time per pair", "models")):
            print(f"  {line}")
    fps_ok = "met" if rate >= TARGET_PAIRS_PER_S else "NOT met"
    lat_ok = "met" if median <= TARGET_LATENCY_MS else "NOT met"
    print(
        f"target >= {TARGET_PAIRS_PER_S:g} fused frames/s: {fps_ok} ({rate:.2f}); "
        f"median latency <= {TARGET_LATENCY_MS:g} ms: {lat_ok} ({median:.0f} ms)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="640x480", help="W x H (default 640x480)")
    ap.add_argument("--pairs", type=int, default=40, help="pairs of the defaults' bag run")
    ap.add_argument("--baseline-pairs", type=int, default=4, help="pairs of the baseline's run")
    ap.add_argument("--node", action="store_true", help="also run the node (sosmaskfuse demo)")
    ap.add_argument("--no-bag", dest="bag", action="store_false", help="leave out the bag runs")
    ap.add_argument("--rate", type=float, default=15.0, help="camera rate for --node (Hz)")
    ap.add_argument("--frames", type=int, default=60, help="fused frames for --node")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--autoencoder", default="auto")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    size = parse_size(args.size)
    retain_freed_host_memory()  # as `sosmaskfuse bag` does on the CPU
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, numpy {np.__version__}"
    )
    started = time.perf_counter()
    if args.bag:
        bag_table(args, size)
    if args.node:
        node_table(args, size)
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
