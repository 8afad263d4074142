"""The IMV-F autoencoder: a nested dense encoder and decoder (docs/algorithm.md, section 2).

The network has no fusion weights: the encoder turns one gray image (levels 0..255 as float,
not rescaled) into four feature maps, a weight-free strategy
(`sosmaskfuse_core.pipeline.strategies`) merges the features of several images, and the
decoder turns four maps back into an image.

Our module names and the authors' state-dict keys (`Epoch_model_1.model`):

=========================================  ==========================================
ours                                       authors'
=========================================  ==========================================
``encoder.stem.conv``                      ``conv0.conv2d``
``encoder.levels.{k}.reduce.conv``         ``DB{k+1}_0.denseblock.0.conv2d``
``encoder.levels.{k}.expand.conv``         ``DB{k+1}_0.denseblock.1.conv2d``
``decoder.node{i}_{j}.reduce.conv``        ``DB{i}_{j}.denseblock.0.conv2d``
``decoder.node{i}_{j}.expand.conv``        ``DB{i}_{j}.denseblock.1.conv2d``
``decoder.head.conv``                      ``conv_out.conv2d``
=========================================  ==========================================

`authors_to_ours` / `ours_to_authors` translate between the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "imvf_autoencoder"

# The decoder's nested nodes: name -> (level i, column j); inputs are described in Decoder.
DECODER_NODES = ("1_1", "2_1", "1_2", "3_1", "2_2", "1_3")


@dataclass(frozen=True)
class AutoencoderConfig:
    """Shape of the IMV-F autoencoder (the paper's values are the defaults).

    widths: channels of the encoder's four levels (and the decoder's nodes at those levels).
    stem_channels: channels of the 1x1 stem.
    space_to_depth: 1 is the paper's network. 2 (our CPU model): the encoder starts on 2x2
        blocks of pixels (`pixel_unshuffle`, 4 channels per position) and the decoder's head
        returns 4 channels that `pixel_shuffle` puts back, so every convolution runs at half
        the resolution or less (4x less work) while no pixel is lost on the way in or out.
        Frames whose sides are not a multiple of it are reflection-padded at the bottom and
        right and the output is cropped back (`IMVFAutoencoder.forward`, `Backend.fuse`).
    """

    widths: tuple[int, int, int, int] = (64, 112, 160, 208)
    stem_channels: int = 16
    space_to_depth: int = 1

    def __post_init__(self) -> None:
        if len(self.widths) != 4 or min(self.widths) < 1 or self.stem_channels < 1:
            raise ValueError(f"AutoencoderConfig: bad widths/stem in {self}")
        if self.space_to_depth not in (1, 2, 4):
            raise ValueError(
                f"AutoencoderConfig: space_to_depth {self.space_to_depth} is not 1, 2 or 4"
            )

    @property
    def min_size(self) -> int:
        """The smallest image side the network takes: its coarsest level needs 2 pixels."""
        return 16 * self.space_to_depth

    def to_dict(self) -> dict:
        return {
            "widths": list(self.widths),
            "stem_channels": self.stem_channels,
            "space_to_depth": self.space_to_depth,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "AutoencoderConfig":
        widths = tuple(int(w) for w in d["widths"])
        if len(widths) != 4:
            raise ValueError(f"widths {list(widths)}: expected 4")
        return cls(
            widths=(widths[0], widths[1], widths[2], widths[3]),
            stem_channels=int(d["stem_channels"]),
            space_to_depth=int(d.get("space_to_depth", 1)),  # files before it: the paper's 1
        )


# oneDNN's convolution with the ReLU fused in (what torch.compile emits on the CPU), if present
_CONV_RELU = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)


def _fusable(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Inference on the CPU in NHWC, fp32 or bf16: one oneDNN call does convolution + ReLU."""
    return (
        _CONV_RELU is not None
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and x.dtype == conv.weight.dtype
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not torch.onnx.is_in_onnx_export()
        and not torch.jit.is_tracing()
    )


class ConvLayer(nn.Module):
    """Reflection padding k//2, a k x k convolution with bias, ReLU (also on the output layer).

    The ReLU runs in place on the convolution's fresh output (no second large buffer); in
    NHWC inference on the CPU it is fused into the convolution (`_fusable`). Both compute the
    same numbers as conv followed by relu.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.forward_padded(x)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on an input that is already reflection-padded."""
        if _fusable(x, self.conv):
            assert _CONV_RELU is not None  # _fusable checked it
            conv = self.conv
            return _CONV_RELU(x, conv.weight, conv.bias, [0, 0], [1, 1], [1, 1], 1, "relu", [], "")
        return F.relu(self.conv(x), inplace=True)


