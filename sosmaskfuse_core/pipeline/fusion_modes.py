"""The fusion modes: what each `fusion_mode` setting runs, in one record every step reads.

A `FusionMode` says how the encoder's input is built (split by the mask or not), which
weight-free strategy merges the features level by level (`strategies`), and whether the thermal
targets' contrast is guarded on the decoded image afterwards (`contrast_guard`). The names
are the settings table's `FUSION_MODES`; nothing else dispatches on the mode's string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sosmaskfuse_core.settings.table import FUSION_MODES

from .strategies import addition, imvf, spatial_channel_attention

__all__ = ["MODES", "FusionMode", "fusion_mode"]

#: One level's strategy: the feature groups of the encoder batch (N images each) and mu.
LevelStrategy = Callable[[Sequence[torch.Tensor], float], torch.Tensor]


@dataclass(frozen=True)
class FusionMode:
    """One fusion mode.

    name: the setting's value.
    masked: the encoder sees the images split by the mask, `[m ir, (1-m) ir, m vis, (1-m) vis]`
        (4 groups of N images); otherwise `[ir, vis]` (2 groups) and the mask is not used.
    strategy: merges one level's feature groups (in fp32) into the decoder's input.
    guards_contrast: after the decoder, every thermal target keeps at least a floor of its
        gain-normalised contrast, with its polarity (`contrast_guard.guard_thermal_contrast`).
    """

    name: str
    masked: bool
    strategy: LevelStrategy
    guards_contrast: bool = False

    @property
    def groups(self) -> int:
        """Images per pair in the encoder batch."""
        return 4 if self.masked else 2

    def encoder_input(
        self, ir: torch.Tensor, vis: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The encoder batch (groups of N images) from gray images and mask, N x 1 x H x W."""
        if self.masked:
            return torch.cat([ir * mask, ir * (1.0 - mask), vis * mask, vis * (1.0 - mask)])
        return torch.cat([ir, vis])

    def fuse_levels(
        self, feats: Sequence[torch.Tensor], n: int, mu: float
    ) -> list[torch.Tensor]:
        """Each level of the encoder batch's features (groups of `n` images) fused, in fp32."""
        return [self.strategy(f.float().split(n), mu) for f in feats]


def _imvf(groups: Sequence[torch.Tensor], mu: float) -> torch.Tensor:
    ir_fg, ir_bg, vis_fg, vis_bg = groups
    return imvf(ir_fg, ir_bg, vis_fg, vis_bg, mu)


def _sca(groups: Sequence[torch.Tensor], mu: float) -> torch.Tensor:
    ir, vis = groups
    return spatial_channel_attention(ir, vis)


def _addition(groups: Sequence[torch.Tensor], mu: float) -> torch.Tensor:
    ir, vis = groups
    return addition(ir, vis)


#: Every mode, by its setting value (the table's FUSION_MODES, in its order).
MODES: dict[str, FusionMode] = {
    mode.name: mode
    for mode in (
        FusionMode("imvf", masked=True, strategy=_imvf),
        FusionMode("imvf-contrast", masked=True, strategy=_imvf, guards_contrast=True),
        FusionMode("sca", masked=False, strategy=_sca),
        FusionMode("addition", masked=False, strategy=_addition),
    )
}
assert tuple(MODES) == FUSION_MODES, "fusion_modes.MODES and the settings table disagree"


def fusion_mode(name: str) -> FusionMode:
    """The mode called `name` (ValueError naming the choices otherwise)."""
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"fusion mode {name!r} is not one of {FUSION_MODES}") from None
