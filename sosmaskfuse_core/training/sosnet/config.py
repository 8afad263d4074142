"""Settings of an SOS network training run, and the HRNetV2 architecture they choose.

The architecture comes from presets and overrides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence, TypedDict

from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.models.checkpoints import CheckpointError
from sosmaskfuse_core.models.sos_hrnet import HRNetConfig, SOSNet
from sosmaskfuse_core.pipeline.preprocessing import (
    PAPER_SOS_SIZE,
)


class ArchitecturePreset(TypedDict):
    """The architecture fields a preset gives (each one can be overridden)."""

    width: int
    stem_channels: int
    layer1_blocks: int
    stage_modules: Sequence[int]
    blocks_per_branch: int


#: Architecture presets. "paper" is HRNetV2-W30 exactly (HRNetConfig's defaults); "small" is a
#: lighter HRNetV2 for CPU training: a 32-channel stem, one bottleneck, one module per stage
#: and two blocks per branch (with width 18 about 1.9 M parameters instead of 26 M).
PRESETS: dict[str, ArchitecturePreset] = {
    "paper": {
        "width": 30,
        "stem_channels": 64,
        "layer1_blocks": 4,
        "stage_modules": (1, 4, 3),
        "blocks_per_branch": 4,
    },
    "small": {
        "width": 18,
        "stem_channels": 32,
        "layer1_blocks": 1,
        "stage_modules": (1, 1, 1),
        "blocks_per_branch": 2,
    },
}


@dataclass
class SOSNetTrainConfig:
    """Every setting of a run; stored in the checkpoint's metadata."""

    data: str
    extra_data: tuple[str, ...] = ()  # more training folders (never split for validation)
    data_weights: tuple[float, ...] | None = None  # sampling weight per folder (data, *extra_data)
    scale_range: tuple[float, float] | None = None  # random zoom of each view (None: whole frame)
    extra_scale_ranges: tuple[tuple[float, float], ...] | None = None  # per extra folder
    aspect_jitter: float = 0.0
    steps_per_epoch: int | None = None  # with the sampler; default: all training images once
    iou_loss: float = 0.0  # weight of a soft-IoU (Jaccard) term added to the BCE
    val_data: str | None = None
    val_fraction: float = 0.1
    folds: int | None = None  # k-fold cross-validation: hold out fold `fold` (0 .. folds-1)
    fold: int | None = None
    size: tuple[int, int] = PAPER_SOS_SIZE  # network input, width x height
    # Architecture: None everywhere means the paper's W30, or the architecture of the file
    # given to --init / --resume when that file is one of ours.
    config: str | None = None  # a PRESETS name
    width: int | None = None  # branch widths (w, 2w, 4w, 8w)
    stem_channels: int | None = None
    layer1_blocks: int | None = None
    stage_modules: tuple[int, int, int] | None = None
    blocks_per_branch: int | None = None
    init: str | None = None
    flip: bool = True
    batch_size: int = 4
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 200
    milestones: tuple[int, ...] = (100, 150)
    lr_gamma: float = 0.1
    pos_weight: float | None = (
        None  # BCE weight of the salient class; None = the paper's plain BCE
    )
    val_every: int = 1  # epochs
    checkpoint_every: int = 200  # steps (also at every validation and at the end)
    seed: int = 118
    device: str = "auto"
    amp: bool = True

    def architecture_given(self) -> bool:
        return any(
            v is not None
            for v in (
                self.config,
                self.width,
                self.stem_channels,
                self.layer1_blocks,
                self.stage_modules,
                self.blocks_per_branch,
            )
        )

    def plain(self) -> dict:
        """The settings as plain data (lists, no tuples) for the checkpoint's metadata."""

        def plain(v):
            return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v

        return {k: plain(v) for k, v in asdict(self).items()}

    def uses_sampler(self) -> bool:
        """Whether batches come from `sampling` rather than the paper's epochs over one folder.

        The sampler serves several folders, sampling weights, zoom and the soft-IoU loss.
        """
        return (
            bool(self.extra_data)
            or self.data_weights is not None
            or self.scale_range is not None
            or self.aspect_jitter > 0
            or self.iou_loss > 0
            or self.steps_per_epoch is not None
        )


def hrnet_config(
    preset: str | None = None,
    width: int | None = None,
    stem_channels: int | None = None,
    layer1_blocks: int | None = None,
    stage_modules: Sequence[int] | None = None,
    blocks_per_branch: int | None = None,
) -> HRNetConfig:
    """An HRNetV2 config from a preset ("paper" = W30, "small") with any field overridden.

    `width` w gives branches (w, 2w) / (w, 2w, 4w) / (w, 2w, 4w, 8w), as HRNetV2-W18/W30/W48.
    """
    if preset is None:
        preset = "paper"
    if preset not in PRESETS:
        raise ValueError(f"config {preset!r}: expected one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    w = int(p["width"] if width is None else width)
    stem = p["stem_channels"] if stem_channels is None else stem_channels
    layer1 = p["layer1_blocks"] if layer1_blocks is None else layer1_blocks
    blocks = p["blocks_per_branch"] if blocks_per_branch is None else blocks_per_branch
    stages = p["stage_modules"] if stage_modules is None else stage_modules
    if w < 1 or stem < 1 or layer1 < 1 or blocks < 1:
        raise ValueError("width, stem channels and block counts must be positive")
    modules = tuple(int(m) for m in stages)
    if len(modules) != 3 or min(modules) < 1:
        raise ValueError(f"stage_modules {stages!r}: expected three positive counts")
    return HRNetConfig(
        stem_channels=int(stem),
        layer1_blocks=int(layer1),
        stage_channels=((w, 2 * w), (w, 2 * w, 4 * w), (w, 2 * w, 4 * w, 8 * w)),
        stage_modules=modules,
        blocks_per_branch=int(blocks),
    )


def _file_architecture(obj, path: Path | str | None) -> HRNetConfig | None:
    """The HRNetConfig stored in one of our checkpoints (None for other layouts)."""
    if isinstance(obj, dict) and obj.get("format") == checkpoints.FORMAT and "config" in obj:
        if obj.get("architecture") != SOSNet.architecture:
            raise CheckpointError(
                f"{path}: holds a {obj.get('architecture')!r} network, not an SOS network"
            )
        return HRNetConfig.from_dict(obj["config"])
    return None


def resolve_architecture(
    cfg: SOSNetTrainConfig, source: Path | str | None = None, obj=None
) -> HRNetConfig:
    """The run's network: from the options, else from `obj`, else the paper's W30.

    `obj` is loaded from `source`, a checkpoint of ours.
    """
    given = hrnet_config(
        cfg.config,
        cfg.width,
        cfg.stem_channels,
        cfg.layer1_blocks,
        cfg.stage_modules,
        cfg.blocks_per_branch,
    )
    stored = _file_architecture(obj, source) if obj is not None else None
    if stored is None:
        return given
    if cfg.architecture_given() and stored != given:
        raise CheckpointError(
            f"{source}: holds a network of another architecture ({stored}) than the "
            f"options ask for ({given}); leave out --config/--width/... to use the file's"
        )
    return stored
