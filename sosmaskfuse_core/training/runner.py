"""What both training loops share: resumable checkpoints with metadata, NaN guard, device, AMP."""

from __future__ import annotations

import logging
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sosmaskfuse_core import __version__
from sosmaskfuse_core.models.checkpoints import CheckpointError, read_file, save_checkpoint
from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder
from sosmaskfuse_core.models.sos_hrnet import SOSNet

log = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stops and the last good checkpoint stays."""


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return f"{__version__}+{commit}{'.dirty' if dirty else ''}" if commit else __version__


@dataclass
class RunState:
    """Progress of a run, stored in its checkpoints so `--resume` continues where it stopped."""

    step: int = 0
    epoch: int = 0
    history: list[dict] = field(default_factory=list)  # one entry per validation
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "history": self.history,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RunState":
        return cls(
            step=int(d["step"]),
            epoch=int(d["epoch"]),
            history=list(d["history"]),
            seconds=float(d.get("seconds", 0.0)),
        )


def check_finite(loss: torch.Tensor, step: int) -> float:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteLoss(f"loss is {value} at step {step}")
    return value


def save_run(
    path: Path,
    model: IMVFAutoencoder | SOSNet,
    optimizer: torch.optim.Optimizer,
    state: RunState,
    metadata: dict,
    scheduler=None,
) -> None:
    """A checkpoint that loads as a model anywhere and resumes training with `--resume`."""
    training = {"state": state.to_dict(), "optimizer": optimizer.state_dict()}
    if scheduler is not None:
        training["scheduler"] = scheduler.state_dict()
    save_checkpoint(path, model, metadata, extra={"training": training})


def load_run(
    path: Path, model: IMVFAutoencoder | SOSNet, optimizer: torch.optim.Optimizer, scheduler=None
) -> RunState:
    """Restore model, optimizer and run state from a checkpoint written by `save_run`."""
    obj = read_file(path)
    if not isinstance(obj, dict) or "training" not in obj:
        raise CheckpointError(f"{path}: has no training state to resume from")
    if obj.get("architecture") != model.architecture:
        raise CheckpointError(
            f"{path}: holds a {obj.get('architecture')!r} run, not {model.architecture!r}"
        )
    stored = obj.get("config")
    if isinstance(stored, dict) and type(model.config).from_dict(stored) != model.config:
        raise CheckpointError(
            f"{path}: the run's network is {stored}, not this run's {model.config.to_dict()}; "
            "resume with the options it was started with"
        )
    model.load_state_dict(obj["state_dict"])
    optimizer.load_state_dict(obj["training"]["optimizer"])
    if scheduler is not None and "scheduler" in obj["training"]:
        scheduler.load_state_dict(obj["training"]["scheduler"])
    return RunState.from_dict(obj["training"]["state"])


def amp_context(device: torch.device, enabled: bool):
    """fp16 autocast on CUDA when enabled; plain fp32 otherwise (CPU training stays fp32)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, enabled=False)


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", enabled=enabled and device.type == "cuda")
