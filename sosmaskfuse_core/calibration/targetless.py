"""Targetless calibration: the homography from many synchronised frames of ordinary scenes.

1. Screen: a frame whose thermal or visible image has too few edges (fog, night sky, a lens
   cap) is set aside; too few informative frames and the calibration is refused.
2. Search (`search.coarse_search`): scale, rotation and shift at a coarse resolution, summed over
   the most structured frames; a peak that does not stand out is refused (the scene does not
   decide the alignment: repetitive or one-directional structure).
3. Refine (`refine.refine`): the full 8-dof homography, jointly over all informative frames,
   coarse to fine.
4. Agree: each frame's remaining shift under that homography (`check.AlignmentCheck`) must be
   small; frames that disagree are set aside and the rest refined again. Too few agreeing
   frames and the calibration is refused (the frames do not show one rig: wrong pairing, moving
   cameras, parallax).
5. Judge: the final correlation must be clear and the homography plausible (inside the
   search's scale range, covering part of the visible image).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .check import AlignmentCheck
from .features import edge_fraction, orientation_field
from .geometry import apply, corners, cross2, describe, overlap_corners
from .refine import RefineError, local_scale, refine
from .result import Calibration, CalibrationRefused, FramePair, FrameVerdict, check_sizes
from .search import SearchSpace, coarse_search


@dataclass(frozen=True)
class TargetlessOptions:
    """Settings of the targetless calibration (the defaults suit 320-1920 px wide cameras).

    space: the search's scale, rotation and shift ranges; search_width, refine_widths: working
    widths of the visible image; search_frames, max_frames: how many frames the search and the
    refinement use (evenly spread over the informative ones); min_frames: informative and
    agreeing frames needed; min_edges: share of edge pixels each image of a frame needs;
    min_peak_ratio: how far the search's peak must stand out; agreement_px: how far (thermal
    pixels) a frame's own alignment may differ from the joint one (None: 1% of the thermal
    width, at least 3 px: parallax and sync jitter move single frames that much);
    min_agreement: the share of frames that must agree; min_score: the least correlation, at
    the search and at the end (unrelated images score below 0.2, aligned real pairs 0.3-0.8).
    """

    space: SearchSpace = field(default_factory=SearchSpace)
    search_width: int = 160
    refine_widths: tuple[int, ...] = (160, 320, 640)
    search_frames: int = 6
    max_frames: int = 30
    min_frames: int = 5
    min_edges: float = 0.04
    min_peak_ratio: float = 1.08
    agreement_px: float | None = None
    min_agreement: float = 0.6
    min_score: float = 0.2
    check_width: int = 320


def _spread(items: Sequence, n: int) -> list:
    """`n` items evenly spread over `items` (all of them if there are no more)."""
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def _edges(pair: FramePair, width: int) -> float:
    """The smaller share of edge pixels of the two images, at about the search's resolution."""
    fractions = []
    for image in (pair.thermal, pair.visible):
        w = min(width, image.shape[1])
        size = (w, max(8, round(image.shape[0] * w / image.shape[1])))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        fractions.append(edge_fraction(orientation_field(small)))
    return min(fractions)


def residuals(
    pairs: Sequence[FramePair], h: np.ndarray, check: AlignmentCheck
) -> list[tuple[float, float, bool, float]]:
    """Each frame's remaining (dx, dy) in thermal pixels under `h`, informative?, score."""
    visible = pairs[0].visible_size
    thermal = pairs[0].thermal_size
    to_thermal = 1.0 / local_scale(h, thermal)  # visible pixels -> thermal pixels
    ones = np.ones(pairs[0].thermal.shape[:2], np.uint8)
    valid = cv2.warpPerspective(ones, h, visible, flags=cv2.INTER_NEAREST)
    out = []
    for p in pairs:
        warped = cv2.warpPerspective(p.thermal, h, visible, flags=cv2.INTER_LINEAR)
        reading = check.measure(warped, p.visible, valid)
        dx, dy = reading.shift_xy
        out.append((dx * to_thermal, dy * to_thermal, reading.informative, reading.score))
    return out


