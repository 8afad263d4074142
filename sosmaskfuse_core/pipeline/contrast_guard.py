"""The contrast guard: no thermal target comes out weaker than a floor, or inverted, mask or not.

IMV-F keeps a thermal target's contrast where the mask finds it and mixes in the visible image's
levels everywhere else, so a person the mask half-found, darker than a lit shop front in the
visible image, comes out dark on bright (inverted), and a car colder than the road comes out as
bright as its headlights make it. The guard works on band-pass pyramids of the fused image F and
of the thermal image T (levels `first_level`..`last_level`: structures of ~2^j pixels). Wherever
the *target map* says "target", every significant thermal band coefficient must be matched in
the fused image by at least `floor` times the gain-normalised thermal coefficient, with its sign;
where it is not (too weak, or of the other sign), the shortfall is added:

    t_j = k T_j                          thermal band, k the thermal gain (`ThermalStretch`)
    d_j = g_j s(|T_j|) max(0, floor |t_j| - sign(t_j) F_j)   the shortfall, gated
    F'  = F + sum_j up_j(sign(t_j) d_j)

with s a ramp from `threshold` to 2 `threshold` thermal gray levels and g the target map at
that level. The target map (`target_map`) says where targets are, from the strongest of: the
masks' targets (the fusion mask, the classical mask: a soft step at 0.5, so the classical
mask's halo, always below 0.5, does not count), and the SOS network's own probability over
`gate_threshold` (the network is the recall: its probability, averaged into the fusion mask,
often stays under 0.5 on a small, distant or cold target); grown by `gate_radius`. The mask
decides how much, not whether. Coefficients where the fused image already has the thermal
polarity and enough of it are left alone, so outside targets, and wherever no thermal structure
is lost, the image stays the fusion's. The defaults guard levels 0 (1-2 pixel detail: small
targets live there) to 5 (~32-64 pixels); coarser structure (sky against road) is left to the
fusion. With `first_level` 1 the pyramids start at half resolution, at a third less cost. The
correction is collapsed coarse to fine and added in one pass, so the guard costs a few passes
over the frame (`filters`: OpenCV on the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .filters import dilate, pyr_down, resize

__all__ = ["ContrastGuardConfig", "guard_thermal_contrast", "target_map"]


@dataclass(frozen=True)
class ContrastGuardConfig:
    """Settings of the contrast guard (see the module docstring).

    floor: share of a target's gain-normalised thermal band the fused image keeps at least
        where the target map is 1 (the `target_contrast` setting; 0 turns the guard off).
    threshold: thermal band magnitude (gray levels, before the gain) where the guard starts;
        full strength at twice it.
    first_level / last_level: the pyramid levels guarded (level j: structures of ~2^j px).
    gate_threshold: the SOS network's probability at which the target map reaches 1.
    gate_radius: how far the target map grows around what the masks mark, as a share of the
        image's long side (a target's ring of background belongs to its contrast).
    """

    floor: float = 1.0
    threshold: float = 2.0
    first_level: int = 0
    last_level: int = 5
    gate_threshold: float = 0.15
    gate_radius: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.floor <= 4.0:
            raise ValueError(f"ContrastGuardConfig: floor {self.floor} must lie in [0, 4]")
        if not self.threshold > 0.0:
            raise ValueError(f"ContrastGuardConfig: threshold {self.threshold} must be > 0")
        if not 0 <= self.first_level <= self.last_level <= 10:
            raise ValueError(
                f"ContrastGuardConfig: need 0 <= first_level <= last_level <= 10, got "
                f"{self.first_level} and {self.last_level}"
            )
        if not 0.0 < self.gate_threshold <= 1.0 or not 0.0 <= self.gate_radius <= 0.2:
            raise ValueError(
                "ContrastGuardConfig: need 0 < gate_threshold <= 1 and 0 <= gate_radius <= 0.2"
            )


#: The soft step at 0.5 that turns a mask into target evidence: 0 below 0.45, 1 above 0.55.
MASK_STEP = (0.45, 0.55)


def target_map(
    masks: Sequence[torch.Tensor],
    network: torch.Tensor | None,
    config: ContrastGuardConfig,
) -> torch.Tensor:
    """The guard's target map at half resolution (`pyr_down`'s size), grown by gate_radius.

    masks: N x 1 x H x W masks in [0, 1] whose targets are where they pass 0.5 (the fusion
    mask; the classical mask); network: the SOS network's probability, a target from
    `gate_threshold` on (None without a network).
    """
    lo, hi = MASK_STEP
    parts = [((m.float() - lo) / (hi - lo)).clamp(0.0, 1.0) for m in masks]
    if network is not None:
        parts.append((network.float() / config.gate_threshold).clamp(0.0, 1.0))
    gate = pyr_down(torch.cat(parts, 1)).amax(1, keepdim=True)
    radius = round(0.5 * config.gate_radius * max(masks[0].shape[-2:]))
    return dilate(gate, radius)


def guard_thermal_contrast(
    fused: torch.Tensor,
    ir: torch.Tensor,
    targets: torch.Tensor,
    gain: torch.Tensor | float = 1.0,
    config: ContrastGuardConfig | None = None,
) -> torch.Tensor:
    """`fused` (N x 1 x H x W gray levels) with every guarded thermal band floored.

    ir: the thermal luma the fusion saw (N x 1 x H x W, 0..255); targets: the target map
    (`target_map`, at half resolution; any size is resampled); gain: the thermal frames' gain
    (N x 1 x 1 x 1). See the module docstring.
    """
    cfg = config or ContrastGuardConfig()
    fused = fused.float()
    if cfg.floor <= 0.0:
        return fused
    level = torch.cat([fused, ir.float()], 1)  # F and T side by side
    start = min(cfg.first_level, 1)  # pyramids from half resolution unless level 0 is guarded
    if start:
        level = pyr_down(level)
    level = torch.cat([level, resize(targets.float(), tuple(level.shape[-2:]))], 1)
    gauss = [level]  # F, T and the target map, level by level from `start`
    for _ in range(cfg.last_level + 1 - start):  # one level below the last band
        if min(level.shape[-2:]) < 4:
            break
        level = pyr_down(level)
        gauss.append(level)
    correction: torch.Tensor | None = None
    for j in range(len(gauss) - 2, -1, -1):  # coarse to fine, collapsing as it goes
        here = gauss[j]
        size = tuple(here.shape[-2:])
        if correction is not None:
            correction = resize(correction, size)
        if j + start < cfg.first_level:
            continue
        band = here[:, :2] - resize(gauss[j + 1][:, :2], size)
        f, t, gate = band[:, :1], band[:, 1:2], here[:, 2:]
        magnitude = t.abs()
        weight = gate * ((magnitude - cfg.threshold) / cfg.threshold).clamp(0.0, 1.0)
        direction = torch.sign(t)
        shortfall = (cfg.floor * gain * magnitude - direction * f).clamp_(min=0.0)
        step = direction * shortfall * weight
        correction = step if correction is None else correction + step
    if correction is None:
        return fused
    return fused + resize(correction, tuple(fused.shape[-2:]))
