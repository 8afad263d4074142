"""`sosmaskfuse export-onnx`: the encoder, decoder and SOS network as ONNX files, checked in ORT.

    sosmaskfuse export-onnx --out DIR [--autoencoder full|lite|CKPT] [--sosnet CKPT] [--no-check]

Writes DIR/encoder.onnx and DIR/decoder.onnx (and DIR/sosnet.onnx with --sosnet, or when SOS
network weights ship), each with dynamic batch, height and width, then runs each file in ONNX
Runtime on an odd-sized random input and compares it with PyTorch (fp32): the exit code is 1
when a file's relative error exceeds --tolerance. The fusion strategy between encoder and
decoder has no weights and is not in the files (docs/algorithm.md). docs/performance.md says
how to build a TensorRT engine from them (trtexec with min/opt/max shapes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sosmaskfuse_core.models.checkpoints import CheckpointError, load_autoencoder, load_sosnet
from sosmaskfuse_core.models.shipped import SHIPPED_SOSNET, resolve_autoencoder, shipped_or_none


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `export-onnx`."""
    p = subparsers.add_parser(
        "export-onnx",
        help="write the networks as ONNX files (dynamic height/width) and check them in ORT",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--autoencoder",
        default="full",
        metavar="CKPT",
        help='autoencoder: "full" (default) or "lite" (the shipped models), or a checkpoint',
    )
    p.add_argument("--sosnet", default="", metavar="CKPT", help="SOS network checkpoint")
    p.add_argument(
        "--no-check", action="store_true", help="do not compare ONNX Runtime with PyTorch"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest accepted max|ORT - torch| / max|torch| (default: 1e-4)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export, then check; 0 when every file matches, 1 when one does not, 2 on an error."""
    from sosmaskfuse_core.models import onnx_export

    try:
        ae_path, _ = resolve_autoencoder(args.autoencoder)
        autoencoder, _ = load_autoencoder(ae_path)
        sos_path = args.sosnet or shipped_or_none(SHIPPED_SOSNET)
        sosnet = load_sosnet(sos_path)[0] if sos_path else None
        paths = onnx_export.export_all(args.out, autoencoder, sosnet)
    except (CheckpointError, OSError, ImportError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"wrote {path}", file=sys.stderr)
    if sosnet is None:
        print("no SOS network weights given or shipped: sosnet.onnx not written", file=sys.stderr)
    if args.no_check:
        return 0
    try:
        errors = onnx_export.check_against_torch(paths, autoencoder, sosnet)
    except ImportError:
        print(
            "error: the check needs onnxruntime (pip install 'sosmaskfuse_ros[onnx]'), "
            "or pass --no-check",
            file=sys.stderr,
        )
        return 2
    bad = {name: err for name, err in errors.items() if not err <= args.tolerance}
    for name, err in errors.items():
        verdict = "ok" if name not in bad else f"ABOVE {args.tolerance:g}"
        print(f"{name}.onnx: ONNX Runtime vs PyTorch, relative error {err:.2e} ({verdict})")
    return 1 if bad else 0
