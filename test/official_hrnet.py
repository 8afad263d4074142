"""The state-dict keys of the official HRNetV2 ImageNet classifier, written out from its code.

Independent of `sosmaskfuse_core.models.sos_hrnet`: the names and shapes follow the published
HRNet-Image-Classification model (`cls_hrnet.py`, `HighResolutionNet`), step by step:

* stem: ``conv1`` (3x3 s2), ``bn1``, ``conv2`` (3x3 s2), ``bn2``;
* ``layer1``: Bottleneck blocks (``conv1`` 1x1, ``conv2`` 3x3, ``conv3`` 1x1 to 4x planes, each
  with its BN), block 0 with ``downsample.0`` (1x1 conv) + ``downsample.1`` (BN);
* ``transition{n}``: an existing branch whose width changes: ``.i.0`` conv3x3 + ``.i.1`` BN
  (+ ReLU); an unchanged one: None (no keys); a new branch: ``.i.0.0`` conv3x3 s2 from the last
  branch + ``.i.0.1`` BN;
* ``stage{n}.{module}``: ``branches.b.k`` BasicBlocks (``conv1``, ``bn1``, ``conv2``, ``bn2``),
  ``fuse_layers.i.j``: j > i ``.0`` 1x1 conv + ``.1`` BN (then nearest upsampling, no
  weights); j < i: ``.k.0`` conv3x3 s2 + ``.k.1`` BN for k < i - j; every stage multi-scale;
* head: ``incre_modules.i.0`` a Bottleneck from branch i to 4 x (32, 64, 128, 256)[i] with
  its ``downsample``; ``downsamp_modules.i`` ``.0`` conv3x3 s2 with bias + ``.1`` BN;
  ``final_layer`` ``.0`` 1x1 conv 1024 -> 2048 with bias + ``.1`` BN; ``classifier`` Linear
  2048 -> 1000.

A BN contributes ``weight``, ``bias``, ``running_mean``, ``running_var`` and (PyTorch >= 0.4.1)
``num_batches_tracked``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

HEAD_CHANNELS = (32, 64, 128, 256)
HEAD_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")
W30 = dict(
    width=30, stem=64, layer1_blocks=4, stage_modules=(1, 4, 3), blocks_per_branch=4, in_ch=3
)

Shapes = dict[str, tuple[int, ...]]


def _bn(keys: Shapes, prefix: str, channels: int, tracked: bool) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        keys[f"{prefix}.{name}"] = (channels,)
    if tracked:
        keys[f"{prefix}.num_batches_tracked"] = ()


def _bottleneck(keys: Shapes, p: str, inplanes: int, planes: int, tracked: bool) -> None:
    keys[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
    _bn(keys, f"{p}.bn1", planes, tracked)
    keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
    _bn(keys, f"{p}.bn2", planes, tracked)
    keys[f"{p}.conv3.weight"] = (4 * planes, planes, 1, 1)
    _bn(keys, f"{p}.bn3", 4 * planes, tracked)
    if inplanes != 4 * planes:
        keys[f"{p}.downsample.0.weight"] = (4 * planes, inplanes, 1, 1)
        _bn(keys, f"{p}.downsample.1", 4 * planes, tracked)


def official_hrnet_keys(
    width: int = 30,
    stem: int = 64,
    layer1_blocks: int = 4,
    stage_modules: Sequence[int] = (1, 4, 3),
    blocks_per_branch: int = 4,
    in_ch: int = 3,
    tracked: bool = True,
) -> Shapes:
    """Key -> shape of an HRNetV2-W`width` ImageNet classifier, in the official module order.

    `stem` is the stem width and layer1's planes (64 and 64 in every published model).
    """
    keys: Shapes = {}
    keys["conv1.weight"] = (stem, in_ch, 3, 3)
    _bn(keys, "bn1", stem, tracked)
    keys["conv2.weight"] = (stem, stem, 3, 3)
    _bn(keys, "bn2", stem, tracked)
    for b in range(layer1_blocks):
        _bottleneck(keys, f"layer1.{b}", stem if b == 0 else 4 * stem, stem, tracked)
    previous = [4 * stem]
    for n, modules in enumerate(stage_modules, start=1):
        channels = [width * 2**i for i in range(n + 1)]
        for i, c in enumerate(channels):
            if i < len(previous):
                if previous[i] != c:
                    keys[f"transition{n}.{i}.0.weight"] = (c, previous[i], 3, 3)
                    _bn(keys, f"transition{n}.{i}.1", c, tracked)
            else:
                keys[f"transition{n}.{i}.0.0.weight"] = (c, previous[-1], 3, 3)
                _bn(keys, f"transition{n}.{i}.0.1", c, tracked)
        for m in range(modules):
            p = f"stage{n + 1}.{m}"
            for b, c in enumerate(channels):
                for k in range(blocks_per_branch):
                    keys[f"{p}.branches.{b}.{k}.conv1.weight"] = (c, c, 3, 3)
                    _bn(keys, f"{p}.branches.{b}.{k}.bn1", c, tracked)
                    keys[f"{p}.branches.{b}.{k}.conv2.weight"] = (c, c, 3, 3)
                    _bn(keys, f"{p}.branches.{b}.{k}.bn2", c, tracked)
            for i, ci in enumerate(channels):
                for j, cj in enumerate(channels):
                    f = f"{p}.fuse_layers.{i}.{j}"
                    if j > i:
                        keys[f"{f}.0.weight"] = (ci, cj, 1, 1)
                        _bn(keys, f"{f}.1", ci, tracked)
                    for k in range(i - j):  # j < i only
                        out = ci if k == i - j - 1 else cj
                        keys[f"{f}.{k}.0.weight"] = (out, cj, 3, 3)
                        _bn(keys, f"{f}.{k}.1", out, tracked)
        previous = channels
    for i, c in enumerate(previous):
        _bottleneck(keys, f"incre_modules.{i}.0", c, HEAD_CHANNELS[i], tracked)
    for i in range(len(HEAD_CHANNELS) - 1):
        cin, cout = 4 * HEAD_CHANNELS[i], 4 * HEAD_CHANNELS[i + 1]
        keys[f"downsamp_modules.{i}.0.weight"] = (cout, cin, 3, 3)
        keys[f"downsamp_modules.{i}.0.bias"] = (cout,)
        _bn(keys, f"downsamp_modules.{i}.1", cout, tracked)
    keys["final_layer.0.weight"] = (2048, 4 * HEAD_CHANNELS[-1], 1, 1)
    keys["final_layer.0.bias"] = (2048,)
    _bn(keys, "final_layer.1", 2048, tracked)
    keys["classifier.weight"] = (1000, 2048)
    keys["classifier.bias"] = (1000,)
    return keys


def official_hrnet_state(seed: int = 3, **config) -> dict[str, torch.Tensor]:
    """A synthetic checkpoint with those keys: random floats, BN variances positive."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_hrnet_keys(**config).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return state
