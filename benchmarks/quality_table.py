"""Fusion-quality table: fusion modes x mask sources x conditions, with the target contrast kept.

    python benchmarks/quality_table.py --ir DIR --vis DIR --out DIR [--masks DIR] [--held-out]
        [--conditions as-is,dim]
        [--mask-sources thermal,ensemble,sosnet,hand,hand-dilated,hand-eroded]
        [--modes imvf,imvf-contrast] [--output-scalings minmax,clip] [--baselines]
        [--sosnet CKPT] [--autoencoder auto|full|lite|CKPT] [--precision auto|fp32|bf16|fp16]
        [--radius 8] [--scale 1.0] [--limit N] [--markdown FILE] [--json FILE]
        [--boxes DIR [--box-format yolo|voc]]

Every row is one (condition, mask source, fusion mode, output scaling) over the pairs: the
means of `sosmaskfuse eval`'s metrics (against the images the fusion was given, i.e. the
degraded ones under `dim`) and TCR, the thermal target contrast kept (the formula of
../shared/tools/target_contrast.py, computed in process; 1 = the targets stand out as much as
in the thermal image it was given). The TCR targets are the hand-drawn masks (--masks) or,
without them, the classical thermal mask of the IR image thresholded at 0.5 (said so below
the table). With `--boxes DIR` (YOLO txt or VOC xml per stem) the table gains the thermal
target contrast kept box by box (evaluation/box_contrast.py, the definition of
../shared/tools/box_contrast.py) over all boxes of all pairs: `box kept` (TCR >= 0.5),
`box inv` (TCR < 0), `box TCR` (the median) and `boxes` (the boxes standing out, |IR
contrast| >= 5 in the IR image the fusion was given: fewer under `dim`).

Conditions: `as-is`; `dim`: IR x 0.3, visible 0.5 * vis + 128 (evaluation/quality_study.py).
Mask sources: `thermal` (the classical mask), `ensemble` (the shipped default: the SOS network
averaged with the classical mask), `sosnet` (the network alone; --sosnet CKPT, default the
shipped one), `hand` (--masks), its `hand-dilated` / `hand-eroded` variants (--radius pixels).
Modes: `imvf` is the paper's IMV-F; `imvf-contrast` (the default) is the same decoder pass
with the contrast guard (the pipeline returns both, `decoded` and `raw`), so each image costs
one autoencoder pass per mask source.
--baselines adds the mask-free `addition` and `sca` through the same autoencoder and the plain
average. The paper pass of each image (decoder output and the 8-bit mask it used) is cached as
OUT/<condition>/<mask>/raw/<stem>.npz and the fused images are written beside it as
OUT/<condition>/<mask>/<method>/<stem>.png: a rerun costs no autoencoder pass. --scale < 1
shrinks everything (and the TCR ring) for quick exploration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sosmaskfuse_core.evaluation.box_contrast import BoxTCR, image_tcrs, summarise
from sosmaskfuse_core.evaluation.fusion_quality import read_gray
from sosmaskfuse_core.evaluation.metrics import METRIC_NAMES, compute_all
from sosmaskfuse_core.evaluation.quality_study import (
    CONDITIONS,
    MASK_VARIANTS,
    degrade,
    mask_variant,
    rescale,
    target_contrast,
)
from sosmaskfuse_core.formats.box_folder import BOX_FORMATS, BoxFolder
from sosmaskfuse_core.formats.image_files import list_images, pair_by_stem, read_image, write_image
from sosmaskfuse_core.formats.voc_boxes import Box, BoxFileError
from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER, SHIPPED_SOSNET, shipped_or_none
from sosmaskfuse_core.pipeline import preprocessing as pp
from sosmaskfuse_core.pipeline.builder import build_pipeline
from sosmaskfuse_core.pipeline.contrast_guard import ContrastGuardConfig
from sosmaskfuse_core.pipeline.fusion_pipeline import PipelineConfig
from sosmaskfuse_core.settings import table as settings_table
from sosmaskfuse_core.settings.table import PRECISIONS

MODES = ("imvf", "imvf-contrast")
SCALINGS = ("minmax", "clip")
BASELINES = ("addition", "sca", "average")
COLUMNS = ("TCR",) + tuple(METRIC_NAMES)
BOX_COLUMNS = ("box kept", "box inv", "box TCR", "boxes")


def csv_list(choices):
    def parse(text: str) -> list[str]:
        items = [t for t in text.split(",") if t]
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"{', '.join(bad)}: expected some of {', '.join(choices)}"
            )
        return items

    return parse


def scale_output(
    raw: torch.Tensor, scaling: str, limits: torch.Tensor | None = None
) -> np.ndarray:
    """The pipeline's output scaling of one decoder-scale image (minmax over `limits` if given)."""
    t = raw.reshape(1, 1, *raw.shape[-2:])
    if scaling == "clip":
        return pp.clip_to_u8(t)[0, 0].cpu().numpy()
    if limits is not None:
        return pp.minmax_to_u8(t, limits.reshape(1, 1, *limits.shape[-2:]))[0, 0].cpu().numpy()
    return pp.minmax_to_u8(t)[0, 0].cpu().numpy()


