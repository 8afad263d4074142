"""Device and precision choices, `auto|cpu|cuda[:N]` and `fp32|fp16|bf16`, with clear errors."""

from __future__ import annotations

import contextlib
import re

import torch

from sosmaskfuse_core.settings.table import PRECISIONS

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """`auto` picks the first CUDA device when there is one, else the CPU."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not m:
        raise ValueError(f"device {spec!r}: expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {spec!r}: CUDA is not available on this machine (torch "
            f"{torch.__version__}); use device 'cpu' or 'auto'"
        )
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present"
        )
    return torch.device("cuda", index)


def check_precision(precision: str, device: torch.device) -> str:
    """Validate a precision for a device; fp16 needs CUDA.

    CPU half convolutions are slow or missing.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision 'fp16' needs a CUDA device; on the CPU use 'fp32' or 'bf16'")
    return precision


def autocast(device: torch.device, precision: str):
    """An autocast context for fp16/bf16, a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
