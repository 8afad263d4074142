"""Calibration accuracy and run time: which measure aligns thermal to visible, and how well.

    OMP_NUM_THREADS=1 python benchmarks/bench_calibration.py [--data ../shared/data]
        [--trials 2] [--counts 1,3,10,30] [--warps shift,scale,rotation,perspective,combined]
        [--skip-features] [--skip-table] [--skip-boards]

Real aligned pairs of ../shared/data (M3SVD video frames, RoadScene, TNO) become a rig: a
640x512 thermal camera and an 800x600 visible one, the thermal image warped by a known
homography (`calibration.synthetic.project_pair`). Errors are in thermal pixels (at 640x512):
`overlap` at the corners of what both cameras see (the fused image), `corners` at the thermal
image's own corners (extrapolated where the thermal camera sees more than the visible one).

1. Measures (single frames, the aligned pairs as they are, 160 px wide for the global search):
   how often the best shift within +-24 coarse px is the right one (within 2 coarse px = 8 px
   at 640), and at 320 px wide how far the peak near the truth sits from it (px at 640).
2. Targetless calibration by warp type and frame count (median over trials x sources).
   `floor`: the refinement started at the truth, 10 frames: how far the data set's own
   registration lets any estimate get.
3. Target-based calibration on rendered boards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sosmaskfuse_core.calibration import (  # noqa: E402
    BoardSpec,
    CalibrationRefused,
    FramePair,
    TargetlessOptions,
    calibrate_target,
    calibrate_targetless,
    corner_error,
    overlap_error,
    rig_homography,
)
from sosmaskfuse_core.calibration.features import (  # noqa: E402
    correlate,
    orientation_field,
    padded_shape,
    peak,
    spectrum,
)
from sosmaskfuse_core.calibration.geometry import grid_error  # noqa: E402
from sosmaskfuse_core.calibration.refine import refine  # noqa: E402
from sosmaskfuse_core.calibration.synthetic import (  # noqa: E402
    aligned_pairs,
    board_views,
    project_pair,
)

T, V = (640, 512), (800, 600)
SOURCES = {  # name: (data set, video)
    "m3svd-0113": ("m3svd", "0113_1714"),
    "m3svd-0117": ("m3svd", "0117_1605"),
    "roadscene": ("roadscene", ""),
    "tno": ("tno", ""),
}
WARPS = ("shift", "scale", "rotation", "perspective", "combined")


def sample_warp(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A homography of one kind: shift +-40 px, scale 0.8-1.25, rotation +-5 deg, perspective."""
    shift, scale, rotation, persp = (0.0, 0.0), 1.0, 0.0, (0.0, 0.0)
    if kind in ("shift", "combined"):
        shift = tuple(rng.uniform(-40, 40, 2))
    if kind in ("scale", "combined"):
        scale = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    if kind in ("rotation", "combined"):
        rotation = float(rng.uniform(-5, 5))
    if kind in ("perspective", "combined"):
        persp = tuple(rng.uniform(-0.03, 0.03, 2))
    return rig_homography(T, V, shift=shift, scale=scale, rotation_deg=rotation, perspective=persp)


def spread(items: list, n: int) -> list:
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


# --- 1. which measure -------------------------------------------------------------------------


