r"""Peak memory of `sosmaskfuse fuse` on one pair, whole frame against bands, by resolution.

    python benchmarks/bench_memory.py [--sizes 640x480 1024x768 1280x1024]
        [--configs full-fp32 full-bf16 lite-fp32 lite-bf16 (full-fp16 lite-fp16 on CUDA)]
        [--budget-mb 256 [512 ...]]
        [--timing-size 1024x768] [--repeat 3] [--device auto] [--out DIR]

Each (size, model, precision, whole | banded) runs `sosmaskfuse fuse` (the real command, its
defaults otherwise: SOS network mask, imvf-contrast) on one synthetic street pair in a process
of its own and reports that process's peak RSS (ru_maxrss; `fuse` keeps freed host memory for
reuse, `devices.retain_freed_host_memory`, so this is its peak) and, on CUDA,
torch.cuda.max_memory_allocated. "banded" fuses the autoencoder in bands within each
--budget-mb (`--fusion-memory-mb`, `pipeline.bands`); the table gives the band height it chose
and the largest gray-level difference of the fused PNG from the whole-frame run's.

Then, in one process per configuration and budget at --timing-size, the whole per-pair call
(`PairStage`, as `fuse` makes it) with and without bands, interleaved round by round: the
time ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from bench_common import parse_size, print_table, scene_pair

REPO = Path(__file__).resolve().parents[1]
MODELS = {"full": "full", "lite": "lite"}  # --autoencoder values (shipped names)
CONFIGS = ("full-fp32", "full-bf16", "lite-fp32", "lite-bf16")  # the default rows
CUDA_CONFIGS = ("full-fp16", "lite-fp16")  # fp16 needs a CUDA device


def fuse_child(folder: Path, config: str, budget_mb: float | None, device: str, out: Path) -> None:
    """Child process: `sosmaskfuse fuse` on the folder's pair; prints its peak memory as JSON."""
    import torch

    from sosmaskfuse_core import cli

    model, precision = config.split("-")
    argv = ["fuse", "--ir", str(folder / "ir"), "--vis", str(folder / "vis"), "--out", str(out)]
    argv += ["--device", device, "--precision", precision]
    # the whole frame: a budget no frame reaches (1 TiB); banded: the budget's
    argv += ["--fusion-memory-mb", str(1 << 20 if budget_mb is None else int(budget_mb))]
    if MODELS[model]:
        argv += ["--autoencoder", MODELS[model]]
    code = cli.main(argv)
    report = {"code": code, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available() and device != "cpu":
        report["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("REPORT " + json.dumps(report), flush=True)


def timing_child(folder: Path, config: str, budget_mb: float, device: str, repeat: int) -> None:
    """Child process: one PairStage, the pair fused whole and in bands, interleaved."""
    from bench_common import time_interleaved

    from sosmaskfuse_core.formats.image_files import read_image
    from sosmaskfuse_core.pipeline.builder import build_stage
    from sosmaskfuse_core.pipeline.devices import retain_freed_host_memory
    from sosmaskfuse_core.pipeline.pair_stage import Frame
    from sosmaskfuse_core.settings import FUSE, table

    model, precision = config.split("-")
    values = table.defaults(FUSE)
    values.update(autoencoder_weights=MODELS[model], precision=precision, device=device)
    stage, _ = build_stage(values)
    if stage.pipeline.device.type == "cpu":
        retain_freed_host_memory()
    ir = Frame(read_image(folder / "ir" / "p0.png", cv2.IMREAD_COLOR), "bgr8")
    vis = Frame(read_image(folder / "vis" / "p0.png", cv2.IMREAD_COLOR), "bgr8")
    backend = stage.pipeline.backend

    def run(budget: float | None):
        def call():
            backend.memory_budget = budget
            return stage(ir, vis)

        return call

    times = time_interleaved(
        {"whole": run(None), "banded": run(budget_mb * 2**20)}, repeat, stage.pipeline.device
    )
    print("REPORT " + json.dumps(times), flush=True)


def child(cmd: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *cmd], capture_output=True, text=True, cwd=REPO
    )
    for line in done.stdout.splitlines():
        if line.startswith("REPORT "):
            return json.loads(line[len("REPORT ") :])
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


def chosen_rows(config: str, width: int, height: int, budget_mb: float) -> str:
    """'bands x rows' that `fuse_within_budget` picks for this frame (imvf's footprint)."""
    from sosmaskfuse_core.models.checkpoints import load_autoencoder
    from sosmaskfuse_core.models.shipped import resolve_autoencoder
    from sosmaskfuse_core.pipeline import bands
    from sosmaskfuse_core.pipeline.fusion_modes import fusion_mode

    model, precision = config.split("-")
    shape = load_autoencoder(resolve_autoencoder(MODELS[model])[0])[0].config
    fp = bands.footprint(shape, fusion_mode("imvf"), 1, 4 if precision == "fp32" else 2)
    rows = bands.band_rows(fp, height, width, budget_mb * 2**20, shape.space_to_depth)
    if rows is None:
        return "whole"
    plan = bands.plan_bands(height, rows, scale=shape.space_to_depth)
    return f"{len(plan)} x {max(b - a for a, b in (band.rows for band in plan))}"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="+", default=["640x480", "1024x768", "1280x1024"])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS + CUDA_CONFIGS)
    ap.add_argument("--budget-mb", type=float, nargs="+", default=[256.0])
    ap.add_argument("--timing-size", default="1024x768", help="'' for no timing")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench_memory")
    ap.add_argument("--fuse-child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--timing-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fuse_child:
        folder, config, budget, out = args.fuse_child
        budget_mb = None if budget == "none" else float(budget)
        fuse_child(Path(folder), config, budget_mb, args.device, Path(out))
        return 0
    if args.timing_child:
        folder, config = args.timing_child
        timing_child(Path(folder), config, args.budget_mb[0], args.device, args.repeat)
        return 0

    def folder_for(size: str) -> Path:
        folder = args.out / size
        if not (folder / "vis" / "p0.png").is_file():
            ir, vis, _ = scene_pair(*parse_size(size))
            for sub, image in (("ir", ir), ("vis", vis)):
                (folder / sub).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / sub / "p0.png"), image)
        return folder

    budgets = ", ".join(f"{b:g}" for b in args.budget_mb)
    print(f"budgets {budgets} MiB, device {args.device}, pairs in {args.out}", flush=True)

    def fuse_run(folder: Path, size: str, config: str, budget: float | None):
        name = "whole" if budget is None else f"banded{budget:g}"
        out = args.out / "runs" / size / config / name
        budget_arg = "none" if budget is None else f"{budget:g}"
        report = child(
            ["--device", args.device, "--fuse-child", str(folder), config, budget_arg, str(out)]
        )
        return report, cv2.imread(str(out / "fused" / "p0.png"), cv2.IMREAD_UNCHANGED)

    rows, cuda = [], False
    for size in args.sizes:
        folder = folder_for(size)
        w, h = parse_size(size)
        for config in args.configs:
            whole, whole_png = fuse_run(folder, size, config, None)
            for budget in args.budget_mb:
                banded, banded_png = fuse_run(folder, size, config, budget)
                diff = np.abs(banded_png.astype(np.int16) - whole_png.astype(np.int16))
                row = [
                    size,
                    *config.split("-"),
                    f"{whole['rss_mb']:.0f}",
                    f"{budget:g}",
                    f"{banded['rss_mb']:.0f}",
                    chosen_rows(config, w, h, budget),
                    int(diff.max()),
                    f"{100 * (diff > 0).mean():.3f}%",
                ]
                if "cuda_mb" in whole:
                    cuda = True
                    row += [f"{whole['cuda_mb']:.0f}", f"{banded['cuda_mb']:.0f}"]
                rows.append(row)
                print(" | ".join(str(c) for c in row), flush=True)
    header = ["size", "model", "precision", "whole MB", "budget MiB", "banded MB", "band rows"]
    header += ["max diff", "pixels differing"]
    header += ["CUDA whole MB", "CUDA banded MB"] if cuda else []
    print()
    print_table(header, rows)

    if args.timing_size:
        folder = folder_for(args.timing_size)
        w, h = parse_size(args.timing_size)
        table_rows = []
        for config in args.configs:
            for budget in args.budget_mb:
                times = child(
                    ["--device", args.device, "--budget-mb", f"{budget:g}"]
                    + ["--repeat", str(args.repeat), "--timing-child", str(folder), config]
                )
                table_rows.append(
                    [
                        args.timing_size,
                        *config.split("-"),
                        f"{budget:g}",
                        chosen_rows(config, w, h, budget),
                        f"{times['whole']:.2f}",
                        f"{times['banded']:.2f}",
                        f"x{times['banded'] / times['whole']:.2f}",
                    ]
                )
                print(" | ".join(table_rows[-1]), flush=True)
        print()
        header = ["size", "model", "precision", "budget MiB", "band rows", "whole s/pair"]
        print_table(header + ["banded s/pair", "banded / whole"], table_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
