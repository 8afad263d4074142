"""What a fusion pipeline computes: `PipelineConfig`, its settings in one frozen dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from sosmaskfuse_core.settings import table
from sosmaskfuse_core.thermal.stretch import ThermalStretch

from . import preprocessing as pp
from .contrast_guard import ContrastGuardConfig
from .fusion_modes import FusionMode, fusion_mode
from .transfer import MIN_SIZE

__all__ = ["PipelineConfig"]


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline computes; `PipelineConfig.paper()` is the paper's.

    The fields named in `SETTINGS` are settings of the table (`sosmaskfuse_core.settings.table`)
    with the same names, defaults and checks, so the default fusion mode is `imvf-contrast`.

    fusion_mode: `imvf-contrast` (IMV-F, then every thermal target's gain-normalised contrast
        guarded, mask or not: `contrast_guard`), `imvf` (the paper) or the mask-free baselines
        `sca` and `addition` (`fusion_modes`).
    mu: IMV-F foreground weight of the thermal features (0..1).
    target_contrast: the guard's floor (`ContrastGuardConfig.floor`); 0 turns it off.
    mask_threshold: None keeps the soft mask (as the paper's code); a value in (0, 1)
        binarises the mask probability at it.
    mask_input_stretch: the SOS network sees the thermal frame through `thermal_stretch`,
        so its mask is the same whatever the camera's gain and offset; False = the paper's
        input.
    output_scaling: `minmax` (the paper: per-image stretch, truncating cast) or `clip`
        (round and clip the decoder's gray levels: no frame-to-frame flicker on video).
    precision: auto (bf16 on a CPU that computes it natively, else fp32; the pipeline resolves
        it), fp32, fp16 (CUDA only) or bf16; the fusion strategy always runs in fp32.
    color_output: return BGR, the fused image as luma with the visible image's chroma.
    mask_source: where the mask comes from (`mask_source.MASK_SOURCES`); `auto` is resolved
        against the networks when the pipeline is made (`mask_source.resolve_mask_source`).
    sos_size: (width, height) the SOS network sees; None runs it at the image size
        rounded down to a multiple of 32 (keeps the aspect ratio; cheaper for small frames).
    quantize_mask: round the soft mask to 8 bits, as the reference does by writing a PNG.
    thermal_stretch: the gain normaliser of the thermal frame: what the SOS network sees with
        `mask_input_stretch`, and the gain that scales the contrast `imvf-contrast` guards.
    guard: the other settings of the contrast guard (`ContrastGuardConfig`; its `floor` is
        `target_contrast`'s).
    """

    #: Fields that are settings of the table, under the same name.
    SETTINGS: ClassVar[tuple[str, ...]] = (
        "fusion_mode",
        "mu",
        "target_contrast",
        "mask_threshold",
        "mask_input_stretch",
        "output_scaling",
        "precision",
        "color_output",
        "mask_source",
    )

    fusion_mode: str = table.default("fusion_mode")
    mu: float = table.default("mu")
    target_contrast: float = table.default("target_contrast")
    mask_threshold: float | None = table.default("mask_threshold")
    mask_input_stretch: bool = table.default("mask_input_stretch")
    output_scaling: str = table.default("output_scaling")
    precision: str = table.default("precision")
    color_output: bool = table.default("color_output")
    mask_source: str = table.default("mask_source")
    sos_size: tuple[int, int] | None = pp.PAPER_SOS_SIZE
    quantize_mask: bool = True
    thermal_stretch: ThermalStretch = dataclasses.field(default_factory=ThermalStretch)
    guard: ContrastGuardConfig = dataclasses.field(default_factory=ContrastGuardConfig)

    @property
    def mode(self) -> FusionMode:
        """The fusion mode's record (what the encoder sees, the strategy, the contrast guard)."""
        return fusion_mode(self.fusion_mode)

    @property
    def contrast_guard(self) -> ContrastGuardConfig | None:
        """The guard this configuration runs (None: the mode has none, or its floor is 0)."""
        if not self.mode.guards_contrast or self.target_contrast <= 0.0:
            return None
        return dataclasses.replace(self.guard, floor=self.target_contrast)

    @classmethod
    def paper(cls, **changes) -> PipelineConfig:
        """The reference implementation's settings (the table's `paper` preset), with `changes`.

        IMV-F, the paper's SOS input and the per-frame min-max stretch
        (`sosmaskfuse_core.settings.table.PRESETS`).
        """
        paper = {k: v for k, v in table.PRESETS["paper"].items() if k in cls.SETTINGS}
        return cls(**{**paper, **changes})

    def __post_init__(self) -> None:
        for name in self.SETTINGS:
            table.by_name(name).check(getattr(self, name))
        size = self.sos_size
        if size is not None and (len(size) != 2 or min(int(s) for s in size) < MIN_SIZE):
            raise ValueError(
                f"sos_size {size}: expected (width, height), each at least {MIN_SIZE}"
            )