def _zero_mean(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x - x.mean(axis=(0, 1), keepdims=True)


def _features(kind: str, gray: np.ndarray) -> np.ndarray:
    g = gray.astype(np.float32)
    if kind == "intensity":
        return _zero_mean(g)[..., None]
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    if kind == "gradient magnitude":
        return _zero_mean(cv2.GaussianBlur(np.hypot(gx, gy), (0, 0), 1.0))[..., None]
    if kind == "NGF (squared cosine)":
        e = float(np.median(gx * gx + gy * gy)) + 1e-3
        n = np.sqrt(gx * gx + gy * gy + e)
        nx, ny = gx / n, gy / n
        return np.dstack([nx * nx, np.sqrt(2) * nx * ny, ny * ny])
    return orientation_field(gray)


def _corr_surface(kind: str, ir: np.ndarray, vis: np.ndarray, pad: int) -> np.ndarray:
    ft, fv = _features(kind, ir), _features(kind, vis)
    shape = padded_shape(ir.shape[:2], pad)
    total = 0
    for c in range(ft.shape[2]):  # one complex correlation per pair of channels
        a = np.dstack([fv[..., c], np.zeros_like(fv[..., c])])
        b = np.dstack([ft[..., c], np.zeros_like(ft[..., c])])
        total = total + correlate(spectrum(a, shape), spectrum(b, shape))
    return total / (np.linalg.norm(ft) * np.linalg.norm(fv) + 1e-12)


def _mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    joint = (
        np.bincount(
            (a // (256 // bins)).ravel() * bins + (b // (256 // bins)).ravel(),
            minlength=bins * bins,
        )
        .reshape(bins, bins)
        .astype(np.float64)
    )
    joint /= joint.sum()
    pa, pb = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())


def _mi_surface(ir: np.ndarray, vis: np.ndarray, reach: int, step: float = 1.0) -> tuple:
    """MI of vis(x) and ir(x - t) over a grid of shifts t (the inner part, whole pixels)."""
    h, w = vis.shape
    shifts = np.arange(-reach, reach + 1e-9, step)
    surface = np.zeros((len(shifts), len(shifts)))
    inner = (slice(reach, h - reach), slice(reach, w - reach))
    for iy, dy in enumerate(shifts):
        for ix, dx in enumerate(shifts):
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            moved = cv2.warpAffine(ir, m, (w, h), flags=cv2.INTER_LINEAR)
            surface[iy, ix] = _mutual_information(moved[inner], vis[inner])
    return shifts, surface


MEASURES = (
    "intensity",
    "gradient magnitude",
    "NGF (squared cosine)",
    "orientation field",
    "mutual information",
)


def measure_table(data: Path, pairs_per_source: int = 8) -> None:
    print("\n## 1. Which measure finds the alignment (single frames, as registered)\n")
    print(
        "| measure | found (global search, 160 px) | peak offset at 320 px "
        "(px at 640, median) | ms per frame |"
    )
    print("|---|---:|---:|---:|")
    pairs = []
    for name, (source, video) in SOURCES.items():
        pairs += aligned_pairs(data, source, pairs_per_source, video=video or "0113_1714")
    for kind in MEASURES:
        found, offsets, seconds = 0, [], 0.0
        for ir, vis in pairs:
            small = [cv2.resize(x, (160, 120), interpolation=cv2.INTER_AREA) for x in (ir, vis)]
            mid = [cv2.resize(x, (320, 240), interpolation=cv2.INTER_AREA) for x in (ir, vis)]
            start = time.perf_counter()
            if kind == "mutual information":
                shifts, surf = _mi_surface(small[0], small[1], 24, 2.0)
                iy, ix = np.unravel_index(np.argmax(surf), surf.shape)
                best = (shifts[ix], shifts[iy])
                shifts, surf = _mi_surface(mid[0], mid[1], 3, 0.25)
                iy, ix = np.unravel_index(np.argmax(surf), surf.shape)
                fine = (shifts[ix], shifts[iy])
            else:
                best = peak(_corr_surface(kind, small[0], small[1], 24), (24, 24)).shift
                fine = peak(_corr_surface(kind, mid[0], mid[1], 6), (3, 3)).shift
            seconds += time.perf_counter() - start
            found += max(abs(best[0]), abs(best[1])) <= 2
            offsets.append(2 * float(np.hypot(*fine)))  # 320 px -> 640 px
        n = len(pairs)
        print(
            f"| {kind} | {found}/{n} ({100 * found / n:.0f}%) | {statistics.median(offsets):.2f} "
            f"| {1e3 * seconds / n:.0f} |"
        )


# --- 2. targetless by warp and frame count ------------------------------------------------------


def med(x: list[float]) -> str:
    return f"{statistics.median(x):.2f}" if x else "-"


def rig_frames(pairs, h) -> list[FramePair]:
    return [
        FramePair(f"f{i}", *project_pair(ir, vis, h, T, V, crop=0.8))
        for i, (ir, vis) in enumerate(pairs)
    ]


def targetless_table(data: Path, warps, counts, trials: int) -> None:
    names = list(SOURCES)
    print("\n## 2. Targetless calibration, thermal px at 640x512\n")
    print(
        f"Overlap-corner error, mean of the corners, median of {trials} warp(s) per source; "
        "`all`: median and max over every run; min_frames=1 so that 1 and 3 frames run (the "
        "command needs 5 by default). TNO has 20 pairs: 30 frames are its 20.\n"
    )
    print(
        f"| warp | frames | {' | '.join(names)} | all: median | max | corners median "
        "| refused | s per run |"
    )
    print("|---|---:|" + "---:|" * (len(names) + 5))
    loaded = {
        name: aligned_pairs(data, s, max(counts), video=v or "0113_1714")
        for name, (s, v) in SOURCES.items()
    }
    options = TargetlessOptions(min_frames=1)
    rng = np.random.default_rng(2024)
    for warp in warps:
        truths = [sample_warp(warp, rng) for _ in range(trials)]
        for count in counts:
            per: dict[str, list[float]] = {n: [] for n in names}
            worst, corner, refused, times = [], [], 0, []
            for h in truths:
                for name, pairs in loaded.items():
                    frames = rig_frames(spread(pairs, count), h)
                    start = time.perf_counter()
                    try:
                        result = calibrate_targetless(frames, options)
                    except CalibrationRefused:
                        refused += 1
                        continue
                    finally:
                        times.append(time.perf_counter() - start)
                    e = overlap_error(result.homography, h, T, V)
                    per[name].append(float(e.mean()))
                    worst.append(float(e.max()))
                    corner.append(float(corner_error(result.homography, h, T).mean()))
            every = [v for n in names for v in per[n]]
            print(
                f"| {warp} | {count} | {' | '.join(med(per[n]) for n in names)} | {med(every)} "
                f"| {max(worst) if worst else float('nan'):.1f} | {med(corner)} "
                f"| {refused}/{len(times)} | {statistics.median(times):.1f} |",
                flush=True,
            )
    print("\n### floor: the refinement started at the truth (10 frames, combined warps)\n")
    print("| source | overlap mean (3 warps) |")
    print("|---|---:|")
    for name, pairs in loaded.items():
        errors = []
        for _ in range(3):
            h = sample_warp("combined", rng)
            frames = rig_frames(spread(pairs, 10), h)
            fit = refine([(f.thermal, f.visible) for f in frames], h, (640,), stride=2)
            errors.append(float(overlap_error(fit.homography, h, T, V).mean()))
        print(f"| {name} | {np.mean(errors):.2f} |", flush=True)


# --- 3. boards ----------------------------------------------------------------------------------


def board_table() -> None:
    print("\n## 3. Target-based calibration on rendered boards (4 poses)\n")
    print("| board | thermal | blur, noise | error on the boards (max, visible px) | RMS | s |")
    print("|---|---|---|---:|---:|---:|")
    truth = rig_homography(
        T, V, shift=(18.0, -11.0), scale=1.08, rotation_deg=2.0, perspective=(0.015, -0.01)
    )
    for kind, pattern in (("checkerboard", (9, 6)), ("circles", (7, 5))):
        spec = BoardSpec(kind, *pattern)
        for heated in (True, False):
            for blur, noise in ((0.5, 1.0), (1.0, 3.0), (1.5, 5.0)):
                views = board_views(
                    spec,
                    truth,
                    T,
                    V,
                    poses=4,
                    heated=heated,
                    blur_sigma=blur,
                    noise_sigma=noise,
                    seed=3,
                )
                pairs = [FramePair(str(i), v.thermal, v.visible) for i, v in enumerate(views)]
                start = time.perf_counter()
                try:
                    result = calibrate_target(pairs, spec)
                except CalibrationRefused as exc:
                    print(
                        f"| {spec} | {'heated' if heated else 'cold'} | {blur}, {noise} | "
                        f"refused: {exc.reason[:40]} | | |"
                    )
                    continue
                seconds = time.perf_counter() - start
                worst = 0.0
                for v in views:
                    c = v.board_to_thermal @ np.array([[0, 12, 12, 0], [0, 0, 9, 9], [1, 1, 1, 1]])
                    xy = c[:2] / c[2]
                    region = (*xy.min(axis=1), *xy.max(axis=1))
                    worst = max(worst, float(grid_error(result.homography, truth, region).max()))
                print(
                    f"| {spec} | {'heated (bright print)' if heated else 'cold (dark print)'} "
                    f"| {blur}, {noise} | {worst:.3f} | {result.errors['rms_px']:.3f} "
                    f"| {seconds:.1f} |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--counts", default="1,3,10,30")
    parser.add_argument("--warps", default=",".join(WARPS))
    parser.add_argument("--skip-features", action="store_true")
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-boards", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no such folder (../shared/data beside the repository)")
    cv2.setNumThreads(1)
    start = time.perf_counter()
    if not args.skip_features:
        measure_table(args.data)
    if not args.skip_table:
        counts = [int(c) for c in args.counts.split(",")]
        targetless_table(args.data, args.warps.split(","), counts, args.trials)
    if not args.skip_boards:
        board_table()
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
