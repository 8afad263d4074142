"""Numerical health of a pipeline: a probe frame at load, and no non-finite output ever published.

Weights can be finite and still useless: scaled by 1e30, the decoder overflows and returns NaN,
which the 8-bit stretch turns into a black frame that looks like an image. `check_finite` is
applied to every decoder output (`FusionPipeline.fuse_batch` raises `NonFiniteOutputError`, so
such a frame is never published), and `probe` runs one small synthetic pair through a freshly
loaded pipeline, so broken weights are refused at load time, where a fallback can still step in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

PROBE_SIZE = 32  # pixels each side: above the autoencoder's minimum, cheap on any device


class NonFiniteOutputError(RuntimeError):
    """The fusion produced NaN or infinite values: the weights (or the mask) are broken."""


def check_finite(raw: torch.Tensor, what: str = "fusion output") -> None:
    """NonFiniteOutputError when `raw` holds NaN or infinite values."""
    finite = torch.isfinite(raw)
    if not bool(finite.all()):
        bad = int(finite.numel() - finite.sum())
        raise NonFiniteOutputError(
            f"{what}: {bad} of {finite.numel()} values are NaN or infinite "
            "(numerically broken weights?); not published"
        )


def probe_pair(size: int = PROBE_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A deterministic (thermal, visible, mask) triple: a warm blob on gradients."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    blob = np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.02)
    thermal = np.clip(40 + 60 * y + 150 * blob, 0, 255).astype(np.uint8)
    visible = np.clip(30 + 200 * x * (1 - 0.5 * y), 0, 255).astype(np.uint8)
    return thermal, visible, (blob > 0.5).astype(np.uint8) * 255


def probe(pipeline, what: str = "the loaded networks") -> None:
    """Fuse one probe pair with `pipeline`'s networks; NonFiniteOutputError names `what`.

    The probe runs at PROBE_SIZE whatever the configured processing size, with the same
    networks, device, precision and mask source.
    """
    from .fusion_pipeline import FusionPipeline  # here: fusion_pipeline imports this module

    config = dataclasses.replace(pipeline.config, process_size=None, sos_size=None)
    small = FusionPipeline(
        pipeline.autoencoder,
        pipeline.sosnet,
        config=config,
        device=pipeline.device,
        mask_source=pipeline.mask_source,
        thermal_masker=pipeline.thermal_masker,
    )
    thermal, visible, mask = probe_pair()
    masks = [mask] if pipeline.mask_source == "topic" else None
    try:
        small.fuse_batch([thermal], [visible], masks, outputs=("raw",))
    except NonFiniteOutputError as exc:
        raise NonFiniteOutputError(
            f"{what} give NaN or infinite values on a {PROBE_SIZE}x{PROBE_SIZE} probe frame "
            f"({exc}); the weights are numerically broken"
        ) from None