def split_half(pairs: Sequence[FramePair], h: np.ndarray, width: int) -> float:
    """How far apart two homographies from alternate halves of the frames put the overlap.

    The largest distance (thermal pixels) between where the two halves' fits (at the finest
    level given, from `h`) put the corners of what both cameras see: the part of the result that
    depends on which frames were used (parallax, sync jitter, noise). NaN below 4 frames.
    """
    if len(pairs) < 4:
        return float("nan")
    thermal, visible = pairs[0].thermal_size, pairs[0].visible_size
    fits = []
    for half in (pairs[0::2], pairs[1::2]):
        try:
            fits.append(refine([(p.thermal, p.visible) for p in half], h, (width,), stride=2))
        except RefineError:
            return float("inf")
    region = overlap_corners(h, thermal, visible)
    if not len(region):
        return float("inf")
    a, b = (apply(np.linalg.inv(f.homography) @ h, region) for f in fits)
    return float(np.linalg.norm(a - b, axis=1).max())


def calibrate_targetless(
    pairs: Sequence[FramePair], options: TargetlessOptions = TargetlessOptions()
) -> Calibration:
    """The thermal -> visible homography of a rig from its synchronised frames.

    Raises CalibrationRefused (with the reason and a verdict per frame) instead of returning a
    homography it cannot stand behind.
    """
    start_time = time.perf_counter()
    pairs = list(pairs)
    thermal, visible, verdicts = check_sizes(pairs)
    odd = {v.name for v in verdicts}
    informative: list[FramePair] = []
    edges: dict[str, float] = {}
    for p in pairs:
        if p.name in odd:
            continue
        edges[p.name] = _edges(p, options.search_width)
        if edges[p.name] < options.min_edges:
            verdicts.append(
                FrameVerdict(
                    p.name,
                    False,
                    f"little structure: {100 * edges[p.name]:.1f}% edge pixels "
                    f"(needs {100 * options.min_edges:.0f}%)",
                )
            )
        else:
            informative.append(p)
    if len(informative) < options.min_frames:
        raise CalibrationRefused(
            f"too few informative frames: {len(informative)} of {len(pairs)} have enough "
            f"structure in both images (needs {options.min_frames}); record scenes with "
            "buildings, poles, kerbs, vehicles at the distance that matters",
            verdicts,
        )
    used = _spread(informative, options.max_frames)
    # coarse to fine, up to the visible camera's own resolution
    widths = tuple(dict.fromkeys(min(w, visible[0]) for w in options.refine_widths))
    verdicts += [
        FrameVerdict(p.name, False, "not needed (max_frames)")
        for p in informative
        if p not in used
    ]
    searched = sorted(used, key=lambda p: -edges[p.name])[: options.search_frames]
    hypotheses = coarse_search(
        [(p.thermal, p.visible) for p in searched], options.space, options.search_width
    )
    best = hypotheses[0]
    if best.score < options.min_score:
        raise CalibrationRefused(
            f"weak correlation: the best alignment found scores {best.score:.3f} (needs "
            f"{options.min_score}); the thermal and visible images may not show the same scene",
            verdicts + [FrameVerdict(p.name, False, "calibration refused") for p in used],
        )
    if best.ratio < options.min_peak_ratio:
        raise CalibrationRefused(
            f"flat score peak: the best alignment scores {best.score:.3f}, only "
            f"{best.ratio:.3f}x the best clearly different shift (needs {options.min_peak_ratio}x)"
            "; the frames do not decide the alignment (repetitive or one-directional structure,"
            " or unrelated images)",
            verdicts + [FrameVerdict(p.name, False, "calibration refused") for p in used],
        )
    check = AlignmentCheck(grid_width=options.check_width, max_shift=0.08)
    tolerance = options.agreement_px or max(3.0, 0.01 * thermal[0])
    h = best.homography
    outliers: dict[str, str] = {}
    for attempt in range(2):
        members = [p for p in used if p.name not in outliers]
        try:
            levels = widths if attempt == 0 else widths[-1:]
            fit = refine([(p.thermal, p.visible) for p in members], h, levels, stride=2)
        except RefineError as exc:
            raise CalibrationRefused(f"refinement failed: {exc}", verdicts) from None
        h = fit.homography
        scores = {p.name: s for p, s in zip(members, fit.frame_scores)}
        res = residuals(members, h, check)
        new = {}
        for p, (dx, dy, ok, _) in zip(members, res):
            if not ok:
                new[p.name] = "its own alignment is unclear (no distinct correlation peak)"
            elif np.hypot(dx, dy) > tolerance:
                new[p.name] = f"disagrees with the others by ({dx:+.1f}, {dy:+.1f}) thermal px"
        if not new:
            break
        outliers.update(new)
        agreeing = len(used) - len(outliers)
        if agreeing < max(options.min_frames, options.min_agreement * len(used)):
            raise CalibrationRefused(
                f"frames disagree: only {agreeing} of {len(used)} frames agree on one homography "
                f"within {tolerance:.1f} thermal px (needs "
                f"{max(options.min_frames, int(np.ceil(options.min_agreement * len(used))))});"
                " are the pairs synchronised and from one rig?",
                verdicts + [FrameVerdict(n, False, r) for n, r in outliers.items()],
            )
    members = [p for p in used if p.name not in outliers]
    res = residuals(members, h, check)
    lengths = np.array([np.hypot(dx, dy) for dx, dy, _, _ in res])
    verdicts += [FrameVerdict(n, False, r) for n, r in outliers.items()]
    verdicts += [
        FrameVerdict(p.name, True, "", float(r), float(scores[p.name]))
        for p, r in zip(members, lengths)
    ]
    if fit.score < options.min_score:
        raise CalibrationRefused(
            f"weak correlation: the aligned edges correlate {fit.score:.3f} "
            f"(needs {options.min_score}); the images may not show the same scene",
            verdicts,
        )
    _plausible(h, thermal, visible, options.space)
    pose = describe(h, thermal, visible)
    spread = float(np.median(lengths))
    agreement = len(members) / len(used)
    split = split_half(members, h, min(widths[-1], 320))
    level = (
        "high"
        if agreement >= 0.9
        and spread <= 1.0
        and split <= 2.0
        and best.ratio >= 1.12
        and fit.score >= 0.3
        else "medium"
    )
    return Calibration(
        method="targetless",
        homography=h,
        thermal_size=thermal,
        visible_size=visible,
        frames=verdicts,
        errors={
            "residual_median_px": spread,
            "residual_p90_px": float(np.percentile(lengths, 90)),
            "residual_max_px": float(lengths.max()),
        },
        confidence={
            "level": level,
            "agreeing_frames": f"{len(members)} of {len(used)}",
            "agreement": agreement,
            "score": fit.score,
            "peak_ratio": best.ratio,
            "split_half_px": split,
            "converged": fit.converged,
        },
        seconds=time.perf_counter() - start_time,
        details={
            "pose": str(pose),
            "search": {
                "scale": best.scale,
                "rotation_deg": best.rotation_deg,
                "score": best.score,
                "frames": [p.name for p in searched],
            },
            "refine_iterations": list(fit.iterations),
        },
    )


def _plausible(h: np.ndarray, thermal, visible, space: SearchSpace) -> None:
    """Refuse a homography that folds the image, left the search range, or hardly overlaps."""
    quad = apply(h, corners(thermal))
    sides = [
        cross2(quad[(i + 1) % 4] - quad[i], quad[(i + 2) % 4] - quad[(i + 1) % 4])
        for i in range(4)
    ]
    if not (all(s > 0 for s in sides) or all(s < 0 for s in sides)):
        raise CalibrationRefused("implausible result: the homography folds the thermal image")
    pose = describe(h, thermal, visible)
    lo, hi = space.scale
    if not lo / 1.15 <= pose.scale <= hi * 1.15:
        raise CalibrationRefused(
            f"implausible result: scale {pose.scale:.2f} is outside the searched {lo}-{hi}"
        )
    overlap = overlap_corners(h, thermal, visible)
    area = cv2.contourArea(apply(h, overlap).astype(np.float32)) if len(overlap) >= 3 else 0.0
    if area < 0.2 * visible[0] * visible[1]:
        raise CalibrationRefused(
            "implausible result: the thermal image covers only "
            f"{100 * area / (visible[0] * visible[1]):.0f}% of the visible one"
        )
