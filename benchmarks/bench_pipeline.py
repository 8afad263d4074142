r"""Time and size the fusion pipeline against the reference's way of running it, in one process.

    python benchmarks/bench_pipeline.py [--size 320x256] [--device auto] \
        [--precision fp32] [--repeat 3]

Baseline: the reference implementation's structure — the encoder called once per split
image (four calls), the decoder once, fp32, no batching. Ours: `FusionPipeline` (one batched
encoder call over the four images, optional fp16/bf16). Both use the same random-weight
networks and inputs, so the printed ratios compare structure and precision, not weights.
Prints ms per frame (median), frames/s, the speed-up, and peak memory (CUDA: allocator peak;
CPU: the process's peak resident set).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder
from sosmaskfuse_core.models.sos_hrnet import SOSNet
from sosmaskfuse_core.pipeline import preprocessing as pp
from sosmaskfuse_core.pipeline.devices import resolve_device
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig
from sosmaskfuse_core.pipeline.strategies import imvf


def reference_style(
    ae: IMVFAutoencoder, ir: torch.Tensor, vis: torch.Tensor, m: torch.Tensor
) -> torch.Tensor:
    """Four separate encoder calls, as the reference code runs them."""
    with torch.inference_mode():
        a, b, c, d = (ae.encoder(x) for x in (ir * m, ir * (1 - m), vis * m, vis * (1 - m)))
        fused = [imvf(*levels) for levels in zip(a, b, c, d)]
        return pp.minmax_to_u8(ae.decoder(fused))


def timed(fn, repeat: int, device: torch.device) -> float:
    fn()  # warm-up (allocator, kernels)
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="320x256", help="W x H (default 320x256)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--sos",
        action="store_true",
        help="also time the SOS network (640x480 input, as the paper)",
    )
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    device = resolve_device(args.device)
    torch.manual_seed(0)
    ae = IMVFAutoencoder().eval().to(device)
    rng = np.random.default_rng(0)
    ir_np = rng.integers(0, 256, (h, w), dtype=np.uint8)
    vis_np = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask_np = rng.integers(0, 256, (h, w), dtype=np.uint8)

    ir = torch.from_numpy(ir_np).float()[None, None].to(device)
    vis = pp.luma_u8(torch.from_numpy(vis_np).permute(2, 0, 1)[None]).float().to(device)
    m = torch.from_numpy(mask_np).float()[None, None].to(device) / 255
    print(
        f"device {device}, {w}x{h}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )

    base = timed(lambda: reference_style(ae, ir, vis, m), args.repeat, device)
    base_mem = peak_memory_mb(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    pipe = FusionPipeline(ae, device=device, config=PipelineConfig(precision=args.precision))
    ours = timed(lambda: pipe(ir_np, vis_np, mask_np), args.repeat, device)
    ours_mem = peak_memory_mb(device)
    mem = (lambda mb: f"  peak {mb:7.0f} MB") if device.type == "cuda" else (lambda mb: "")
    print(
        f"reference-style fusion (4 encoder calls, fp32): {1000 * base:8.1f} ms/frame  "
        f"{1 / base:6.2f} frames/s" + mem(base_mem)
    )
    print(
        f"FusionPipeline ({args.precision}, batched encoder):      {1000 * ours:8.1f} ms/frame  "
        f"{1 / ours:6.2f} frames/s" + mem(ours_mem)
    )
    if device.type != "cuda":
        print(f"process peak resident memory: {ours_mem:.0f} MB")
    print(f"speed-up over the reference structure: x{base / ours:.2f}")
    if args.sos:
        sos = SOSNet().eval().to(device)
        x = torch.randn(1, 1, 480, 640, device=device)
        with torch.inference_mode():
            t = timed(lambda: sos(x), args.repeat, device)
        print(f"SOS network at 640x480 (fp32): {1000 * t:8.1f} ms/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
