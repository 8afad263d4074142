"""A fleet run's settings: inputs, output folder, cluster address and each worker's resources.

Plain Python (no Ray): `FleetConfig` checks the values, `worker_device` chooses the models'
device in a worker, `worker_count` how many workers the cluster fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FleetConfig:
    """Where the bags are, where their outputs go, and the Ray resources of each worker."""

    inputs: tuple[Path, ...]
    out_dir: Path
    ray_address: str | None = None  # None: start a local Ray on this machine
    workers: int | None = None  # None: as many as the cluster's CPUs (or GPUs) fit
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_retries: int = 2  # attempts after a worker died in the middle of a bag
    overwrite: bool = False
    #: Fault injection for tests: the first worker exits (os._exit) after fusing this many pairs.
    crash_first_worker_after: int | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("no input bags or folders given")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers {self.workers}: must be at least 1")
        if self.cpus_per_worker <= 0:
            raise ValueError(f"--cpus-per-worker {self.cpus_per_worker:g}: must be positive")
        if self.gpus_per_worker < 0:
            raise ValueError(f"--gpus-per-worker {self.gpus_per_worker:g}: must not be negative")
        if self.gpus_per_worker > 1 and not float(self.gpus_per_worker).is_integer():
            raise ValueError(
                f"--gpus-per-worker {self.gpus_per_worker:g}: fractions must be below 1"
            )
        if self.max_retries < 0:
            raise ValueError(f"--max-retries {self.max_retries}: must not be negative")


def worker_device(device: str, gpus_per_worker: float) -> str:
    """The models' device in a worker: the GPU Ray reserved for it, else the CPU."""
    wants_cuda = device.strip().lower().startswith("cuda")
    if gpus_per_worker > 0:
        return "cuda" if device.strip().lower() == "auto" else device
    if wants_cuda:
        raise ValueError(
            f"--device {device} needs --gpus-per-worker (a GPU reserved for each worker)"
        )
    return "cpu"  # auto without a reserved GPU: never use a GPU that Ray did not hand out


def worker_count(config: FleetConfig, resources: dict[str, float], to_run: int) -> int:
    """--workers, else as many as the cluster's GPUs (with --gpus-per-worker) or CPUs fit.

    Never more than there are bags to fuse.
    """
    if config.workers:
        return max(1, min(config.workers, to_run))
    if config.gpus_per_worker > 0:
        fit = math.floor(resources.get("GPU", 0.0) / config.gpus_per_worker + 1e-9)
    else:
        fit = math.floor(resources.get("CPU", 0.0) / config.cpus_per_worker + 1e-9)
    return max(1, min(fit, to_run))
