"""Target-based calibration: the homography from a board seen by both cameras.

Each frame's board is found in both images (`board.detect_board`, either polarity, sub-pixel);
the detector's choice of starting corner is resolved per frame (the cameras are upright and not
mirrored, so the true correspondence is the one with the smallest rotation); one RANSAC
homography (OpenCV) is fitted to all frames' correspondences and refined on its inliers. Frames
whose points mostly disagree with it are set aside and the rest fitted again. The reprojection
error is reported per frame and overall, with how much of the thermal image the boards covered
and how much the result moves when any one frame is left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import cv2
import numpy as np

from .board import BoardSpec, detect_board, orderings
from .geometry import Size, apply, overlap_corners
from .refine import local_scale
from .result import Calibration, CalibrationRefused, FramePair, FrameVerdict, check_sizes


def _rotation_deg(h: np.ndarray, thermal: Size) -> float:
    """The rotation `h` applies at the thermal image's centre, or inf if it mirrors."""
    cx, cy = (thermal[0] - 1) / 2.0, (thermal[1] - 1) / 2.0
    p = apply(h, np.array([[cx, cy], [cx + 1, cy], [cx, cy + 1]]))
    ex, ey = p[1] - p[0], p[2] - p[0]
    if ex[0] * ey[1] - ex[1] * ey[0] <= 0:
        return math.inf
    return abs(math.degrees(math.atan2(ex[1] - ey[0], ex[0] + ey[1])))


def _correspond(
    thermal_pts: np.ndarray, visible_pts: np.ndarray, spec: BoardSpec, thermal: Size
) -> np.ndarray | None:
    """The thermal points reordered to match the visible ones (None if no ordering fits)."""
    best, best_rot = None, math.inf
    for order in orderings(spec):
        candidate = thermal_pts[order]
        h, _ = cv2.findHomography(candidate, visible_pts, 0)
        if h is None:
            continue
        rot = _rotation_deg(h, thermal)
        if rot < best_rot:
            best, best_rot = candidate, rot
    return best if best_rot <= 60.0 else None


def _fit(src: np.ndarray, dst: np.ndarray, ransac_px: float) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC homography src -> dst, refined (least squares + Levenberg-Marquardt) on inliers."""
    h, mask = cv2.findHomography(src, dst, cv2.RANSAC, ransac_px, maxIters=5000, confidence=0.999)
    if h is None:
        raise CalibrationRefused("no homography fits the board correspondences")
    inliers = mask.ravel().astype(bool)
    if inliers.sum() >= 4:
        refined, _ = cv2.findHomography(src[inliers], dst[inliers], 0)
        if refined is not None:
            h = refined
    return h / h[2, 2], inliers


def _coverage(points: Sequence[np.ndarray], thermal: Size) -> float:
    """The share of the thermal image inside the boards' outlines (at 1/4 resolution)."""
    mask = np.zeros((max(1, thermal[1] // 4), max(1, thermal[0] // 4)), np.uint8)
    for pts in points:
        hull = cv2.convexHull((pts / 4.0).astype(np.float32)).astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 1)
    return float(mask.mean())


def calibrate_target(
    pairs: Sequence[FramePair],
    spec: BoardSpec,
    *,
    ransac_px: float = 2.0,
    max_rms_px: float = 1.5,
) -> Calibration:
    """The thermal -> visible homography from frames that show the board in both cameras.

    `ransac_px`: RANSAC's inlier threshold (visible pixels); `max_rms_px`: the largest RMS
    reprojection error (visible pixels) accepted. Raises CalibrationRefused when no frame shows
    the board in both images or the fit is poorer than that.
    """
    start = time.perf_counter()
    pairs = list(pairs)
    thermal, visible, verdicts = check_sizes(pairs)
    odd = {v.name for v in verdicts}
    found: list[tuple[str, np.ndarray, np.ndarray]] = []
    for p in pairs:
        if p.name in odd:
            continue
        seen = [detect_board(img, spec) for img in (p.thermal, p.visible)]
        missing = [role for role, d in zip(("thermal", "visible"), seen) if d is None]
        in_thermal, in_visible = seen
        if in_thermal is None or in_visible is None:
            verdicts.append(
                FrameVerdict(p.name, False, f"no {spec} in the {' or '.join(missing)} image")
            )
            continue
        src = _correspond(in_thermal.points, in_visible.points, spec, thermal)
        if src is None:
            verdicts.append(
                FrameVerdict(p.name, False, "the board's two views do not match upright")
            )
            continue
        found.append((p.name, src, in_visible.points))
    if not found:
        raise CalibrationRefused(
            f"no frame shows the {spec} in both images (thermal: a heated or sun-warmed board "
            "with contrast; check --pattern counts inner corners or circles, COLSxROWS)",
            verdicts,
        )
    rejected: dict[str, str] = {}
    for _ in range(2):
        kept = [f for f in found if f[0] not in rejected]
        src = np.concatenate([f[1] for f in kept])
        dst = np.concatenate([f[2] for f in kept])
        h, _ = _fit(src, dst, ransac_px)
        new = {}
        for name, s, d in kept:
            err = np.linalg.norm(apply(h, s) - d, axis=1)
            if np.mean(err > ransac_px) > 0.5:
                new[name] = (
                    f"its board disagrees with the others (median {np.median(err):.1f} px): "
                    "did the board or a camera move between the two exposures?"
                )
        if not new or len(new) == len(kept):
            break
        rejected.update(new)
    kept = [f for f in found if f[0] not in rejected]
    verdicts += [FrameVerdict(n, False, r) for n, r in rejected.items()]
    to_thermal = 1.0 / local_scale(h, thermal)
    all_err = []
    for name, s, d in kept:
        err = np.linalg.norm(apply(h, s) - d, axis=1)
        all_err.append(err)
        rms = float(np.sqrt(np.mean(err**2)))
        verdicts.append(FrameVerdict(name, True, "", rms * to_thermal, float(len(err))))
    err = np.concatenate(all_err)
    rms = float(np.sqrt(np.mean(err**2)))
    if rms > max_rms_px:
        raise CalibrationRefused(
            f"poor fit: RMS reprojection error {rms:.2f} px (accepts {max_rms_px} px); "
            "are the pairs synchronised, the board flat and still?",
            verdicts,
        )
    # stability: how far the overlap's corners move when one frame is left out
    region = overlap_corners(h, thermal, visible)
    moves = []
    if len(kept) > 1:
        for i in range(len(kept)):
            rest = kept[:i] + kept[i + 1 :]
            h_i, _ = _fit(
                np.concatenate([f[1] for f in rest]),
                np.concatenate([f[2] for f in rest]),
                ransac_px,
            )
            moves.append(float(np.abs(apply(h_i, region) - apply(h, region)).max()))
    coverage = _coverage([f[1] for f in kept], thermal)
    stability = max(moves) if moves else math.nan
    level = (
        "high"
        if rms <= 0.5 and coverage >= 0.25 and len(kept) >= 3 and stability <= 1.0
        else "medium"
    )
    return Calibration(
        method="target",
        homography=h,
        thermal_size=thermal,
        visible_size=visible,
        frames=verdicts,
        errors={
            "rms_px": rms,
            "max_px": float(err.max()),
            "rms_thermal_px": rms * to_thermal,
            "points": float(len(err)),
        },
        confidence={
            "level": level,
            "frames_with_board": len(kept),
            "coverage": coverage,
            "leave_one_out_px": stability,
        },
        seconds=time.perf_counter() - start,
        details={"board": str(spec)},
    )
