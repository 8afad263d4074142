"""The contrast guard: no thermal target comes out weaker than a floor, or inverted, mask or not.

IMV-F keeps a thermal target's contrast only where the mask finds it; elsewhere the fused image
takes mostly the visible image's levels, so a person the mask missed, darker than a lit shop
front in the visible image, comes out dark on bright (inverted), and a car colder than the road
comes out as bright as its headlights make it. The guard works on band-pass pyramids of the
fused image F and of the thermal image T (Burt and Adelson's Laplacian pyramid, levels
`first_level`..`last_level`: structures of ~2^j pixels): at every coefficient where the thermal
band is significant, the fused band must carry at least `floor` times the (gain-normalised)
thermal band with the same sign; where it does not (too weak, or of the other sign), the
shortfall is added. The mask decides how much (`floor_in_mask` inside it), not whether:

    t_j = k T_j                        thermal band, k the thermal gain (`ThermalStretch`)
    a   = floor + (floor_in_mask - floor) m_j
    d_j = max(0, a |t_j| - sign(t_j) F_j) * s(|T_j|)        shortfall, significance-weighted
    F'  = F + sum_j up_j(sign(t_j) d_j)

with s a ramp from `threshold` to 2 `threshold` thermal gray levels. Coefficients where the
fused image already has the thermal polarity and enough of it are left alone, so the image stays
the fusion's wherever no thermal structure is lost. All of it runs on the tensors' device, on
grids of 1/2 .. 1/2^last_level of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ContrastGuardConfig", "guard_thermal_contrast", "laplacian_pyramid"]

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


@dataclass(frozen=True)
class ContrastGuardConfig:
    """Settings of `guard_thermal_contrast`.

    floor: share of a significant thermal band the fused image keeps outside the mask.
    floor_in_mask: the same inside the mask (m = 1); in between, linear in m.
    threshold: thermal band magnitude (gray levels, before the gain) where the guard starts;
        full strength at twice it.
    first_level / last_level: the pyramid levels guarded (level j: structures of ~2^j px).
    """

    floor: float = 0.7
    floor_in_mask: float = 1.0
    threshold: float = 2.0
    first_level: int = 1
    last_level: int = 6

    def __post_init__(self) -> None:
        if not 0.0 <= self.floor <= self.floor_in_mask <= 4.0:
            raise ValueError(
                f"ContrastGuardConfig: need 0 <= floor <= floor_in_mask <= 4, got {self.floor} "
                f"and {self.floor_in_mask}"
            )
        if not self.threshold > 0.0:
            raise ValueError(f"ContrastGuardConfig: threshold {self.threshold} must be > 0")
        if not 0 <= self.first_level <= self.last_level <= 10:
            raise ValueError(
                f"ContrastGuardConfig: need 0 <= first_level <= last_level <= 10, got "
                f"{self.first_level} and {self.last_level}"
            )


def _blur(x: torch.Tensor) -> torch.Tensor:
    """The 5-tap binomial blur, separable, edges replicated."""
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16.0
    c = x.shape[1]
    row, column = k.view(1, 1, 1, 5).expand(c, 1, 1, 5), k.view(1, 1, 5, 1).expand(c, 1, 5, 1)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), row, groups=c)
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), column, groups=c)


def _down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[..., ::2, ::2]


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`x` resized bilinearly to `like`'s height and width."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(bands 0..levels-1, the low-pass residual) of N x C x H x W images."""
    bands = []
    for _ in range(levels):
        if min(x.shape[-2:]) < 4:
            break
        low = _down(x)
        bands.append(x - _up(low, x))
        x = low
    return bands, x


def guard_thermal_contrast(
    fused: torch.Tensor,
    ir: torch.Tensor,
    mask: torch.Tensor,
    gain: torch.Tensor | float = 1.0,
    config: ContrastGuardConfig | None = None,
) -> torch.Tensor:
    """`fused` (N x 1 x H x W gray levels) with every significant thermal band floored.

    ir: the thermal luma the fusion saw (N x 1 x H x W, 0..255); mask: the fusion's mask;
    gain: the thermal frames' gain (N x 1 x 1 x 1). See the module docstring.
    """
    cfg = config or ContrastGuardConfig()
    fused, ir, mask = fused.float(), ir.float(), mask.float()
    levels = cfg.last_level + 1
    f_bands, _ = laplacian_pyramid(fused, levels)
    t_bands, _ = laplacian_pyramid(ir, levels)
    correction: torch.Tensor | None = None
    m = mask
    for j in range(len(t_bands) - 1, -1, -1):  # coarse to fine, collapsing as we go
        if correction is not None:
            correction = _up(correction, t_bands[j])
        if cfg.first_level <= j <= cfg.last_level:
            t, f = t_bands[j], f_bands[j]
            mj = m
            if mj.shape[-2:] != t.shape[-2:]:
                mj = F.interpolate(m, size=t.shape[-2:], mode="area")
            floor = cfg.floor + (cfg.floor_in_mask - cfg.floor) * mj
            magnitude = t.abs()
            weight = ((magnitude - cfg.threshold) / cfg.threshold).clamp(0.0, 1.0) * mj
            direction = torch.sign(t)
            shortfall = (floor * gain * magnitude - direction * f).clamp(min=0.0) * weight
            step = direction * shortfall
            correction = step if correction is None else correction + step
    if correction is None:
        return fused
    return fused + _up(correction, fused)
