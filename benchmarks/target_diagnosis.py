"""Why thermal targets are lost: per box, the mask, the visible image's polarity and glare.

    python benchmarks/target_diagnosis.py --box-csv BOXES.csv --ir DIR --vis DIR --mask DIR
        [--method NAME] [--manifest DEVSET/manifest.csv] [--csv OUT.csv]

For every box of `sosmaskfuse eval --boxes ... --box-csv BOXES.csv` (one method, default the
first) it measures, on the same target ellipse and ring as the TCR (evaluation/box_contrast.py):

* `mask`: the mean of the fusion's mask (`fuse` writes it to OUT/mask) in the target;
  the mask *missed* the target when it is below 0.5;
* `vis contrast`: target minus ring in the visible image's luma; the visible image has the
  *opposite polarity* when its contrast has the other sign than the IR contrast and is at
  least 5 levels, *none* when it is under 5 levels;
* the IR polarity: a target warmer or colder than its ring (cold cars on a warm road);
* `glare`: the share of ring pixels of the visible image at 250 or more (headlights, lamps,
  sky); glare when over 5 %.

It prints kept / inverted shares by mask hit or miss and visible polarity, the causes of the
inverted boxes, and with `--manifest` (benchmarks/devset/manifest.csv) the shares per condition.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sosmaskfuse_core.evaluation.box_contrast import target_and_ring
from sosmaskfuse_core.evaluation.fusion_quality import read_gray
from sosmaskfuse_core.formats.image_files import list_images
from sosmaskfuse_core.formats.voc_boxes import Box

MISSED_BELOW = 0.5
POLARITY_MIN = 5.0
GLARE_LEVEL, GLARE_SHARE = 250, 0.05


def diagnose(row: dict, ir: np.ndarray, vis: np.ndarray, mask: np.ndarray | None) -> dict:
    """The row with mask, visible contrast, polarity and glare added."""
    box = Box(row["class"], *(int(row[k]) for k in ("x0", "y0", "x1", "y1")))
    target, ring = target_and_ring(ir.shape, box)
    v = vis.astype(float)
    vis_contrast = v[target].mean() - v[ring].mean()
    ir_contrast = float(row["ir_contrast"])
    if abs(vis_contrast) < POLARITY_MIN:
        polarity = "none"
    else:
        polarity = "same" if np.sign(vis_contrast) == np.sign(ir_contrast) else "opposite"
    m = None if mask is None else float(mask[target].mean() / (255.0 if mask.max() > 1 else 1))
    return {
        **row,
        "tcr": float(row["tcr"]),
        "mask": m,
        "mask_hit": None if m is None else m >= MISSED_BELOW,
        "vis_contrast": vis_contrast,
        "polarity": polarity,
        "glare": bool(np.mean(vis[ring] >= GLARE_LEVEL) > GLARE_SHARE),
    }


def shares(rows: list[dict]) -> str:
    if not rows:
        return "0 | - | -"
    t = np.array([r["tcr"] for r in rows])
    return f"{len(t)} | {np.mean(t >= 0.5):.2f} | {np.mean(t < 0):.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--box-csv", type=Path, required=True)
    ap.add_argument("--ir", type=Path, required=True)
    ap.add_argument("--vis", type=Path, required=True)
    ap.add_argument("--mask", type=Path, help="the masks the fusion used (fuse's OUT/mask)")
    ap.add_argument("--method", help="the method column to diagnose (default: the first)")
    ap.add_argument("--manifest", type=Path, help="devset manifest: shares per condition")
    ap.add_argument("--csv", type=Path, help="write the per-box diagnosis here")
    args = ap.parse_args()

    with open(args.box_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    method = args.method or rows[0]["method"]
    rows = [r for r in rows if r["method"] == method]
    listings = {"ir": list_images(args.ir), "vis": list_images(args.vis)}
    if args.mask:
        listings["mask"] = list_images(args.mask)
    images: dict[str, dict[str, np.ndarray | None]] = {}
    out = []
    for r in rows:
        stem = r["image"]
        if stem not in images:
            images[stem] = {
                k: read_gray(v[stem][0]) if stem in v else None for k, v in listings.items()
            }
        im = images[stem]
        out.append(diagnose(r, im["ir"], im["vis"], im.get("mask")))

    print(f"{method}: {len(out)} boxes\n")
    print("| mask on the target | visible polarity | boxes | kept | inverted |")
    print("|---|---|---:|---:|---:|")
    for hit in (True, False, None):
        for pol in ("same", "none", "opposite"):
            subset = [r for r in out if r["mask_hit"] is hit and r["polarity"] == pol]
            if subset:
                name = {True: "hit (>= 0.5)", False: "missed (< 0.5)", None: "-"}[hit]
                print(f"| {name} | {pol} | {shares(subset)} |")
    inverted = [r for r in out if r["tcr"] < 0]
    if inverted:
        n = len(inverted)
        cold = sum(float(r["ir_contrast"]) < 0 for r in inverted)
        missed = sum(r["mask_hit"] is False for r in inverted)
        opposite = sum(r["polarity"] == "opposite" for r in inverted)
        glare = sum(r["glare"] for r in inverted)
        print(
            f"\ninverted boxes: {n}; mask missed {missed} ({missed / n:.0%}), visible "
            f"polarity opposite {opposite} ({opposite / n:.0%}), glare in the ring {glare} "
            f"({glare / n:.0%}), colder than their ring in the IR image {cold} ({cold / n:.0%}); "
            "median mask in their targets "
            f"{np.median([r['mask'] for r in inverted if r['mask'] is not None] or [np.nan]):.2f}"
        )
    print("\n| target in the IR image | class | boxes | kept | inverted | mask hit |")
    print("|---|---|---:|---:|---:|---:|")
    for warm in (True, False):
        for cls in sorted({r["class"] for r in out}) + ["all"]:
            subset = [
                r
                for r in out
                if (float(r["ir_contrast"]) > 0) == warm and cls in ("all", r["class"])
            ]
            if subset:
                hit = [r["mask_hit"] for r in subset if r["mask_hit"] is not None]
                hits = f"{np.mean(hit):.2f}" if hit else "-"
                name = "warmer than its ring" if warm else "colder than its ring"
                print(f"| {name} | {cls} | {shares(subset)} | {hits} |")
    print("\n| glare in the ring | boxes | kept | inverted |\n|---|---:|---:|---:|")
    for g in (True, False):
        print(f"| {'yes' if g else 'no'} | {shares([r for r in out if r['glare'] is g])} |")
    if args.manifest:
        with open(args.manifest, newline="", encoding="utf-8") as fh:
            tags = {m["stem"]: m["conditions"].split() for m in csv.DictReader(fh)}
        by_tag = defaultdict(list)
        for r in out:
            for tag in tags.get(r["image"], []):
                by_tag[tag].append(r)
        print("\n| condition | boxes | kept | inverted |\n|---|---:|---:|---:|")
        for tag, subset in sorted(by_tag.items()):
            print(f"| {tag} | {shares(subset)} |")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(out[0]))
            writer.writeheader()
            writer.writerows(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
