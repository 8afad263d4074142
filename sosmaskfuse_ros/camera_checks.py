"""What the fusion node checks once per camera sizes: memory, registration and frame shapes.

* The memory one pair needs at its processing size (every layer output of the autoencoder,
  `models.flops.pair_activation_bytes`) against what the device has free now
  (`devices.available_memory`): a processing size that cannot fit is refused at configure,
  and so is a visible camera whose native size cannot (each of its pairs, as a MemoryError),
  before a pair asks the allocator for 17 GB.
* A homography that maps the thermal frame off (or mostly off) the visible one
  (`frames.check_registration`): refused at configure and when set, once the node has seen
  the cameras' sizes (the stage refuses such pairs too).
* A thermal frame of another shape resized without a homography (`frames.aspect_mismatch`): a
  warning, computed when the sizes change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sosmaskfuse_core.models.flops import pair_activation_bytes
from sosmaskfuse_core.pipeline import FusionPipeline, PairStage, builder
from sosmaskfuse_core.pipeline.devices import available_memory
from sosmaskfuse_core.pipeline.frames import aspect_mismatch, check_registration

Sizes = tuple[tuple[int, int], tuple[int, int]]  # (thermal wh, visible wh)


def pair_sizes(thermal: np.ndarray, visible: np.ndarray) -> Sizes:
    """(thermal wh, visible wh) of a pair's images."""
    return (thermal.shape[1], thermal.shape[0]), (visible.shape[1], visible.shape[0])


def memory_problem(pipeline: FusionPipeline, size_wh: tuple[int, int], what: str) -> str | None:
    """Why one pair at `size_wh` cannot fit on the pipeline's device; None when it can."""
    need = pair_activation_bytes(
        pipeline.autoencoder.config,
        size_wh[1],
        size_wh[0],
        4 if pipeline.config.precision == "fp32" else 2,
    )
    free = available_memory(pipeline.device)
    if free is None or need <= free:
        return None
    return (
        f"{what} {size_wh[0]}x{size_wh[1]}: one pair needs about {need / 1e9:.1f} GB on "
        f"{pipeline.device} (every layer's output), {free / 1e9:.1f} GB is free: fuse at a "
        "smaller size"
    )


class CameraChecks:
    """The checks of the node's camera sizes; `sizes` is what the last pair had."""

    def __init__(self) -> None:
        self.sizes: Sizes | None = None
        self._memory: dict[Sizes, str] = {}
        self._shape_key: tuple | None = None  # (sizes, with a homography) last judged

    def at_configure(self, stage: PairStage, values: Mapping[str, Any]) -> None:
        """ValueError for a processing size that cannot fit, or a homography for other cameras."""
        self._memory = {}
        self._shape_key = None
        size = builder.process_size(values)
        if size is not None:
            problem = memory_problem(stage.pipeline, size, "process_width/height")
            if problem:
                raise ValueError(problem)
        self.homography(stage.preparer.homography)

    def homography(self, homography: np.ndarray | None) -> None:
        """ValueError when `homography` maps the cameras seen so far mostly off each other."""
        if self.sizes is not None:
            check_registration(homography, *self.sizes)

    def before_pair(self, stage: PairStage, sizes: Sizes) -> None:
        """Note the pair's sizes; MemoryError when its native size cannot fit (checked once)."""
        self.sizes = sizes
        if stage.preparer.size is None and sizes not in self._memory:
            self._memory[sizes] = memory_problem(stage.pipeline, sizes[1], "visible image") or ""
        problem = self._memory.get(sizes)
        if problem:
            raise MemoryError(problem)

    def shape_warning(self, stage: PairStage, sizes: Sizes) -> str | None:
        """The aspect warning of a fused pair's sizes ("" when fine); None when unchanged.

        Judged again when the sizes change or a homography is set or unset (live).
        """
        key = (sizes, stage.preparer.homography is not None)
        if key == self._shape_key:
            return None
        self._shape_key = key
        if key[1]:
            return ""
        return aspect_mismatch(*sizes) or ""
