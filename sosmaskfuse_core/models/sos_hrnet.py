"""The SOS network of SOSMaskFuse: HRNetV2-W30 on one thermal channel -> one salient-object logit.

Module names follow the official HRNet code (HRNet-Semantic-Segmentation), so an ImageNet
HRNetV2-W30 checkpoint loads by name (`conv1`, `bn1`, `conv2`, `bn2`, `layer1`,
`transition1..3`, `stage2..4`; the classifier head is dropped). The authors' SOSMaskFuse
checkpoint (`normal_epoch_170.pth`) wraps the same modules under other names:

======================================  ==============================================
ours (official HRNet)                   authors'
======================================  ==============================================
``conv1``, ``bn1``, ``conv2``, ``bn2``  ``layer_thermal_1.0``, ``.1``, ``.3``, ``.4``
``layer1``                              ``layer_thermal_1.6``
``transition{n}``, ``stage{n}``         ``layer_thermal_transition{n}``, ``layer_thermal_stage{n}``
``last_layer``                          ``last_layer``
(none)                                  ``encoder_thermal_conv1.weight``: the same tensor as
                                        ``layer_thermal_1.0.weight``, stored twice
======================================  ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "sosnet_hrnetv2_w30"

# The authors' duplicate of the stem convolution (one shared tensor in their file).
AUTHORS_STEM_ALIAS = "encoder_thermal_conv1.weight"
_AUTHORS_PREFIXES = (
    ("layer_thermal_1.0.", "conv1."),
    ("layer_thermal_1.1.", "bn1."),
    ("layer_thermal_1.3.", "conv2."),
    ("layer_thermal_1.4.", "bn2."),
    ("layer_thermal_1.6.", "layer1."),
    ("layer_thermal_transition", "transition"),
    ("layer_thermal_stage", "stage"),
)


@dataclass(frozen=True)
class HRNetConfig:
    """HRNetV2 hyper-parameters; the defaults are the W30 network of SOSMaskFuse."""

    in_channels: int = 1
    stem_channels: int = 64
    layer1_blocks: int = 4
    stage_channels: tuple[tuple[int, ...], ...] = ((30, 60), (30, 60, 120), (30, 60, 120, 240))
    stage_modules: tuple[int, ...] = (1, 4, 3)
    blocks_per_branch: int = 4
    num_classes: int = 1
    bn_momentum: float = 0.1

    def to_dict(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "stem_channels": self.stem_channels,
            "layer1_blocks": self.layer1_blocks,
            "stage_channels": [list(c) for c in self.stage_channels],
            "stage_modules": list(self.stage_modules),
            "blocks_per_branch": self.blocks_per_branch,
            "num_classes": self.num_classes,
            "bn_momentum": self.bn_momentum,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "HRNetConfig":
        return cls(
            in_channels=int(d["in_channels"]),
            stem_channels=int(d["stem_channels"]),
            layer1_blocks=int(d["layer1_blocks"]),
            stage_channels=tuple(tuple(int(c) for c in s) for s in d["stage_channels"]),
            stage_modules=tuple(int(m) for m in d["stage_modules"]),
            blocks_per_branch=int(d["blocks_per_branch"]),
            num_classes=int(d["num_classes"]),
            bn_momentum=float(d["bn_momentum"]),
        )


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, momentum: float, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes, momentum=momentum)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=momentum)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, momentum: float, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=momentum)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=momentum)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=momentum)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + residual)


def _conv_bn(
    in_channels: int,
    out_channels: int,
    momentum: float,
    kernel: int = 3,
    stride: int = 1,
    relu: bool = True,
) -> nn.Sequential:
    conv = (
        conv3x3(in_channels, out_channels, stride)
        if kernel == 3
        else nn.Conv2d(in_channels, out_channels, 1, bias=False)
    )
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(out_channels, momentum=momentum)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then every output branch sums all inputs (fuse SUM)."""

    def __init__(self, channels: tuple[int, ...], num_blocks: int, momentum: float) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c, c, momentum) for _ in range(num_blocks)))
            for c in channels
        )
        n = len(channels)
        fuse_layers = []
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:  # 1x1 conv + BN, nearest upsampling happens in forward
                    row.append(_conv_bn(channels[j], channels[i], momentum, kernel=1, relu=False))
                elif j == i:
                    row.append(None)
                else:  # i - j stride-2 3x3 steps, the last one to c_i without ReLU
                    steps = [
                        _conv_bn(channels[j], channels[j], momentum, stride=2)
                        for _ in range(i - j - 1)
                    ]
                    steps.append(
                        _conv_bn(channels[j], channels[i], momentum, stride=2, relu=False)
                    )
                    row.append(nn.Sequential(*steps))
            # None: the branch's own input; ModuleList holds None, torch's stubs say Module only
            fuse_layers.append(nn.ModuleList(row))  # type: ignore[arg-type]
        self.fuse_layers = nn.ModuleList(fuse_layers)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(cast(nn.ModuleList, row)):  # a ModuleList of ModuleLists
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="nearest")
                y = y + z
            out.append(F.relu(y))
        return out


