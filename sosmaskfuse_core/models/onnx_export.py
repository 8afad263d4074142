"""ONNX files of the three networks (dynamic batch, height and width), and their check in ORT.

    encoder.onnx  image (N x 1 x H x W, gray levels 0..255 as float32) -> f1, f2, f3, f4
    decoder.onnx  f1, f2, f3, f4 (the fused features)                 -> image (N x 1 x H x W)
    sosnet.onnx   image (N x 1 x H x W, the normalised SOS input)      -> logit (N x 1 x H x W)

The fusion strategy between encoder and decoder has no weights and stays outside the files
(`sosmaskfuse_core.pipeline.strategies`). These are the files a TensorRT or Isaac ROS user
builds an engine from (docs/performance.md); ONNX Runtime runs them as the `onnxruntime`
backend. Exporting needs the `onnx` package; checking needs `onnxruntime`.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from .imvf_autoencoder import IMVFAutoencoder
from .sos_hrnet import SOSNet

OPSET = 17
FEATURES = ("f1", "f2", "f3", "f4")
#: The size traced at export. Odd sizes elsewhere exercise the decoder's padding path.
EXPORT_SIZE_HW = (64, 96)
_DYNAMIC = {0: "batch", 2: "height", 3: "width"}
_Module = TypeVar("_Module", bound=nn.Module)


class _EncoderGraph(nn.Module):
    def __init__(self, autoencoder: IMVFAutoencoder) -> None:
        super().__init__()
        self.encoder = autoencoder.encoder

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.encoder(image))


class _DecoderGraph(nn.Module):
    def __init__(self, autoencoder: IMVFAutoencoder) -> None:
        super().__init__()
        self.decoder = autoencoder.decoder

    def forward(self, f1, f2, f3, f4) -> torch.Tensor:
        return self.decoder([f1, f2, f3, f4])


def _feature_shapes(autoencoder: IMVFAutoencoder, n: int, h: int, w: int) -> list[tuple]:
    shapes, hh, ww = [], h, w
    for k, c in enumerate(autoencoder.config.widths):
        if k:
            hh, ww = hh // 2, ww // 2
        shapes.append((n, c, hh, ww))
    return shapes


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    inputs: Sequence[str],
    outputs: Sequence[str],
) -> bytes:
    """One module as ONNX bytes (the TorchScript-based exporter: quick, needs only `onnx`)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError(
            "exporting ONNX files needs the onnx package (pip install 'sosmaskfuse_ros[onnx]')"
        ) from None
    module = module.eval()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(
            module,
            args,
            # typed as a path only; the TorchScript exporter (dynamo=False) takes a file object
            buffer,  # type: ignore[arg-type]
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes={name: _DYNAMIC for name in (*inputs, *outputs)},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def _fp32_copy(module: _Module) -> _Module:
    """A float32, NCHW copy on the CPU (the pipeline may have converted the original)."""
    import copy

    # torch's overloads of Module.to leave out memory_format, which it documents and takes
    return (
        copy.deepcopy(module)
        .float()
        .to(  # type: ignore[call-overload]
            "cpu", memory_format=torch.contiguous_format
        )
    )


def encoder_onnx(autoencoder: IMVFAutoencoder) -> bytes:
    model = _fp32_copy(autoencoder)
    h, w = EXPORT_SIZE_HW
    return _export(_EncoderGraph(model), (torch.rand(1, 1, h, w) * 255,), ["image"], FEATURES)


def decoder_onnx(autoencoder: IMVFAutoencoder) -> bytes:
    model = _fp32_copy(autoencoder)
    args = tuple(torch.rand(s) for s in _feature_shapes(model, 1, *EXPORT_SIZE_HW))
    return _export(_DecoderGraph(model), args, FEATURES, ["image"])


def sosnet_onnx(sosnet: SOSNet) -> bytes:
    model = _fp32_copy(sosnet)
    channels = model.config.in_channels
    h, w = EXPORT_SIZE_HW
    return _export(model, (torch.randn(1, channels, h, w),), ["image"], ["logit"])


def export_all(
    out_dir: str | os.PathLike, autoencoder: IMVFAutoencoder, sosnet: SOSNet | None = None
) -> dict[str, str]:
    """Write encoder.onnx, decoder.onnx (and sosnet.onnx) into `out_dir`; name -> path."""
    os.makedirs(out_dir, exist_ok=True)
    files = {"encoder": encoder_onnx(autoencoder), "decoder": decoder_onnx(autoencoder)}
    if sosnet is not None:
        files["sosnet"] = sosnet_onnx(sosnet)
    paths = {}
    for name, data in files.items():
        path = os.path.join(out_dir, f"{name}.onnx")
        with open(path, "wb") as f:
            f.write(data)
        paths[name] = path
    return paths


# --- running and checking them in ONNX Runtime --------------------------------------------------


def session(model: str | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session (full graph optimisation; `threads` = torch's by default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def check_against_torch(
    paths: dict[str, str],
    autoencoder: IMVFAutoencoder,
    sosnet: SOSNet | None = None,
    size_hw: tuple[int, int] = (75, 101),
    seed: int = 0,
) -> dict[str, float]:
    """Run each file in ONNX Runtime and in PyTorch (fp32) at `size_hw`: name -> error.

    The error is max |ORT - torch| / max |torch| over the outputs. The default size is odd and
    differs from the export size, so the dynamic axes and the decoder's padding are exercised.
    """
    gen = torch.Generator().manual_seed(seed)
    h, w = size_hw
    model = _fp32_copy(autoencoder)
    image = torch.rand(2, 1, h, w, generator=gen) * 255
    with torch.no_grad():
        feats = [f.contiguous() for f in model.encoder(image)]
        cases = {
            "encoder": ({"image": image}, feats),
            "decoder": (dict(zip(FEATURES, feats)), [model.decoder(feats)]),
        }
        if sosnet is not None and "sosnet" in paths:
            sos = _fp32_copy(sosnet)
            x = torch.randn(1, sos.config.in_channels, h, w, generator=gen)
            cases["sosnet"] = ({"image": x}, [sos(x)])
    errors = {}
    for name, (inputs, expected) in cases.items():
        got = session(paths[name]).run(None, {k: v.numpy() for k, v in inputs.items()})
        worst = 0.0
        for g, e in zip(got, expected):
            e = e.numpy()
            if g.shape != e.shape:
                raise ValueError(f"{name}.onnx: output shape {g.shape}, PyTorch gives {e.shape}")
            worst = max(worst, float(np.abs(g - e).max() / max(np.abs(e).max(), 1e-12)))
        errors[name] = worst
    return errors
