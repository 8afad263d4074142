"""Flicker of fused video: fusion modes x output scalings x mask smoothing, on IR+visible videos.

    python benchmarks/video_flicker.py [--ir-dir DIR] [--vis-dir DIR] [--videos N] [--frames N]
        [--start N] [--size 320x240] [--mask-smoothing 0.6] [--markdown FILE] [--json FILE]
        [--device cpu] [--inputs-only] [--mask-source auto|sosnet|thermal] [--sosnet CKPT]

Reads each IR video and the visible video of the same name (default: the M3SVD pairs in
../shared/data/m3svd_video/{infrared,visible}), `--frames` consecutive frames from `--start`,
resized to `--size` and converted to gray; the mask is the pipeline's (`--mask-source`: the
shipped default `auto`, `sosnet` with `--sosnet CKPT`, or the classical `thermal`), with and
without `MaskSmoother` (as `PairStage` smooths: the pipeline's `mask_filter`). Each frame costs
one autoencoder pass per smoother setting (the `input` rows score the inputs themselves as a
reference: the change an output that follows its busiest input exactly would show): the pass is
the pipeline's imvf-contrast, whose decoder output is the paper's imvf and whose guarded output
is imvf-contrast; minmax and clip scale them as the pipeline does. The flicker measures are
`sosmaskfuse_core/evaluation/flicker.py`'s, accumulated over all videos (the pairing restarts
per video).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sosmaskfuse_core.evaluation.flicker import FlickerMeter
from sosmaskfuse_core.pipeline import preprocessing as pp
from sosmaskfuse_core.pipeline.builder import build_pipeline
from sosmaskfuse_core.pipeline.fusion_pipeline import PipelineConfig
from sosmaskfuse_core.settings import table as settings_table
from sosmaskfuse_core.thermal.temporal_mask import MaskSmoother, MaskSmootherConfig

SHARED = ROOT.parent / "shared" / "data" / "m3svd_video"
COLUMNS = (
    "fused_change",
    "ir_change",
    "vis_change",
    "ratio",
    "static_flicker",
    "static_share",
    "mask_change",
)


def read_frames(path: Path, start: int, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """`count` gray frames from `start`, resized (area) to size = (width, height)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError(f"{path}: cannot open the video")
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        frames.append(cv2.resize(gray, size, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def scaled(raw: np.ndarray, scaling: str, limits: np.ndarray | None = None) -> np.ndarray:
    """The pipeline's output scaling (minmax over `limits` when given, as imvf-contrast does)."""
    t = torch.as_tensor(raw).reshape(1, 1, *raw.shape[-2:])
    if scaling == "clip":
        return pp.clip_to_u8(t)[0, 0].cpu().numpy()
    if limits is not None:
        lim = torch.as_tensor(limits).reshape(1, 1, *limits.shape[-2:])
        return pp.minmax_to_u8(t, lim)[0, 0].cpu().numpy()
    return pp.minmax_to_u8(t)[0, 0].cpu().numpy()


@torch.inference_mode()  # not a global switch: tests call main() in process
def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ir-dir", type=Path, default=SHARED / "infrared")
    ap.add_argument("--vis-dir", type=Path, default=SHARED / "visible")
    ap.add_argument("--videos", type=int, default=0, help="only the first N video pairs (0 = all)")
    ap.add_argument("--frames", type=int, default=60, help="consecutive frames per video")
    ap.add_argument("--start", type=int, default=0, help="first frame of each video")
    ap.add_argument("--size", default="320x240", help="WIDTHxHEIGHT to process at")
    ap.add_argument(
        "--mask-smoothing",
        type=float,
        default=settings_table.default("mask_smoothing"),
        help="the smoother's weight of the past (the node's mask_smoothing setting)",
    )
    ap.add_argument(
        "--inputs-only",
        action="store_true",
        help="only the reference rows: the inputs' own change (no fusion)",
    )
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--mask-source",
        default="auto",
        choices=("auto", "sosnet", "thermal"),
        help="the mask as the pipeline makes it (auto: the shipped SOS network where it ships)",
    )
    ap.add_argument("--sosnet", default=None, help="SOS network weights (default: shipped)")
    ap.add_argument("--autoencoder", default="auto", help="auto, full, lite or a checkpoint")
    ap.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    args = ap.parse_args()
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(size) == 2 and min(size) >= 16
    except (ValueError, AssertionError):
        ap.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, each at least 16")

    names = sorted(p.name for p in args.ir_dir.glob("*.mp4") if (args.vis_dir / p.name).is_file())
    if args.videos:
        names = names[: args.videos]
    if not names:
        ap.error(f"no video pairs in {args.ir_dir} and {args.vis_dir}")
    pipeline, sources = build_pipeline(
        args.autoencoder,
        sosnet=args.sosnet,
        mask_source=args.mask_source,
        device=args.device,
        # the defaults: imvf-contrast, the stretched SOS input
        config=PipelineConfig(precision=args.precision),
    )
    print(f"pipeline: {sources}; {len(names)} videos", file=sys.stderr)

    smoother = MaskSmoother(MaskSmootherConfig.from_setting(args.mask_smoothing))
    smoothers = {"off": None, "ema": smoother}
    meters = (
        {}
        if args.inputs_only
        else {
            (s, m, sc): FlickerMeter()
            for s in smoothers
            for m in ("imvf", "imvf-contrast")
            for sc in ("minmax", "clip")
        }
    )
    # reference rows: each input scored as if it were the output
    meters.update(
        {("input", "thermal", "-"): FlickerMeter(), ("input", "visible", "-"): FlickerMeter()}
    )
    for name in names:
        try:
            irs = read_frames(args.ir_dir / name, args.start, args.frames, size)
            viss = read_frames(args.vis_dir / name, args.start, args.frames, size)
        except OSError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        for meter in meters.values():
            meter.reset()
        for smoother in smoothers.values():
            if smoother is not None:
                smoother.reset()
        for i, (ir, vis) in enumerate(zip(irs, viss)):
            meters[("input", "thermal", "-")].add(ir, ir, vis)
            meters[("input", "visible", "-")].add(vis, ir, vis)
            if args.inputs_only:
                continue
            for label, smoother in smoothers.items():
                # the stream's path (PairStage): the pipeline's own mask, smoothed in order
                result = pipeline.fuse_batch(
                    [ir],
                    [vis],
                    outputs=("raw", "decoded", "mask"),
                    mask_filter=None if smoother is None else smoother.update_batch,
                )[0]
                mask = np.asarray(result.mask)
                outs = {
                    "imvf": (result.decoded, None),
                    "imvf-contrast": (result.raw, result.decoded),
                }
                for mode, (raw, limits) in outs.items():
                    for scaling in ("minmax", "clip"):
                        meters[(label, mode, scaling)].add(
                            scaled(raw, scaling, limits), ir, vis, mask
                        )
            print(f"[{name} {i + 1}/{len(irs)}]", file=sys.stderr, flush=True)
        if args.inputs_only:
            print(f"[{name}] {len(irs)} frames", file=sys.stderr, flush=True)

    lines = [
        "| mask smoother | mode | output scaling | pairs | " + " | ".join(COLUMNS) + " |",
        "| --- | --- | --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |",
    ]
    summary = {}
    for (label, mode, scaling), meter in meters.items():
        s = meter.summary()
        summary[f"{label}/{mode}/{scaling}"] = s
        cells = " | ".join(f"{s[c]:.3f}" for c in COLUMNS)
        lines.append(f"| {label} | {mode} | {scaling} | {int(s['pairs'])} | {cells} |")
    table = "\n".join(lines) + (
        f"\n\n{len(names)} videos x {args.frames} frames from frame {args.start}, "
        f"{size[0]}x{size[1]}, mask: {sources.mask}; mask_smoothing {args.mask_smoothing}.\n"
    )
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
