"""Contact sheets of the boxes whose thermal target a fusion loses: IR | visible | mask | fused.

    python benchmarks/target_overlays.py --box-csv BOXES.csv --ir DIR --vis DIR --fused DIR
        [--mask DIR] [--method NAME] [--worst 12] [--below 0.0] [--out sheet.png]

Reads the per-box TCRs written by `sosmaskfuse eval --boxes ... --box-csv BOXES.csv`, takes the
`--worst` boxes of `--method` (default: the first in the file) with TCR below `--below`, and
draws for each a crop around the box (the box grown by its size, at least 48 px) from the IR
image, the visible image, the mask (`fuse` writes it to OUT/mask) and the fused image, the
box outlined and its TCR, class and height written on the IR panel. To look at why targets are
inverted (mask missed it? visible polarity? glare?) without opening every frame.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sosmaskfuse_core.formats.image_files import list_images

PANEL = 160  # px, each crop is scaled to this height


def crop_panel(image: np.ndarray, box: tuple[int, int, int, int], colour) -> np.ndarray:
    """A crop around the box (grown by the box's size, at least 48 px), box outlined."""
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    g = max(48, x1 - x0, y1 - y0)
    cx0, cy0, cx1, cy1 = max(0, x0 - g), max(0, y0 - g), min(w, x1 + g + 1), min(h, y1 + g + 1)
    bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    crop = bgr[cy0:cy1, cx0:cx1].copy()
    cv2.rectangle(crop, (x0 - cx0, y0 - cy0), (x1 - cx0, y1 - cy0), colour, 1)
    scale = PANEL / crop.shape[0]
    panel = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), PANEL), cv2.INTER_NEAREST)
    return cv2.copyMakeBorder(panel, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(128, 128, 128))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--box-csv", type=Path, required=True)
    ap.add_argument("--ir", type=Path, required=True)
    ap.add_argument("--vis", type=Path, required=True)
    ap.add_argument("--fused", type=Path, required=True)
    ap.add_argument("--mask", type=Path, help="the masks the fusion used (fuse's OUT/mask)")
    ap.add_argument("--method", help="the method column to show (default: the first)")
    ap.add_argument("--worst", type=int, default=12, help="how many boxes (lowest TCR first)")
    ap.add_argument("--below", type=float, default=0.0, help="only boxes with TCR below this")
    ap.add_argument("--out", type=Path, default=Path("target_overlays.png"))
    args = ap.parse_args()

    with open(args.box_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        ap.error(f"{args.box_csv}: no boxes")
    method = args.method or rows[0]["method"]
    rows = [r for r in rows if r["method"] == method and float(r["tcr"]) < args.below]
    rows.sort(key=lambda r: float(r["tcr"]))
    rows = rows[: args.worst]
    if not rows:
        print(f"no box of {method} has TCR below {args.below}", file=sys.stderr)
        return 0
    folders = {"ir": args.ir, "vis": args.vis, "fused": args.fused}
    if args.mask:
        folders["mask"] = args.mask
    listings = {k: list_images(v) for k, v in folders.items()}
    lines = []
    for r in rows:
        box = tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1"))
        panels = []
        for kind, listing in listings.items():
            paths = listing.get(r["image"])
            image = cv2.imread(str(paths[0]), cv2.IMREAD_COLOR) if paths else None
            if image is None:
                image = np.zeros((PANEL + 2, PANEL + 2, 3), np.uint8)
                panels.append(image)
                continue
            panel = crop_panel(image, box, (0, 0, 255) if kind != "mask" else (0, 255, 0))
            if kind == "ir":
                label = f"{r['image']} {r['class']} {int(r['y1']) - int(r['y0']) + 1}px"
                cv2.putText(panel, label, (2, 12), 0, 0.35, (0, 255, 255), 1)
                cv2.putText(panel, f"TCR {float(r['tcr']):.2f}", (2, 26), 0, 0.4, (0, 255, 255), 1)
            panels.append(panel)
        lines.append(np.hstack(panels))
    width = max(line.shape[1] for line in lines)
    sheet = np.vstack(
        [np.pad(line, ((0, 2), (0, width - line.shape[1]), (0, 0))) for line in lines]
    )
    cv2.imwrite(str(args.out), sheet)
    print(f"{len(lines)} boxes of {method} -> {args.out} ({' | '.join(listings)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
