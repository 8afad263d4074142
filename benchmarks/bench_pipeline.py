r"""Per-pair fusion time of every backend and precision, and of the lite model, in one run.

    python benchmarks/bench_pipeline.py [--size 640x480] [--device auto] [--repeat 3] \
        [--rows ROW ...] [--lite PATH]

Baseline: the reference implementation's structure (`bench_common.reference_structure`): the
encoder called once per split image (four calls), the decoder once, PyTorch fp32 NCHW. Every
other row is `FusionPipeline` on the same pair (a synthetic street at --size) and the same
8-bit mask, with the shipped weights (random ones when a file is absent; the table says so).
Calls are interleaved round by round and each row's median is printed, as ms per pair,
pairs/s and the speed-up over the baseline, with the fraction of pixels of the fused image
within 1 gray level of the baseline's (3 for bf16/fp16 rows; the lite rows against the
lite model's own reference-structure run). GFLOP/pair is counted from the model
(convolutions' MACs x 2); the achieved rate is set against the analytic peak (stated under
the table) and against a large convolution measured in the same process.
"""

from __future__ import annotations

import argparse
import sys

import torch
from bench_common import (
    autoencoder,
    clone,
    conv_ceiling_gflops,
    cpu_peak_gflops,
    parse_size,
    peak_rss_mb,
    print_table,
    reference_structure,
    scene_pair,
    time_interleaved,
    within,
)

from sosmaskfuse_core.models.flops import fused_pair_gflop
from sosmaskfuse_core.pipeline.backends import onnxruntime_available
from sosmaskfuse_core.pipeline.devices import resolve_device
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig

# name -> (model, backend, precision, backend options)
CPU_ROWS = {
    "torch-fp32-nchw": ("full", "torch", "fp32", {"channels_last": False}),
    "torch-fp32": ("full", "torch", "fp32", {}),
    "onnxruntime-fp32": ("full", "onnxruntime", "fp32", {}),
    "torch-bf16": ("full", "torch", "bf16", {}),
    "lite-torch-fp32": ("lite", "torch", "fp32", {}),
    "lite-onnxruntime-fp32": ("lite", "onnxruntime", "fp32", {}),
    "lite-torch-bf16": ("lite", "torch", "bf16", {}),
}
CUDA_ROWS = {
    "torch-fp32-eager": ("full", "torch", "fp32", {"cuda_graphs": False}),
    "torch-fp32-graphs": ("full", "torch", "fp32", {}),
    "torch-fp16-eager": ("full", "torch", "fp16", {"cuda_graphs": False}),
    "torch-fp16-graphs": ("full", "torch", "fp16", {}),
    "torch-bf16-graphs": ("full", "torch", "bf16", {}),
    "lite-torch-fp16-graphs": ("lite", "torch", "fp16", {}),
}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="640x480", help="W x H (default 640x480)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds after one warm-up")
    ap.add_argument("--rows", nargs="+", help="only these rows (default: all that can run)")
    ap.add_argument("--lite", default="lite", help="lite weights file (default: the shipped one)")
    args = ap.parse_args()
    w, h = parse_size(args.size)
    device = resolve_device(args.device)
    catalogue = CUDA_ROWS if device.type == "cuda" else CPU_ROWS
    rows = {k: v for k, v in catalogue.items() if not args.rows or k in args.rows}
    if not onnxruntime_available():
        skipped = [k for k, v in rows.items() if v[1] == "onnxruntime"]
        rows = {k: v for k, v in rows.items() if k not in skipped}
        if skipped:
            print(f"onnxruntime is not installed: left out {', '.join(skipped)}")
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        rows = {k: v for k, v in rows.items() if v[2] != "bf16"}

    ir, vis, mask = scene_pair(w, h)
    models = {"full": autoencoder("full"), "lite": autoencoder(args.lite)}
    used = {v[0] for v in rows.values()} | {"full"}
    threads = torch.get_num_threads()
    print(f"device {device}, {w}x{h}, torch {torch.__version__}, {threads} CPU threads")
    for name in sorted(used):
        print(f"  {name} autoencoder: {models[name][1]}")

    runs, pipes = {}, {}
    baselines = {}
    for name in sorted(used):
        baselines[name] = f"reference-structure{'' if name == 'full' else '-' + name}"
        runs[baselines[name]] = reference_structure(
            clone(models[name][0]).to(device), ir, vis, mask, device
        )
    for row, (model, backend, precision, options) in rows.items():
        pipes[row] = FusionPipeline(
            clone(models[model][0]),
            device=device,
            config=PipelineConfig.paper(precision=precision),  # the reference structure's mode
            backend=backend,
            backend_options=options,
        )
        runs[row] = (lambda p: lambda: p(ir, vis, mask, outputs=("fused",)).fused)(pipes[row])
    outputs = {name: fn() for name, fn in runs.items()}
    times = time_interleaved(runs, args.repeat, device)

    gflop = {name: sum(fused_pair_gflop(clone(m[0]), h, w).values()) for name, m in models.items()}
    if device.type == "cpu":
        peak32, peak16, why = cpu_peak_gflops(threads)
    else:
        peak32 = peak16 = float("nan")
        why = "GPU: see the measured ceiling"
    ceiling = {
        p: conv_ceiling_gflops(d, device)
        for p, d in (("fp32", torch.float32), ("bf16", torch.bfloat16))
        + ((("fp16", torch.float16),) if device.type == "cuda" else ())
    }

    base_time = times[baselines["full"]]
    table = []
    for name, t in times.items():
        model = next((m for m, b in baselines.items() if b == name), None)
        precision = "fp32"
        if model is None:
            model, _, precision, _ = rows[name]
        levels = 1 if precision == "fp32" else 3
        agree = within(outputs[name], outputs[baselines[model]], levels)
        rate = gflop[model] / t
        peak = peak32 if precision == "fp32" else peak16
        table.append(
            [
                name,
                f"{1000 * t:.0f}",
                f"{1 / t:.2f}",
                f"x{base_time / t:.2f}",
                f"{100 * agree:.2f}% (<= {levels})",
                f"{gflop[model]:.1f}",
                f"{rate:.0f}",
                f"{100 * rate / peak:.0f}%" if peak == peak else "-",
                f"{100 * rate / ceiling.get(precision, float('nan')):.0f}%",
            ]
        )
    print_table(
        [
            "row",
            "ms/pair",
            "pairs/s",
            "vs reference",
            "pixels within",
            "GFLOP/pair",
            "GFLOP/s",
            "of peak",
            "of conv ceiling",
        ],
        table,
    )
    print(f"analytic peak: {why}")
    print(
        "measured conv ceiling (3x3, 256->256, NHWC, one call): "
        + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in ceiling.items())
    )
    if device.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MB")
    else:
        print(f"process peak resident memory: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
