"""Time the fusion metrics: per-metric ms on one frame, and the speed-up over the slow references.

    python benchmarks/bench_metrics.py [--size 640x480] [--repeat 5] [--slow-size 48]

The frame is a deterministic synthetic (infrared, visible, fused) triple. The slow, loop-based
references of test/test_metrics.py are far too slow for a full frame, so the speed-up is
measured on a --slow-size square crop, with both implementations run in this process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "test"))

from test_metrics import SLOW  # noqa: E402

from sosmaskfuse_core.evaluation import metrics

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
FUSED_ONLY = {"EN", "SD", "SF", "AG"}


def fast_metric(name: str) -> Metric:
    """The metrics-module function of ``name`` as a (fused, ir, vis) callable."""
    function = getattr(metrics, name.lower())
    if name in FUSED_ONLY:
        return lambda f, a, b: function(f)
    return function


def synthetic_triple(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Smooth structure plus noise, quantised to 8 bits: infrared, visible, and their average."""
    rng = np.random.default_rng(seed)
    shape = (height, width)
    ir = ndimage.gaussian_filter(rng.normal(0, 1, shape), 6) * 600 + rng.normal(100, 8, shape)
    vis = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2) * 300 + rng.normal(130, 15, shape)
    ir, vis = (np.clip(x, 0, 255).round() for x in (ir, vis))
    return np.round((ir + vis) / 2), ir, vis


def best_ms(function: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="640x480", help="frame WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing; the best counts")
    parser.add_argument(
        "--slow-size", type=int, default=48, help="crop side for the slow references"
    )
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    f, a, b = synthetic_triple(width, height)
    print(f"frame {width}x{height}, best of {args.repeat} runs")
    print(f"{'metric':<6} {'ms':>9}")
    total = 0.0
    for name in metrics.METRIC_NAMES:
        ms = best_ms(lambda: fast_metric(name)(f, a, b), args.repeat)
        total += ms
        print(f"{name:<6} {ms:9.1f}")
    print(f"{'sum':<6} {total:9.1f}")
    print(
        f"{'all':<6} {best_ms(lambda: metrics.compute_all(f, a, b), args.repeat):9.1f}"
        "   (compute_all)"
    )

    side = args.slow_size
    crop = [x[:side, :side] for x in (f, a, b)]
    print(
        f"\nspeed-up over the slow references on a {side}x{side} crop "
        "(SSIM has none: scikit-image)"
    )
    print(f"{'metric':<6} {'fast ms':>9} {'slow ms':>9} {'ratio':>8}")
    fast_total = slow_total = 0.0
    for name in metrics.METRIC_NAMES:
        if name not in SLOW:
            continue
        fast_ms = best_ms(lambda: fast_metric(name)(*crop), args.repeat)
        slow_ms = best_ms(lambda: SLOW[name](*crop), 1)
        fast_total += fast_ms
        slow_total += slow_ms
        print(f"{name:<6} {fast_ms:9.2f} {slow_ms:9.1f} {slow_ms / fast_ms:7.0f}x")
    print(f"{'total':<6} {fast_total:9.2f} {slow_total:9.1f} {slow_total / fast_total:7.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