class DenseBlockLight(nn.Module):
    """ConvLayer 3x3 to half the input channels, then ConvLayer 1x1 to the output channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.reduce = ConvLayer(in_channels, in_channels // 2, 3)
        self.expand = ConvLayer(in_channels // 2, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.reduce(x))

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The block on an input already padded by 1 for its 3x3 layer."""
        return self.expand(self.reduce.forward_padded(x))


class Encoder(nn.Module):
    """1 x H x W gray image -> four feature maps at 1, 1/2, 1/4 and 1/8 of its resolution.

    With `space_to_depth` s > 1 the resolutions are 1/s of those, and the image is first padded
    to a multiple of s (reflection, bottom and right) and unshuffled into s*s channels.
    """

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        w = config.widths
        self.space_to_depth = config.space_to_depth
        self.stem = ConvLayer(config.space_to_depth**2, config.stem_channels, 1)
        ins = (config.stem_channels,) + tuple(w[:-1])
        self.levels = nn.ModuleList(DenseBlockLight(i, o) for i, o in zip(ins, w))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        s = self.space_to_depth
        if s > 1:
            dh, dw = -x.shape[-2] % s, -x.shape[-1] % s
            if dh or dw:
                x = F.pad(x, (0, dw, 0, dh), mode="reflect")
            x = F.pixel_unshuffle(x, s)
        x = self.stem(x)
        for k, level in enumerate(self.levels):
            if k:
                x = F.max_pool2d(x, 2, 2)
            x = level(x)
            feats.append(x)
        return feats


