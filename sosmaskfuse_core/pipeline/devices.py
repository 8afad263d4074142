"""Device and precision choices, `auto|cpu|cuda[:N]` and `fp32|fp16|bf16`, with clear errors.

Also the process-wide knobs of the entry points (CPU threads, the allocator) and the memory a
device has free.
"""

from __future__ import annotations

import contextlib
import functools
import os
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


def describe_device(device: torch.device) -> str:
    """The device in words, for logs and diagnostics' hardware_id: `cpu`, `cuda:0 NVIDIA ...`."""
    if device.type == "cuda":
        return f"{device} {torch.cuda.get_device_name(device)}"
    return str(device)


@functools.cache
def native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively: AVX512-BF16 or AMX-BF16 in Linux's `cpuinfo`.

    False where the file cannot be read (other systems): fp32 is the safe choice there.
    """
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device, backend: str = "torch") -> str:
    """The precision a `precision` setting runs on `device` with `backend`.

    `auto` is bf16 on a CPU that computes it natively (PyTorch; ONNX Runtime runs fp32), fp32
    elsewhere; the others as they are.
    """
    if precision != "auto":
        return precision
    native = device.type == "cpu" and backend != "onnxruntime" and native_bf16()
    return "bf16" if native else "fp32"


def check_precision(precision: str, device: torch.device) -> str:
    """Validate a precision for a device; fp16 needs CUDA.

    CPU half convolutions are slow or missing.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision 'fp16' needs a CUDA device; on the CPU use 'fp32' or 'bf16'")
    return precision


#: The autoencoder pass's memory budget on the CPU when the setting says auto (0): at 1280 x 1024
#: the full model fp32 then peaks at ~1.2 GB for the whole `fuse` process (docs/performance.md).
CPU_FUSION_MEMORY_MB = 512


def fusion_memory_budget(device: torch.device, memory_mb: int = 0) -> float:
    """Bytes the autoencoder pass may use on `device` (`fusion_memory_mb`; 0 = auto).

    Auto: CPU_FUSION_MEMORY_MB on the CPU, a quarter of a CUDA device's memory.
    """
    if memory_mb > 0:
        return float(memory_mb) * 2**20
    if device.type == "cuda":
        return 0.25 * torch.cuda.get_device_properties(device).total_memory
    return float(CPU_FUSION_MEMORY_MB) * 2**20


def autocast(device: torch.device, precision: str):
    """An autocast context for fp16/bf16, a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def set_cpu_threads(threads: int) -> int:
    """Let torch use `threads` CPU threads (the `cpu_threads` setting); 0 leaves them as they are.

    In a fresh process "as they are" is torch's default (one per core). Process-wide, like
    `retain_freed_host_memory`: entry points call it (the node at configure, the `fuse` and
    `bag` commands), the library never does. Returns the threads now in use.
    """
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def available_memory(device: torch.device) -> int | None:
    """Bytes a new allocation can take on `device` now; None where that cannot be told.

    CUDA: the driver's free memory plus what torch's caching allocator holds unused. CPU:
    the kernel's MemAvailable (Linux), else the free physical pages.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def retain_freed_host_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the system.

    CPU inference allocates and frees buffers of tens of megabytes per layer; by default glibc
    maps each afresh (mmap) and unmaps it on free, so every layer pays page faults on new
    memory (in a VM, several times the cost of the arithmetic of an elementwise pass). With
    mmap off for malloc and trimming disabled, freed blocks are reused: the fusion of a 640x480
    pair ran 10-15% faster on this project's VM, at the price of the process keeping its peak
    memory. Process-wide: entry points (the `fuse` and `bag` commands, a node's main) call it,
    the library never does. Returns False where it does not apply (not glibc).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
