"""Time the classical thermal mask and the synthetic street, against a baseline in this process.

    python benchmarks/bench_frame_tools.py [--repeat 10]

The test suite does not time anything; these figures used to be test bounds (the mask under
50 ms at 640x512, a 320x256 street frame under 25 ms). The baseline is one 5x5 Gaussian blur
(OpenCV) of a frame of the same size, run here, so the printed ratios ("blurs per frame") can
be compared across machines and loads; the milliseconds are for this machine only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "test"))

from test_thermal_mask import blob_scene  # noqa: E402

from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker  # noqa: E402
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene  # noqa: E402


def median_ms(function: Callable[[int], object], repeat: int) -> float:
    """Median of ``repeat`` timed runs after one warm-up run, in milliseconds."""
    function(0)
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        function(i)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def blur_ms(shape: tuple[int, ...], repeat: int) -> float:
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    return median_ms(lambda i: cv2.GaussianBlur(frame, (5, 5), 1.0), repeat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed runs; the median counts")
    args = parser.parse_args(argv)

    image, _ = blob_scene(h=512, w=640, seed=7)
    masker = ThermalHotObjectMasker()
    scene = SyntheticScene(320, 256, seed=0)
    rows = [
        (
            "thermal hot-object mask 640x512",
            median_ms(lambda i: masker(image), args.repeat),
            blur_ms((512, 640), args.repeat),
            50.0,
        ),
        (
            "synthetic street 320x256",
            median_ms(lambda i: scene.render(0.1 * i), args.repeat),
            blur_ms((256, 320, 3), args.repeat),
            25.0,
        ),
    ]
    print(f"median of {args.repeat} runs; baseline: one 5x5 Gaussian blur of a frame that size")
    print(f"{'job':<34} {'ms':>8} {'blur ms':>8} {'blurs':>8} {'old bound ms':>13}")
    for name, ms, base, bound in rows:
        print(f"{name:<34} {ms:8.2f} {base:8.3f} {ms / base:8.1f} {bound:13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