def guard_settings(args: argparse.Namespace) -> dict:
    """The contrast guard's settings of the `imvf-contrast` rows (--target-contrast, --guard)."""
    fields = {f.name: f.type for f in dataclasses.fields(ContrastGuardConfig)}
    changes = {}
    for item in args.guard:
        name, _, value = item.partition("=")
        if name not in fields or name == "floor" or not value:
            raise SystemExit(
                f"--guard {item!r}: expected FIELD=VALUE, FIELD one of "
                f"{', '.join(n for n in fields if n != 'floor')} (the floor is --target-contrast)"
            )
        changes[name] = int(value) if fields[name] in (int, "int") else float(value)
    return {
        "target_contrast": args.target_contrast,
        "guard": dataclasses.replace(ContrastGuardConfig(), **changes),
    }


class Study:
    """Fuses (with caching) and scores every requested row."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pipeline, sources = build_pipeline(
            args.autoencoder,
            mask_source="thermal",
            device=args.device,
            config=PipelineConfig.paper(precision=args.precision, **guard_settings(args)),
        )
        print(f"pipeline: {sources}", file=sys.stderr)
        self.sos = {}  # "sosnet" (the network alone), "ensemble" (averaged with the classical)
        for source in ("sosnet", "ensemble"):
            if source in args.mask_sources:
                self.sos[source], sos_sources = build_pipeline(
                    args.autoencoder,
                    sosnet=args.sosnet,
                    mask_source=source,
                    device=args.device,
                    config=PipelineConfig(precision=args.precision, **guard_settings(args)),
                )
                print(f"{source} masks: {sos_sources.mask}", file=sys.stderr)
        self.masks = (
            {}
            if args.masks is None
            else {
                stem: files[0]
                for stem, files in list_images(args.masks).items()
                if len(files) == 1
            }
        )
        self.rows: dict[tuple[str, str, str], list[dict[str, float]]] = defaultdict(list)
        self.targets_from_masks = bool(self.masks)
        self.labels = BoxFolder(args.boxes, args.box_format) if args.boxes else None
        self.box_tcrs: dict[tuple[str, str, str], list[BoxTCR]] = defaultdict(list)

    def boxes(self, stem: str, ir: np.ndarray) -> list[Box]:
        """The labelled boxes of `stem` on `ir` (already scaled by --scale); [] without labels."""
        if self.labels is None or stem not in self.labels.files:
            return []
        h, w = ir.shape
        if self.labels.format == "yolo":  # normalised: the definition at the scaled size
            return self.labels.read(stem, w, h)
        s = self.args.scale  # VOC pixel boxes of the full-size image
        return [
            Box(b.label, int(b.x0 * s), int(b.y0 * s), int(b.x1 * s), int(b.y1 * s))
            for b in self.labels.read(stem, round(w / s), round(h / s))
        ]

    def inputs(self, condition: str, stem: str, ir_path: Path, vis_path: Path):
        s = self.args.scale
        ir, vis = (rescale(read_gray(p), s) for p in (ir_path, vis_path))
        ir, vis = degrade(ir, vis, condition)
        hand = None
        if stem in self.masks:
            hand = mask_variant(
                rescale(read_image(self.masks[stem], cv2.IMREAD_GRAYSCALE), s, nearest=True),
                "hand",
            )
        return ir, vis, hand

    def mask(self, source: str, ir: np.ndarray, hand: np.ndarray | None) -> np.ndarray | None:
        """A hand-mask variant (given to the fusion), None for a source the pipeline computes."""
        if source in ("thermal", *self.sos) or hand is None:
            return None
        return mask_variant(hand, source, max(1, round(self.args.radius * self.args.scale)))

    def fuse_masked(
        self, out_dir: Path, stem: str, ir, vis, source: str, given: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Every requested mode x scaling from one pass (cached: OUT/.../raw/<stem>.npz).

        The pass is the pipeline's `imvf-contrast` with this mask source (or the given mask):
        its decoder output is the paper's IMV-F (`decoded`), its guarded output the default's
        (`raw`), so both modes cost one autoencoder pass.
        """
        cache = out_dir / "raw" / f"{stem}.npz"
        if cache.exists():
            with np.load(cache) as data:
                decoded, guarded = (torch.from_numpy(data[k]) for k in ("decoded", "raw"))
        else:
            pipeline = self.sos.get(source, self.pipeline)
            pipeline.update(fusion_mode="imvf-contrast")
            result = pipeline(
                torch.from_numpy(ir),
                torch.from_numpy(vis),
                mask=None if given is None else torch.from_numpy(given),
                outputs=("raw", "decoded", "mask_u8"),
            )
            decoded, guarded = result.decoded, result.raw
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(
                cache, decoded=decoded.numpy(), raw=guarded.numpy(), mask_u8=result.mask_u8.numpy()
            )
        out = {}
        for mode in self.args.modes:
            for scaling in self.args.output_scalings:
                name = f"{mode}-{scaling}"
                if mode == "imvf":
                    out[name] = scale_output(decoded, scaling)
                else:  # as the pipeline scales imvf-contrast: minmax over the decoder's range
                    out[name] = scale_output(guarded, scaling, decoded)
                write_image(out_dir / name / f"{stem}.png", out[name])
        return out

    def fuse_baselines(self, out_dir: Path, stem: str, ir, vis) -> dict[str, np.ndarray]:
        out = {}
        for method in BASELINES:
            path = out_dir / method / f"{stem}.png"
            if path.exists():
                out[method] = read_gray(path)
                continue
            if method == "average":
                out[method] = np.round((ir.astype(np.float32) + vis) / 2).astype(np.uint8)
            else:
                self.pipeline.update(fusion_mode=method)
                out[method] = (
                    self.pipeline(torch.from_numpy(ir), torch.from_numpy(vis)).fused.cpu().numpy()
                )
            write_image(path, out[method])
        return out

    def score(self, key: tuple[str, str, str], fused: np.ndarray, ir, vis, target, boxes) -> None:
        values = compute_all(fused, ir, vis)
        values["TCR"] = target_contrast(fused, ir, target, max(1, round(15 * self.args.scale)))
        self.rows[key].append(values)
        self.box_tcrs[key].extend(image_tcrs(fused, ir, boxes)[0])

    def run(self, pairs) -> None:
        a = self.args
        for condition in a.conditions:
            for i, (stem, (ir_path, vis_path)) in enumerate(pairs, 1):
                try:
                    ir, vis, hand = self.inputs(condition, stem, ir_path, vis_path)
                    boxes = self.boxes(stem, ir)
                except (OSError, ValueError, BoxFileError) as exc:
                    print(f"skipped {stem}: {exc}", file=sys.stderr)
                    continue
                if hand is not None:
                    target = hand
                else:
                    target = (self.pipeline.mask(ir) >= 0.5).astype(np.float32)
                    self.targets_from_masks = False
                for source in a.mask_sources:
                    given = self.mask(source, ir, hand)
                    if given is None and source not in ("thermal", *self.sos):
                        continue  # a hand-mask variant without a hand mask
                    fused = self.fuse_masked(
                        a.out / condition / source, stem, ir, vis, source, given
                    )
                    for name, image in fused.items():
                        self.score((condition, source, name), image, ir, vis, target, boxes)
                if a.baselines:
                    for name, image in self.fuse_baselines(
                        a.out / condition / "none", stem, ir, vis
                    ).items():
                        self.score((condition, "none", name), image, ir, vis, target, boxes)
                print(f"[{condition} {i}/{len(pairs)}] {stem}", file=sys.stderr, flush=True)

    def table(self) -> tuple[str, dict]:
        columns = COLUMNS + (BOX_COLUMNS if self.labels else ())
        lines = [
            "| condition | mask | method | n | " + " | ".join(columns) + " |",
            "| --- | --- | --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
        ]
        summary = {}
        for key, rows in self.rows.items():
            condition, source, method = key
            means = {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS}
            if self.labels:
                s = summarise(self.box_tcrs[key])
                means.update(
                    {
                        "box kept": s.kept,
                        "box inv": s.inverted,
                        "box TCR": s.median,
                        "boxes": s.boxes,
                    }
                )
            summary[f"{condition}/{source}/{method}"] = {"n": len(rows), **means}
            cells = " | ".join(_fmt(c, means[c]) for c in columns)
            lines.append(f"| {condition} | {source} | {method} | {len(rows)} | {cells} |")
        what = (
            "the hand-drawn masks"
            if self.targets_from_masks
            else "the classical thermal mask of the IR image thresholded at 0.5 (no hand masks)"
        )
        ring = max(1, round(15 * self.args.scale))
        lines.append(
            f"\nTCR targets: {what}; ring {ring} px. Metrics against the images the fusion "
            "was given (under `dim`: the dimmed IR and the brightened visible image)."
        )
        if self.labels:
            lines.append(
                f"Box columns: {self.labels.format} boxes of {self.args.boxes}, all boxes of all "
                "pairs with |IR contrast| >= 5; kept: TCR >= 0.5, inv: TCR < 0, TCR: median."
            )
        return "\n".join(lines) + "\n", summary


