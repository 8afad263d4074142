"""The ONNX Runtime backend: the networks as ONNX graphs on the CPU, fp32; the strategy in torch.

The encoder, decoder and SOS network are exported once, in memory, when the backend is made
(`sosmaskfuse_core.models.onnx_export`; a second or so for the full autoencoder), and run
by ONNX Runtime's CPU provider with full graph optimisation (its blocked NCHWc convolutions
with fused activations). The fusion strategy between encoder and decoder runs in fp32 PyTorch
on the same arrays, without copies (`torch.from_numpy`), in `Backend.fuse` as for every
backend. Which precisions it can run is `backends.choose_backend`'s rule (fp32 on the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sosmaskfuse_core.models import onnx_export
from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder
from sosmaskfuse_core.models.sos_hrnet import SOSNet

from .backends import Backend


class OnnxRuntimeBackend(Backend):
    """Runs the encoder, decoder and SOS network in ONNX Runtime (CPU, fp32)."""

    name = "onnxruntime"

    def __init__(
        self,
        autoencoder: IMVFAutoencoder,
        sosnet: SOSNet | None = None,
        threads: int | None = None,
    ) -> None:
        self.autoencoder, self.sosnet = autoencoder, sosnet  # what the graphs were exported from
        self._encoder = onnx_export.session(onnx_export.encoder_onnx(autoencoder), threads)
        self._decoder = onnx_export.session(onnx_export.decoder_onnx(autoencoder), threads)
        self._sosnet = (
            onnx_export.session(onnx_export.sosnet_onnx(sosnet), threads) if sosnet else None
        )

    @staticmethod
    def _array(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().float().cpu().numpy())

    def encode(self, batch: torch.Tensor, precision: str = "fp32") -> list[torch.Tensor]:
        outs = self._encoder.run(None, {"image": self._array(batch)})
        return [torch.from_numpy(o) for o in outs]

    def decode(self, feats: Sequence[torch.Tensor], precision: str = "fp32") -> torch.Tensor:
        inputs = {name: self._array(f) for name, f in zip(onnx_export.FEATURES, feats)}
        return torch.from_numpy(self._decoder.run(None, inputs)[0])

    def sos(self, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        if self._sosnet is None:
            raise ValueError("this backend was made without an SOS network")
        return torch.from_numpy(self._sosnet.run(None, {"image": self._array(x)})[0])
