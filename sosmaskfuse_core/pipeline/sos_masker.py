"""A thermal frame -> SOS-network probability map, computed by the fusion pipeline itself.

`SOSNetMasker` is the SOS network as a mask source for scoring (`sosmaskfuse eval-mask
--source sosnet`), pseudo-labelling or benchmarks: a callable ``thermal -> float32 H x W
probability``. It builds the pipeline the node and `fuse` build for that checkpoint
(`build_pipeline(sosnet=..., mask_source="sosnet")`) and calls its `mask`, so what it scores
is exactly the mask the fusion would use: the input resized to the checkpoint's stored
``input_size`` (the paper's 640 x 480 for a file without one), normalised as the paper's SOS
input, the logit upsampled back and passed through the sigmoid. 16-bit frames go through the
default gain control of the frame preparer first, as a mono16 stream would.
"""

from __future__ import annotations

import numpy as np
import torch

from .builder import build_pipeline
from .config import PipelineConfig
from .frames import FramePreparer

__all__ = ["SOSNetMasker"]


class SOSNetMasker:
    """Callable ``(thermal H x W or H x W x 3) -> float32 H x W probability`` of an SOS checkpoint.

    `meta` is the checkpoint's metadata (a training run of ours records its settings, data and
    held-out stems there); `sources` says what the pipeline loaded, as the logs do.
    """

    def __init__(
        self,
        checkpoint: str,
        device: str | torch.device = "cpu",
        mask_source: str = "sosnet",
        precision: str = "auto",
    ) -> None:
        # mask_source "ensemble": the network's probability averaged with the classical mask;
        # precision as the pipeline's (auto: bf16 on a CPU that computes it natively)
        self.pipeline, self.sources = build_pipeline(
            sosnet=checkpoint,
            mask_source=mask_source,
            device=device,
            backend="torch",
            config=PipelineConfig(precision=precision),
        )
        self.meta = self.sources.sosnet_metadata
        self._preparer = FramePreparer()  # raw counts -> 8 bit with the default gain control

    def __call__(self, thermal: np.ndarray) -> np.ndarray:
        if thermal.dtype != np.uint8:
            thermal = self._preparer.thermal(thermal, "mono16")
        return np.asarray(self.pipeline.mask(thermal), dtype=np.float32)

    def __repr__(self) -> str:
        return f"SOSNetMasker({self.sources.mask})"