class SOSNet(nn.Module):
    """HRNetV2 segmentation network: N x 1 x H x W (normalised thermal) -> N x 1 x H x W logits."""

    architecture = ARCHITECTURE

    def __init__(self, config: HRNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or HRNetConfig()
        m = cfg.bn_momentum
        self.conv1 = conv3x3(cfg.in_channels, cfg.stem_channels, stride=2)
        self.bn1 = nn.BatchNorm2d(cfg.stem_channels, momentum=m)
        self.conv2 = conv3x3(cfg.stem_channels, cfg.stem_channels, stride=2)
        self.bn2 = nn.BatchNorm2d(cfg.stem_channels, momentum=m)

        planes = cfg.stem_channels
        width = planes * Bottleneck.expansion
        downsample = _conv_bn(cfg.stem_channels, width, m, kernel=1, relu=False)
        blocks = [Bottleneck(cfg.stem_channels, planes, m, downsample)]
        blocks += [Bottleneck(width, planes, m) for _ in range(cfg.layer1_blocks - 1)]
        self.layer1 = nn.Sequential(*blocks)

        previous: tuple[int, ...] = (width,)
        for n, (channels, modules) in enumerate(
            zip(cfg.stage_channels, cfg.stage_modules), start=1
        ):
            setattr(self, f"transition{n}", self._transition(previous, channels, m))
            setattr(
                self,
                f"stage{n + 1}",
                nn.Sequential(
                    *(
                        HighResolutionModule(channels, cfg.blocks_per_branch, m)
                        for _ in range(modules)
                    )
                ),
            )
            previous = channels

        total = sum(cfg.stage_channels[-1])
        self.last_layer = nn.Sequential(
            nn.Conv2d(total, total, 1),
            nn.BatchNorm2d(total, momentum=m),
            nn.ReLU(inplace=True),
            nn.Conv2d(total, cfg.num_classes, 1),
        )

    @staticmethod
    def _transition(
        previous: tuple[int, ...], channels: tuple[int, ...], momentum: float
    ) -> nn.ModuleList:
        layers: list[nn.Module | None] = []
        for i, c in enumerate(channels):
            if i < len(previous):
                layers.append(None if previous[i] == c else _conv_bn(previous[i], c, momentum))
            else:  # a new, coarser branch from the last existing one
                layers.append(nn.Sequential(_conv_bn(previous[-1], c, momentum, stride=2)))
        # None: the branch passes through; ModuleList holds None, torch's stubs say Module only
        return nn.ModuleList(layers)  # type: ignore[arg-type]

    @property
    def num_stages(self) -> int:
        return len(self.config.stage_channels)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The multi-resolution outputs of the last stage."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for n in range(1, self.num_stages + 1):
            transition = getattr(self, f"transition{n}")
            inputs = []
            for i, layer in enumerate(transition):
                source = xs[i] if i < len(xs) else xs[-1]
                inputs.append(source if layer is None else layer(source))
            xs = getattr(self, f"stage{n + 1}")(inputs)
        return xs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = self.features(x)
        size = xs[0].shape[-2:]
        ups = [xs[0]] + [
            F.interpolate(t, size=size, mode="bilinear", align_corners=True) for t in xs[1:]
        ]
        logit = self.last_layer(torch.cat(ups, 1))
        return F.interpolate(logit, size=x.shape[-2:], mode="bilinear", align_corners=True)


# --- the authors' and ImageNet key layouts ---------------------------------------------------


def authors_to_ours(key: str) -> str | None:
    """Map one authors' key to ours; None for the duplicate stem alias.

    The alias carries no weight of its own.
    """
    if key == AUTHORS_STEM_ALIAS:
        return None
    for theirs, ours in _AUTHORS_PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return key


def ours_to_authors(key: str) -> str:
    for theirs, ours in _AUTHORS_PREFIXES:
        if key.startswith(ours) and (ours.endswith(".") or key[len(ours)].isdigit()):
            return theirs + key[len(ours) :]
    return key


def is_authors_layout(keys) -> bool:
    keys = set(keys)
    return "layer_thermal_1.0.weight" in keys and "last_layer.3.weight" in keys


def is_imagenet_layout(keys) -> bool:
    """An official HRNet ImageNet classification checkpoint (it has the classifier head)."""
    keys = set(keys)
    return (
        "conv1.weight" in keys
        and "stage4.0.branches.0.0.conv1.weight" in keys
        and any(k.startswith(("incre_modules.", "classifier.", "final_layer.")) for k in keys)
    )
