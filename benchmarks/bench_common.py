"""Shared pieces of the speed benchmarks: inputs, weights, the reference structure, timing, tables.

Not a benchmark itself: `bench_pipeline.py` (CPU and any device) and `bench_gpu.py` (the GPU
table of `device_check.sh`) import it.
"""

from __future__ import annotations

import copy
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder
from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER, SHIPPED_AUTOENCODER_LITE
from sosmaskfuse_core.pipeline import preprocessing as pp
from sosmaskfuse_core.pipeline.strategies import imvf
from sosmaskfuse_core.thermal.agc import stretch_to_uint8
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene

LITE_CONFIG = AutoencoderConfig(widths=(8, 16, 32, 48), stem_channels=8)


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def scene_pair(
    width: int, height: int, t: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic street at time t (8-bit thermal, BGR visible, a soft 8-bit mask)."""
    frame = SyntheticScene(width, height, seed=0).render(t)
    counts = frame.thermal.astype(np.float32)
    thermal = stretch_to_uint8(counts, *np.percentile(counts, (1, 99)))
    visible = cv2.cvtColor(frame.visible, cv2.COLOR_RGB2BGR)
    mask = cv2.GaussianBlur(frame.mask, (5, 5), 0)  # a soft 8-bit mask, like the reference's
    return thermal, visible, mask


def autoencoder(which: str) -> tuple[IMVFAutoencoder, str]:
    """('full' | 'lite' | a path) -> (model, what it is): shipped weights, or random ones."""
    path = {"full": SHIPPED_AUTOENCODER, "lite": SHIPPED_AUTOENCODER_LITE}.get(which, which)
    if Path(path).is_file():
        model, _ = load_autoencoder(path)
        return model, str(path)
    torch.manual_seed(0)
    config = LITE_CONFIG if which == "lite" else AutoencoderConfig()
    return IMVFAutoencoder(config).eval(), f"random weights ({path} is absent)"


def clone(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model)


def reference_structure(
    ae: IMVFAutoencoder, ir: np.ndarray, vis: np.ndarray, mask: np.ndarray, device: torch.device
) -> Callable[[], np.ndarray]:
    """The authors' way of running one pair: four encoder calls, the decoder, fp32, NCHW.

    Inputs are converted as the pipeline converts them (gray levels 0..255, the 8-bit mask).
    """
    ir_t = torch.from_numpy(ir).float()[None, None].to(device)
    vis_t = pp.luma_u8(torch.from_numpy(vis).permute(2, 0, 1)[None]).float().to(device)
    m = torch.from_numpy(mask).float()[None, None].to(device) / 255.0

    def run() -> np.ndarray:
        with torch.inference_mode():
            parts = (ir_t * m, ir_t * (1 - m), vis_t * m, vis_t * (1 - m))
            a, b, c, d = (ae.encoder(x) for x in parts)
            fused = [imvf(*levels) for levels in zip(a, b, c, d)]
            return pp.minmax_to_u8(ae.decoder(fused))[0, 0].cpu().numpy()

    return run


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    runs: dict[str, Callable[[], object]], repeat: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round by round.

    Each function is called once first (warm-up, not timed). Interleaving spreads the load
    of a shared machine over all rows alike, so their ratios stay meaningful.
    """
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            synchronize(device)
            t = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def within(a: np.ndarray, b: np.ndarray, levels: int) -> float:
    """Fraction of pixels whose gray levels differ by at most `levels`."""
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)) <= levels).mean())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def conv_ceiling_gflops(dtype: torch.dtype, device: torch.device, seconds: float = 2.0) -> float:
    """Measured rate of a large 3x3 convolution (256 -> 256 channels, NHWC) on this machine.

    The practical ceiling the library (oneDNN / cuDNN) reaches on dense convolution work.
    """
    h, w = (240, 320) if device.type == "cpu" else (512, 512)
    n = 1 if device.type == "cpu" else 8
    x = torch.randn(n, 256, h, w, device=device, dtype=dtype)
    wt = torch.randn(256, 256, 3, 3, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    wt = wt.contiguous(memory_format=torch.channels_last)
    flop = 2 * n * 256 * 256 * 9 * h * w
    with torch.inference_mode():
        torch.nn.functional.conv2d(x, wt, padding=1)
        best, spent = float("inf"), 0.0
        while spent < seconds:
            synchronize(device)
            t = time.perf_counter()
            torch.nn.functional.conv2d(x, wt, padding=1)
            synchronize(device)
            dt = time.perf_counter() - t
            best, spent = min(best, dt), spent + dt
    return flop / best / 1e9


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table (what docs/performance.md holds)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_peak_gflops(cores: int) -> tuple[float, float, str]:
    """(fp32, bf16) analytic peak GFLOP/s of `cores` cores, and the reasoning behind it.

    FMA lanes x 2 FLOP x FMA pipes x clock. The clock is the one /proc/cpuinfo reports (in a
    VM, the nominal one; any boost above it makes the true peak higher).
    """
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    family = int(info.get("cpu family", "0") or 0)
    amd = info.get("vendor_id") == "AuthenticAMD"
    ghz = float(info.get("cpu MHz", "0") or 0) / 1000 or 2.0
    if amd and family >= 26 and "avx512f" in flags:
        per_cycle, why = 64, "Zen 5 (family 26): two full-width 512-bit FMA pipes"
    elif amd and "avx512f" in flags:
        per_cycle, why = 32, "Zen 4: two FMA pipes, 512-bit ops in two 256-bit halves"
    elif "avx512f" in flags:
        per_cycle, why = 64, "two 512-bit FMA units"
    elif "fma" in flags:
        per_cycle, why = 32, "two 256-bit FMA units"
    else:
        per_cycle, why = 8, "no FMA"
    bf16 = 2 if "avx512_bf16" in flags or "amx_bf16" in flags else 1
    fp32_peak = cores * per_cycle * ghz
    why = (
        f"{cores} cores x {per_cycle} fp32 FLOP/cycle ({why}) x {ghz:.2f} GHz = "
        f"{fp32_peak:.0f} GFLOP/s fp32"
        + (f", x2 in bf16 (AVX512_BF16 dot products) = {2 * fp32_peak:.0f}" if bf16 == 2 else "")
    )
    return fp32_peak, bf16 * fp32_peak, why
