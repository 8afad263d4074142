r"""The GPU table: SOS network + fusion per pair, by size, precision and eager vs CUDA graphs.

    python benchmarks/bench_gpu.py [--sizes 320x256 640x480 1280x1024] [--iters 20] \
        [--budget 240] [--csv FILE]

Each row is one `FusionPipeline` on a CUDA device fusing the same synthetic street pair at
the row's size, mask from the SOS network (HRNetV2-W30, random weights, at the image size
rounded down to a multiple of 32), the shipped autoencoder (or the lite one), NumPy in and out
(so the one upload and one copy back are inside the time). `graphs` rows replay one CUDA graph
per call after the first two (eager, then capture). Columns: median ms per pair, pairs/s, the
first two calls (eager + capture), peak CUDA memory of the row, the rate (SOS network and
autoencoder convolutions, counted from the models, over the time), and the fraction of pixels of
the fused image within 1 (fp32) / 3 (fp16, bf16) gray levels of the fp32 eager row. fp32 is
plain fp32 (the pipeline turns TF32 off for it); fp16 and bf16 use the tensor cores. Rows
that would outrun --budget seconds are left out and listed. Without a CUDA device it says so
and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time

import torch
from bench_common import (
    autoencoder,
    clone,
    parse_size,
    peak_rss_mb,
    print_table,
    scene_pair,
    synchronize,
    within,
)

from sosmaskfuse_core.models.flops import fused_pair_gflop, network_gflop
from sosmaskfuse_core.models.sos_hrnet import SOSNet
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig

VARIANTS = [  # (model, precision, graphs)
    ("full", "fp32", False),
    ("full", "fp32", True),
    ("full", "fp16", False),
    ("full", "fp16", True),
    ("full", "bf16", False),
    ("full", "bf16", True),
    ("lite", "fp16", True),
]


def run_row(pipe, ir, vis, iters: int) -> tuple[list[float], float, object]:
    synchronize(pipe.device)
    t = time.perf_counter()
    out = None
    for _ in range(2):  # eager, then (graphs) the capture
        out = pipe(ir, vis, outputs=("fused", "mask_u8"))
    synchronize(pipe.device)
    first = time.perf_counter() - t
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        out = pipe(ir, vis, outputs=("fused", "mask_u8"))  # NumPy out: synchronised
        times.append(time.perf_counter() - t)
    return times, first, out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="+", default=["320x256", "640x480", "1280x1024"])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--budget", type=float, default=240.0, help="seconds for all rows")
    ap.add_argument("--csv", help="also write the rows to this CSV file")
    ap.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="run the script's logic on the CPU (tiny sizes; to check it without a GPU)",
    )
    args = ap.parse_args()
    if args.cpu_dry_run:
        device = torch.device("cpu")
        print(f"CPU dry run, torch {torch.__version__}")
    elif not torch.cuda.is_available():
        print("bench_gpu: no CUDA device visible to PyTorch: nothing to measure")
        return 0
    else:
        device = torch.device("cuda")
        props = torch.cuda.get_device_properties(device)
        print(f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")
    models = {"full": autoencoder("full"), "lite": autoencoder("lite")}
    for name, (_, what) in models.items():
        print(f"  {name} autoencoder: {what}")
    torch.manual_seed(0)
    sosnet = SOSNet().eval()
    start = time.perf_counter()
    rows, left_out, reference = [], [], {}
    for size in args.sizes:
        w, h = parse_size(size)
        ir, vis, _ = scene_pair(w, h)
        sos_gflop = network_gflop(clone(sosnet), h // 32 * 32, w // 32 * 32, device)
        gflop = {
            m: sos_gflop + sum(fused_pair_gflop(clone(ae), h, w, device).values())
            for m, (ae, _) in models.items()
        }
        for model, precision, graphs in VARIANTS:
            label = f"{size} {model} {precision} {'graphs' if graphs else 'eager'}"
            if device.type == "cpu" and precision == "fp16":
                left_out.append(f"{label} (fp16 needs CUDA)")
                continue
            if (
                device.type == "cuda"
                and precision == "bf16"
                and not torch.cuda.is_bf16_supported()
            ):
                left_out.append(f"{label} (no bf16 on this GPU)")
                continue
            if time.perf_counter() - start > args.budget:
                left_out.append(f"{label} (over the --budget)")
                continue
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            pipe = FusionPipeline(
                clone(models[model][0]),
                clone(sosnet),
                device=device,
                config=PipelineConfig(precision=precision, sos_size=None),
                backend_options={"cuda_graphs": graphs},
            )
            try:
                times, first, out = run_row(pipe, ir, vis, args.iters)
            except RuntimeError as exc:  # e.g. out of memory: report, go on
                left_out.append(f"{label} ({type(exc).__name__}: {str(exc).splitlines()[0]})")
                del pipe
                continue
            peak = (
                torch.cuda.max_memory_allocated(device) / 2**20
                if device.type == "cuda"
                else peak_rss_mb()
            )
            captures = pipe.backend.graphs.captures if pipe.backend.graphs else 0
            del pipe
            t = statistics.median(times)
            key = (size, model)
            if precision == "fp32" and not graphs:
                reference[key] = out.fused
            levels = 1 if precision == "fp32" else 3
            agree = within(out.fused, reference[key], levels) if key in reference else None
            rows.append(
                [
                    size,
                    model,
                    precision,
                    "graphs" if graphs else "eager",
                    f"{1000 * t:.2f}",
                    f"{1 / t:.1f}",
                    f"{1000 * first:.0f}",
                    f"{peak:.0f}",
                    f"{gflop[model] / t / 1000:.1f}",  # SOS network + autoencoder
                    "-" if agree is None else f"{100 * agree:.2f}% (<= {levels})",
                    str(captures),
                ]
            )
    header = [
        "size",
        "model",
        "precision",
        "mode",
        "ms/pair",
        "pairs/s",
        "first 2 calls ms",
        "peak MB",
        "TFLOP/s",
        "pixels within",
        "graphs captured",
    ]
    print()
    print_table(header, rows)
    for item in left_out:
        print(f"left out: {item}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