def _fmt(column: str, value: float) -> str:
    if column == "boxes":
        return str(value)
    if np.isnan(value):
        return "-"
    return f"{value:.2f}" if column in ("SD", "SF", "PSNR") else f"{value:.3f}"


@torch.inference_mode()  # not a global switch: tests call main() in process
def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ir", type=Path, required=True)
    ap.add_argument("--vis", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--masks", type=Path, help="hand-drawn target masks (same stems)")
    ap.add_argument(
        "--held-out",
        action="store_true",
        help="only the pairs the shipped autoencoder's training held out",
    )
    ap.add_argument("--conditions", type=csv_list(CONDITIONS), default=["as-is"])
    ap.add_argument(
        "--mask-sources",
        type=csv_list(("thermal", "sosnet", "ensemble") + MASK_VARIANTS),
        default=None,
        help="default: thermal, plus hand with --masks",
    )
    ap.add_argument("--modes", type=csv_list(MODES), default=list(MODES))
    ap.add_argument("--output-scalings", type=csv_list(SCALINGS), default=["minmax"])
    ap.add_argument(
        "--baselines", action="store_true", help="add addition, sca and the plain average"
    )
    ap.add_argument(
        "--sosnet",
        metavar="CKPT",
        help="SOS network weights for the sosnet/ensemble mask sources (default: shipped)",
    )
    ap.add_argument(
        "--radius", type=int, default=8, help="dilation/erosion radius of the hand masks (px)"
    )
    ap.add_argument(
        "--scale", type=float, default=1.0, help="shrink everything by this factor first"
    )
    ap.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    ap.add_argument(
        "--boxes",
        type=Path,
        metavar="DIR",
        help="labelled boxes (YOLO txt / VOC xml per stem): adds the box-contrast columns",
    )
    ap.add_argument("--box-format", choices=BOX_FORMATS, default="auto")
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--autoencoder",
        default="auto",
        help='"auto" (the device\'s: full on a GPU, lite on a CPU), "full", "lite" or a file',
    )
    ap.add_argument("--precision", default="auto", choices=("auto", *PRECISIONS))
    ap.add_argument(
        "--target-contrast",
        type=float,
        default=settings_table.default("target_contrast"),
        help="the contrast guard's floor in the imvf-contrast rows (default: the shipped one)",
    )
    ap.add_argument(
        "--guard",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="another ContrastGuardConfig setting of the imvf-contrast rows, e.g. last_level=6 "
        "(repeatable; give each setting its own --out: the fused images are cached there)",
    )
    args = ap.parse_args()
    guard_settings(args)  # a bad --guard stops here
    if args.mask_sources is None:
        args.mask_sources = ["thermal"] + (["hand"] if args.masks else [])
    if {"sosnet", "ensemble"} & set(args.mask_sources):
        args.sosnet = args.sosnet or shipped_or_none(SHIPPED_SOSNET)
        if not args.sosnet:
            ap.error("mask sources sosnet/ensemble need --sosnet CKPT (none ships)")
    if any(s.startswith("hand") for s in args.mask_sources) and not args.masks:
        ap.error("hand mask sources need --masks DIR")
    if not 0.05 <= args.scale <= 1.0:
        ap.error("--scale must lie in [0.05, 1]")
    if args.boxes and not args.boxes.is_dir():
        ap.error(f"--boxes {args.boxes}: not a folder")

    pairs = pair_by_stem(args.ir, args.vis).pairs
    if args.held_out:
        _, meta = load_autoencoder(SHIPPED_AUTOENCODER)
        held = set(meta["data"]["held_out_stems"])
        pairs = [p for p in pairs if p[0] in held]
    if args.limit:
        pairs = pairs[: args.limit]
    print(f"{len(pairs)} pairs", file=sys.stderr)
    study = Study(args)
    study.run(pairs)
    table, summary = study.table()
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
