"""Analytic work of a forward pass: multiply-accumulates of its convolutions, counted by hooks.

Also the memory a fused pair's activations take (`pair_activation_bytes`), for refusing a
processing size that cannot fit before a pair asks for it.

A convolution producing an N x C_out x H x W output from C_in input channels with a k x k
kernel in g groups does N * C_out * H * W * (C_in / g) * k * k multiply-accumulates (MACs);
FLOPs are twice that. Everything else (activations, padding, pooling, the fusion strategy) is
far smaller for these networks and is not counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder


def conv_macs(model: nn.Module, run: Callable[[], Any]) -> int:
    """The MACs of every nn.Conv2d inside `model` during `run()` (no gradients kept)."""
    total = 0

    def hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            run()
    finally:
        for h in handles:
            h.remove()
    return total


def fused_pair_gflop(
    autoencoder: IMVFAutoencoder, height: int, width: int, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """GFLOP of one fused pair at height x width: the encoder on 4 images, the decoder once.

    The networks run once on zeros (on `device`, in fp32) for their shapes.
    """
    x = torch.zeros(4, 1, height, width, device=device)
    ae = autoencoder.float().to(device)
    with torch.inference_mode():
        feats = [f[:1] for f in ae.encoder(x)]
    encoder = conv_macs(ae.encoder, lambda: ae.encoder(x))
    decoder = conv_macs(ae.decoder, lambda: ae.decoder(feats))
    return {"encoder": 2 * encoder / 1e9, "decoder": 2 * decoder / 1e9}


def network_gflop(
    model: nn.Module, height: int, width: int, device: str | torch.device = "cpu"
) -> float:
    """GFLOP of one forward pass of a 1-image network (e.g. the SOS network) at height x width."""
    model = model.float().to(device)
    channels = getattr(getattr(model, "config", None), "in_channels", 1)
    x = torch.zeros(1, channels, height, width, device=device)
    return 2 * conv_macs(model, lambda: model(x)) / 1e9


def pair_activation_bytes(
    config: AutoencoderConfig, height: int, width: int, bytes_per_value: int = 4
) -> int:
    """Bytes of every layer output of one fused pair at height x width: a bound of its memory.

    A fresh autoencoder of `config` (its layers' shapes are all that counts) runs on the CPU
    on small zeros (twice the network's smallest side): the encoder on its 4-image batch and
    the decoder once; every layer output is counted by hooks and scaled to the pair's pixels.
    On the CPU the peak of a pair measured within 10% of this sum (shipped default model,
    256x256 and 512x512: 5.1 kB a pixel against 4.9 kB counted), as the allocator keeps what
    each layer freed.
    """
    return int(_values_per_pixel(config) * bytes_per_value * height * width)


@functools.lru_cache(maxsize=8)
def _values_per_pixel(config: AutoencoderConfig) -> float:
    model = IMVFAutoencoder(config).eval()
    total = 0

    def hook(_module, _inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    probe = 2 * config.min_size
    try:
        with torch.inference_mode():
            feats = model.encoder(torch.zeros(4, 1, probe, probe))
            model.decoder([f[:1] for f in feats])
    finally:
        for h in handles:
            h.remove()
    return total / (probe * probe)