def upsample_to(reference: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Nearest x2 upsampling of `x`, reflection-padded to `reference`'s height and width.

    A shortfall d is padded floor(d/2) before and d - floor(d/2) after (the reference's
    inference-time upsampler; for even sizes it is plain x2 upsampling). In an ONNX export the
    padding is always written (zero for even sizes), so one file serves every size.
    """
    x = F.interpolate(x, scale_factor=2.0, mode="nearest")
    dh = reference.shape[-2] - x.shape[-2]
    dw = reference.shape[-1] - x.shape[-1]
    if torch.onnx.is_in_onnx_export() or dh or dw:
        x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="reflect")
    return x


def cat_upsampled_padded(parts: Sequence[torch.Tensor], low: torch.Tensor) -> torch.Tensor:
    """`F.pad(cat([*parts, upsample_to(parts[0], low)]), 1, reflect)`, written once, NHWC.

    The concatenation, the nearest x2 upsampling and the 3x3 layer's reflection padding go
    straight into one buffer (the decoder's inference path on the CPU): copies only, so the
    result is exactly the unfused one.
    """
    n, _, h, w = parts[0].shape
    channels = sum(p.shape[1] for p in parts) + low.shape[1]
    out = torch.empty(
        (n, channels, h + 2, w + 2),
        dtype=parts[0].dtype,
        device=parts[0].device,
        memory_format=torch.channels_last,
    )
    inner = out[:, :, 1 : h + 1, 1 : w + 1]
    c0 = 0
    for p in parts:
        inner[:, c0 : c0 + p.shape[1]].copy_(p)
        c0 += p.shape[1]
    c, hl, wl = low.shape[1:]
    dst = inner[:, c0 : c0 + c]
    if (2 * hl, 2 * wl) == (h, w):  # dst[..., 2i + a, 2j + b] = low[..., i, j]
        pairs = dst.unflatten(3, (wl, 2)).unflatten(2, (hl, 2))
        pairs.copy_(low[:, :, :, None, :, None].expand(n, c, hl, 2, wl, 2))
    else:
        dst.copy_(upsample_to(parts[0], low))
    out[:, :, 0, 1 : w + 1] = out[:, :, 2, 1 : w + 1]  # reflect rows, then columns (corners too)
    out[:, :, h + 1, 1 : w + 1] = out[:, :, h - 1, 1 : w + 1]
    out[:, :, :, 0] = out[:, :, :, 2]
    out[:, :, :, w + 1] = out[:, :, :, w - 1]
    return out


class Decoder(nn.Module):
    """Four feature maps -> 1 x H x W image through the nested (UNet++-style) dense nodes.

    With `space_to_depth` s > 1 the head gives s*s channels that are shuffled back into an
    image s times the first level's size (a padded input's size: the caller crops).
    """

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        w1, w2, w3, w4 = config.widths
        self.space_to_depth = config.space_to_depth
        self.node1_1 = DenseBlockLight(w1 + w2, w1)
        self.node2_1 = DenseBlockLight(w2 + w3, w2)
        self.node1_2 = DenseBlockLight(2 * w1 + w2, w1)
        self.node3_1 = DenseBlockLight(w3 + w4, w3)
        self.node2_2 = DenseBlockLight(2 * w2 + w3, w2)
        self.node1_3 = DenseBlockLight(3 * w1 + w2, w1)
        self.head = ConvLayer(w1, config.space_to_depth**2, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        out = self._nodes(*feats)
        s = self.space_to_depth
        return F.pixel_shuffle(out, s) if s > 1 else out

    def _nodes(self, f1, f2, f3, f4) -> torch.Tensor:
        if _fusable(f1, self.node1_1.reduce.conv) and min(f4.shape[-2:]) >= 2:
            return self._forward_fused(f1, f2, f3, f4)
        x1_1 = self.node1_1(torch.cat([f1, upsample_to(f1, f2)], 1))
        x2_1 = self.node2_1(torch.cat([f2, upsample_to(f2, f3)], 1))
        x1_2 = self.node1_2(torch.cat([f1, x1_1, upsample_to(f1, x2_1)], 1))
        x3_1 = self.node3_1(torch.cat([f3, upsample_to(f3, f4)], 1))
        x2_2 = self.node2_2(torch.cat([f2, x2_1, upsample_to(f2, x3_1)], 1))
        x1_3 = self.node1_3(torch.cat([f1, x1_1, x1_2, upsample_to(f1, x2_2)], 1))
        return self.head(x1_3)

    def _forward_fused(self, f1, f2, f3, f4) -> torch.Tensor:
        """`forward`, each node's input concatenated, upsampled and padded in one buffer."""
        x1_1 = self.node1_1.forward_padded(cat_upsampled_padded([f1], f2))
        x2_1 = self.node2_1.forward_padded(cat_upsampled_padded([f2], f3))
        x1_2 = self.node1_2.forward_padded(cat_upsampled_padded([f1, x1_1], x2_1))
        x3_1 = self.node3_1.forward_padded(cat_upsampled_padded([f3], f4))
        x2_2 = self.node2_2.forward_padded(cat_upsampled_padded([f2, x2_1], x3_1))
        x1_3 = self.node1_3.forward_padded(cat_upsampled_padded([f1, x1_1, x1_2], x2_2))
        return self.head(x1_3)


class IMVFAutoencoder(nn.Module):
    """Encoder + decoder; `forward` reconstructs its input (the training task)."""

    architecture = ARCHITECTURE

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or AutoencoderConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of `x` (N x 1 x H x W), at its size."""
        return self.decoder(self.encoder(x))[..., : x.shape[-2], : x.shape[-1]]


# --- the authors' key layout ---------------------------------------------------------------

_LEAF = {"0": "reduce", "1": "expand"}
_LEAF_BACK = {v: k for k, v in _LEAF.items()}


def authors_to_ours(key: str) -> str:
    """Map a key of the authors' autoencoder state dict to our name (unknown keys pass through)."""
    if key.startswith("conv0.conv2d."):
        return "encoder.stem.conv." + key[len("conv0.conv2d.") :]
    if key.startswith("conv_out.conv2d."):
        return "decoder.head.conv." + key[len("conv_out.conv2d.") :]
    m = re.fullmatch(r"DB(\d)_(\d)\.denseblock\.([01])\.conv2d\.(weight|bias)", key)
    if m:
        i, j, leaf, param = m.groups()
        if j == "0":
            return f"encoder.levels.{int(i) - 1}.{_LEAF[leaf]}.conv.{param}"
        return f"decoder.node{i}_{j}.{_LEAF[leaf]}.conv.{param}"
    return key


def ours_to_authors(key: str) -> str:
    """Inverse of `authors_to_ours`."""
    if key.startswith("encoder.stem.conv."):
        return "conv0.conv2d." + key[len("encoder.stem.conv.") :]
    if key.startswith("decoder.head.conv."):
        return "conv_out.conv2d." + key[len("decoder.head.conv.") :]
    m = re.fullmatch(r"encoder\.levels\.(\d)\.(reduce|expand)\.conv\.(weight|bias)", key)
    if m:
        k, leaf, param = m.groups()
        return f"DB{int(k) + 1}_0.denseblock.{_LEAF_BACK[leaf]}.conv2d.{param}"
    m = re.fullmatch(r"decoder\.node(\d)_(\d)\.(reduce|expand)\.conv\.(weight|bias)", key)
    if m:
        i, j, leaf, param = m.groups()
        return f"DB{i}_{j}.denseblock.{_LEAF_BACK[leaf]}.conv2d.{param}"
    return key


def is_authors_layout(keys) -> bool:
    """True when a state dict's keys look like the authors' autoencoder checkpoint."""
    keys = set(keys)
    return "conv0.conv2d.weight" in keys and "conv_out.conv2d.weight" in keys


__all__ = [
    "ARCHITECTURE",
    "AutoencoderConfig",
    "ConvLayer",
    "DenseBlockLight",
    "Encoder",
    "Decoder",
    "IMVFAutoencoder",
    "upsample_to",
    "authors_to_ours",
    "ours_to_authors",
    "is_authors_layout",
]
