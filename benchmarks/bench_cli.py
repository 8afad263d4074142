r"""Per-pair time of `sosmaskfuse fuse` against the reference structure, each in its own process.

    python benchmarks/bench_cli.py [--size 640x480] [--pairs 4] [--lite LITE.pt] [--out DIR]

What the issue's acceptance measures: separate processes, per-pair times with start-up left
out. The folder holds --pairs synthetic street pairs with their 8-bit masks (`--mask-dir`, so
every run fuses with the same mask). The reference structure (`bench_common.
reference_structure`: four encoder calls, the decoder, PyTorch fp32 NCHW, default allocator)
runs in a child process; each `fuse` configuration runs as the real command in another. Per
pair: the median over the pairs after the first (the first also pays one-time set-up); each
row's fused images are compared with the reference's (within 1 gray level for fp32, 3
otherwise). The lite rows are compared with the reference structure run on the lite weights.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from bench_common import parse_size, print_table, scene_pair, within

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {  # row -> (autoencoder, fuse options)
    "fuse torch fp32": ("full", ["--backend", "torch"]),
    "fuse onnxruntime fp32": ("full", ["--backend", "onnxruntime"]),
    "fuse torch bf16": ("full", ["--precision", "bf16"]),
    "fuse lite torch fp32": ("lite", []),
    "fuse lite torch bf16": ("lite", ["--precision", "bf16"]),
}


def make_folder(root: Path, width: int, height: int, pairs: int) -> None:
    for sub in ("ir", "vis", "mask"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(pairs):
        ir, vis, mask = scene_pair(width, height, t=1.0 + i)
        for sub, image in (("ir", ir), ("vis", vis), ("mask", mask)):
            cv2.imwrite(str(root / sub / f"p{i}.png"), image)


def reference_child(root: Path, weights: str, out: Path) -> None:
    """Child process: the reference structure on every pair; prints per-pair seconds."""
    import torch
    from bench_common import autoencoder, reference_structure

    ae, _ = autoencoder(weights)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((root / "ir").glob("*.png")):
        ir = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        vis = cv2.imread(str(root / "vis" / path.name))
        mask = cv2.imread(str(root / "mask" / path.name), cv2.IMREAD_GRAYSCALE)
        t = time.perf_counter()
        fused = reference_structure(ae, ir, vis, mask, torch.device("cpu"))()
        print(f"pair {time.perf_counter() - t:.4f}", flush=True)
        cv2.imwrite(str(out / path.name), fused)


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def agreement(a_dir: Path, b_dir: Path, levels: int) -> float:
    fractions = []
    for path in sorted(a_dir.glob("*.png")):
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(b_dir / path.name), cv2.IMREAD_UNCHANGED)
        fractions.append(within(a, b, levels))
    return float(np.mean(fractions))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--lite", default="lite", help="lite weights (default: the shipped file)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/sosmaskfuse_bench_cli"))
    ap.add_argument("--rows", nargs="+", help="only these rows")
    ap.add_argument(
        "--reference-child", nargs=2, metavar=("WEIGHTS", "OUT"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.reference_child:
        reference_child(args.out, args.reference_child[0], Path(args.reference_child[1]))
        return 0
    w, h = parse_size(args.size)
    make_folder(args.out, w, h, args.pairs)
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(f"{args.pairs} pairs at {w}x{h}, OMP_NUM_THREADS={threads}, folder {args.out}")
    rows = {k: v for k, v in CONFIGS.items() if not args.rows or k in args.rows}
    lite = (
        args.lite
        if args.lite != "lite"
        else str(REPO / "sosmaskfuse_core/models/weights/imvf_autoencoder_lite.pt")
    )
    times, refs = {}, {}
    for model in sorted({m for m, _ in rows.values()} | {"full"}):
        weights = "full" if model == "full" else lite
        out = args.out / f"reference_{model}"
        text = run(
            [
                sys.executable,
                __file__,
                "--out",
                str(args.out),
                "--reference-child",
                weights,
                str(out),
            ]
        )
        per_pair = [float(v) for v in re.findall(r"^pair ([\d.]+)$", text, re.M)]
        times[f"reference structure ({model})"] = statistics.median(per_pair[1:] or per_pair)
        refs[model] = out
    for row, (model, options) in rows.items():
        out = args.out / row.replace(" ", "_")
        cmd = [
            sys.executable,
            "-m",
            "sosmaskfuse_core.cli",
            "fuse",
            "--ir",
            str(args.out / "ir"),
            "--vis",
            str(args.out / "vis"),
            "--mask-dir",
            str(args.out / "mask"),
            "--out",
            str(out),
            "--device",
            "cpu",
            # the reference computes the paper's IMV-F; fuse's default is imvf-contrast
            "--fusion-mode",
            "imvf",
            *options,
        ]
        if model == "lite":
            cmd += ["--autoencoder", lite]
        text = run(cmd)
        found = re.search(r"median after the first: ([\d.]+) s", text)
        times[row] = float(found.group(1)) if found else float("nan")
        levels = 3 if "bf16" in row else 1
        times[row, "agree"] = agreement(out / "fused", refs[model], levels), levels
    base = times["reference structure (full)"]
    table = []
    for name, t in times.items():
        if isinstance(name, tuple):
            continue
        agree = times.get((name, "agree"))
        table.append(
            [
                name,
                f"{t:.2f}",
                f"{1 / t:.2f}",
                f"x{base / t:.2f}",
                "-" if agree is None else f"{100 * agree[0]:.2f}% (<= {agree[1]})",
            ]
        )
    print_table(["row", "s/pair", "pairs/s", "vs reference (full)", "pixels within"], table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
