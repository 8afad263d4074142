"""Fusion-quality table: shipped defaults next to the simple baselines, on held-out image pairs.

    python benchmarks/quality_table.py --ir DIR --vis DIR --out DIR [--held-out] [--masks DIR]
                                       [--markdown FILE] [--device auto]

Methods, each written to OUT/<method>/<stem>.png and scored with `sosmaskfuse eval`'s metrics:
  sosmaskfuse  the shipped defaults (IMV-F, shipped autoencoder, best available mask source)
  addition     the mask-free addition strategy through the same autoencoder
  sca          the mask-free spatial/channel attention strategy through the same autoencoder
  average      the plain average of the two images' luma

--held-out keeps only the pairs whose stems the shipped autoencoder's training run held out
(listed in its metadata), so no method is scored on images the network was trained on.
--masks adds the thermal target contrast kept (TCR), computed by ../shared/tools/target_contrast.py
when that tool is beside the repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sosmaskfuse_core.evaluation.fusion_quality import (
    Row,
    evaluate_image,
    format_markdown,
    mean_row,
    read_gray,
)
from sosmaskfuse_core.formats.image_files import pair_by_stem, read_image, write_image
from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER
from sosmaskfuse_core.pipeline.builder import build_pipeline

TCR_TOOL = ROOT.parent / "shared" / "tools" / "target_contrast.py"
METHODS = ("sosmaskfuse", "addition", "sca", "average")


def fuse_all(pairs, out: Path, device: str) -> None:
    pipeline, sources = build_pipeline(device=device)
    print(f"sosmaskfuse defaults: {sources}", file=sys.stderr)
    for method in METHODS:
        if method != "average":
            pipeline.update(fusion_mode="imvf" if method == "sosmaskfuse" else method)
        for i, (stem, (ir_path, vis_path)) in enumerate(pairs, 1):
            target = out / method / f"{stem}.png"
            if target.exists():
                continue
            if method == "average":  # the two images as the metrics read them
                gray = [read_gray(p).astype(np.float32) for p in (ir_path, vis_path)]
                fused = np.round((gray[0] + gray[1]) / 2).astype(np.uint8)
            else:
                fused = pipeline(read_image(ir_path), read_image(vis_path)).fused
            write_image(target, fused)
            print(f"[{method} {i}/{len(pairs)}] {stem}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ir", type=Path, required=True)
    ap.add_argument("--vis", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--held-out", action="store_true")
    ap.add_argument(
        "--masks", type=Path, help="target masks (same stems) for the thermal target contrast"
    )
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    pairs = pair_by_stem(args.ir, args.vis).pairs
    if args.held_out:
        _, meta = load_autoencoder(SHIPPED_AUTOENCODER)
        held = set(meta["data"]["held_out_stems"])
        pairs = [p for p in pairs if p[0] in held]
    print(f"{len(pairs)} pairs", file=sys.stderr)
    fuse_all(pairs, args.out, args.device)

    rows = []
    tcr = {}
    for method in METHODS:
        image_rows = [
            Row(method, stem, 1, evaluate_image(args.out / method / f"{stem}.png", ir, vis))
            for stem, (ir, vis) in pairs
        ]
        rows.append(mean_row(method, image_rows))
        if args.masks and TCR_TOOL.exists():
            result = subprocess.run(
                [
                    sys.executable,
                    str(TCR_TOOL),
                    str(args.ir),
                    str(args.masks),
                    str(args.out / method),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            tcr[method] = json.loads(result.stdout)["mean"]
    table = format_markdown(rows)
    if tcr:
        table += (
            "\nThermal target contrast kept (TCR, target_contrast.py): "
            + ", ".join(f"{m} {v:.3f}" for m, v in tcr.items())
            + "\n"
        )
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
