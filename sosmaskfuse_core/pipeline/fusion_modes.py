"""The fusion modes: what each `fusion_mode` setting runs, in one record every step reads.

A `FusionMode` says how the encoder's input is built (split by the mask or not), which
weight-free strategy merges the features level by level (`strategies`), which feature groups
the strategy takes whole-image statistics of (`mean_groups`: a caller that fuses in parts,
`bands`, computes those once), and whether the thermal targets' contrast is guarded on the
decoded image afterwards (`contrast_guard`). The names are the settings table's
`FUSION_MODES`; nothing else dispatches on the mode's string.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sosmaskfuse_core.settings.table import FUSION_MODES

from .strategies import addition, imvf, spatial_channel_attention

__all__ = ["MODES", "FusionMode", "fusion_mode"]

#: One level's strategy: the feature groups of the encoder batch (N images each), mu, and the
#: whole image's channel means (N x C x 1 x 1) of the groups in `mean_groups`, or None (the
#: maps' own means).
LevelStrategy = Callable[
    [Sequence[torch.Tensor], float, Sequence[torch.Tensor] | None], torch.Tensor
]


@dataclass(frozen=True)
class FusionMode:
    """One fusion mode.

    name: the setting's value.
    masked: the encoder sees the images split by the mask, `[m ir, (1-m) ir, m vis, (1-m) vis]`
        (4 groups of N images); otherwise `[ir, vis]` (2 groups) and the mask is not used.
    strategy: merges one level's feature groups (in fp32) into the decoder's input.
    mean_groups: the groups whose spatial channel means (over the whole image) the strategy
        uses: SCA's channel weights (the backgrounds for IMV-F, both images for SCA).
    guards_contrast: after the decoder, every thermal target keeps at least a floor of its
        gain-normalised contrast, with its polarity (`contrast_guard.guard_thermal_contrast`).
    """

    name: str
    masked: bool
    strategy: LevelStrategy
    mean_groups: tuple[int, ...] = ()
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

    def mean_images(self, batch: torch.Tensor, n: int) -> torch.Tensor | None:
        """The images of an encoder batch whose features' channel means the strategy uses."""
        if not self.mean_groups:
            return None
        return torch.cat([batch[g * n : (g + 1) * n] for g in self.mean_groups])

    def fuse_levels(
        self,
        feats: Sequence[torch.Tensor],
        n: int,
        mu: float,
        channel_means: Sequence[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Each level of the encoder batch's features (groups of `n` images) fused, in fp32.

        channel_means: per level, the whole image's spatial channel means of the features of
        `mean_images` (len(mean_groups) * n x C x 1 x 1), for features that are a part of the
        image (`bands`); None takes them from `feats`.
        """
        out = []
        for k, f in enumerate(feats):
            means = None if channel_means is None else channel_means[k].float().split(n)
            out.append(self.strategy(f.float().split(n), mu, means))
        return out


def _imvf(
    groups: Sequence[torch.Tensor], mu: float, means: Sequence[torch.Tensor] | None
) -> torch.Tensor:
    ir_fg, ir_bg, vis_fg, vis_bg = groups
    bg_means = None if means is None else (means[0], means[1])
    return imvf(ir_fg, ir_bg, vis_fg, vis_bg, mu, bg_channel_means=bg_means)


def _sca(
    groups: Sequence[torch.Tensor], mu: float, means: Sequence[torch.Tensor] | None
) -> torch.Tensor:
    ir, vis = groups
    return spatial_channel_attention(
        ir, vis, channel_means=None if means is None else (means[0], means[1])
    )


def _addition(
    groups: Sequence[torch.Tensor], mu: float, means: Sequence[torch.Tensor] | None
) -> torch.Tensor:
    ir, vis = groups
    return addition(ir, vis)


#: Every mode, by its setting value (the table's FUSION_MODES, in its order).
MODES: dict[str, FusionMode] = {
    mode.name: mode
    for mode in (
        FusionMode("imvf", masked=True, strategy=_imvf, mean_groups=(1, 3)),
        FusionMode(
            "imvf-contrast", masked=True, strategy=_imvf, mean_groups=(1, 3), guards_contrast=True
        ),
        FusionMode("sca", masked=False, strategy=_sca, mean_groups=(0, 1)),
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
