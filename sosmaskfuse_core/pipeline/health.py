"""Numerical health of a pipeline: a probe at load, and no non-finite output ever published.

Weights can be loadable and still useless. Scaled by 1e30, the decoder overflows and returns
NaN, which the 8-bit stretch would turn into a black frame that looks like an image; all zero,
the networks answer the same whatever they see, and the "fused" image is a constant. So:

* every decoder output is counted for NaN and infinite values (`count_non_finite`; the
  pipeline raises `NonFiniteOutputError` through `raise_if_non_finite`, so such a frame is
  never published);
* `probe` runs a small synthetic batch through a freshly built pipeline (its own backend,
  device, precision and mask source) and checks, through that backend, that the autoencoder
  and the SOS network answer differently to different images, so broken weights are refused
  at load time, where a fallback can still step in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from . import preprocessing as pp

if TYPE_CHECKING:
    from .fusion_pipeline import FusionPipeline

PROBE_SIZE = 32  # pixels each side: above the autoencoder's minimum, cheap on any device
#: Gray levels by which the reconstructions of the two probe images must vary and differ: far
#: below any trained (or even random) network's response, far above float rounding of a constant.
MIN_RESPONSE = 1e-4


class NonFiniteOutputError(RuntimeError):
    """The fusion produced NaN or infinite values: the weights (or the mask) are broken."""


class UselessWeightsError(RuntimeError):
    """A network gives the same output whatever its input (e.g. all-zero weights)."""


def count_non_finite(raw: torch.Tensor) -> torch.Tensor:
    """The number of NaN or infinite values of each image of a batch (int64, N), on its device."""
    return (~torch.isfinite(raw)).flatten(1).sum(1)


def raise_if_non_finite(
    counts: torch.Tensor | np.ndarray, per_image: int, what: str = "fusion output"
) -> None:
    """NonFiniteOutputError when any count of `count_non_finite` is above zero."""
    bad = int(counts.sum())
    if bad:
        total = per_image * len(counts)
        raise NonFiniteOutputError(
            f"{what}: {bad} of {total} values are NaN or infinite "
            "(numerically broken weights?); not published"
        )


def check_finite(raw: torch.Tensor, what: str = "fusion output") -> None:
    """NonFiniteOutputError when `raw` holds NaN or infinite values."""
    raise_if_non_finite(count_non_finite(raw.reshape(1, -1)), raw.numel(), what)


def probe_pair(
    size: int = PROBE_SIZE, variant: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A deterministic (thermal, visible, mask) triple: a warm blob on gradients.

    `variant` 1 moves the blob and turns the gradients, so the two variants differ everywhere.
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    if variant:
        x, y = 1.0 - y, x
    blob = np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.02)
    thermal = np.clip(40 + 60 * y + 150 * blob, 0, 255).astype(np.uint8)
    visible = np.clip(30 + 200 * x * (1 - 0.5 * y), 0, 255).astype(np.uint8)
    return thermal, visible, (blob > 0.5).astype(np.uint8) * 255


def probe(pipeline: FusionPipeline, what: str = "the loaded networks") -> None:
    """Check a built pipeline on two probe pairs, through its own backend; errors name `what`.

    NonFiniteOutputError: the fusion gives NaN or infinite values. UselessWeightsError: the
    autoencoder reconstructs the two different probe images alike (or as flat images), or the
    SOS network gives a flat logit: the output would not depend on the input.
    """
    from .fusion_pipeline import FusionPipeline  # here: fusion_pipeline imports this module

    assert isinstance(pipeline, FusionPipeline)
    pairs = [probe_pair(variant=v) for v in (0, 1)]
    masks = [p[2] for p in pairs] if pipeline.mask_source == "topic" else None
    try:
        pipeline.fuse_batch([p[0] for p in pairs], [p[1] for p in pairs], masks, outputs=("raw",))
    except NonFiniteOutputError as exc:
        raise NonFiniteOutputError(
            f"{what} give NaN or infinite values on a {PROBE_SIZE}x{PROBE_SIZE} probe frame "
            f"({exc}); the weights are numerically broken"
        ) from None
    backend, precision = pipeline.backend, pipeline.config.precision
    with torch.inference_mode():
        thermal = torch.stack([torch.from_numpy(p[0]) for p in pairs])[:, None].float()
        thermal = thermal.to(pipeline.device)
        rebuilt = backend.decode(backend.encode(thermal, precision), precision)
        flat = rebuilt.flatten(1)
        spread = float((flat.max(1).values - flat.min(1).values).min())
        difference = float((rebuilt[0] - rebuilt[1]).abs().max())
        if spread < MIN_RESPONSE or difference < MIN_RESPONSE:
            raise UselessWeightsError(
                f"{what}: the autoencoder gives the same output whatever its input (probe "
                f"images reconstructed with a range of {spread:.3g} gray levels, differing by "
                f"{difference:.3g}); the weights are useless (all zero?)"
            )
        if pipeline.sosnet is not None:
            size = pipeline.config.sos_size or (PROBE_SIZE, PROBE_SIZE)
            x = pp.sos_input(thermal.to(torch.uint8), size)
            logit = backend.sos(x, precision).flatten(1)
            if float((logit.max(1).values - logit.min(1).values).max()) < 1e-4:
                raise UselessWeightsError(
                    f"{what}: the SOS network gives the same logit everywhere on the probe "
                    "frames; its weights are useless (all zero?)"
                )
