"""Initialising the SOS network from ImageNet HRNet backbones, our weights or the authors'.

An ImageNet backbone's stem is averaged to one input channel.
"""

from __future__ import annotations

import torch

from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.models.checkpoints import CheckpointError
from sosmaskfuse_core.models.sos_hrnet import SOSNet

#: Keys of an ImageNet HRNet classification checkpoint that have no place in the SOS network.
IMAGENET_HEAD_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


def _strip_module_prefix(state: dict) -> dict:
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def init_from_imagenet(model: SOSNet, state: dict, path: str) -> dict:
    """Copy an ImageNet HRNet backbone into `model`, its head keys dropped.

    The stem conv is averaged over its input channels when the model has fewer; `last_layer` is
    left as initialised.

    Strict about the backbone: a missing, unexpected or mis-shaped key is a CheckpointError
    naming the key and the file (BatchNorm's `num_batches_tracked` may be absent).
    """
    ours = model.state_dict()
    kept: dict[str, torch.Tensor] = {}
    dropped = 0
    stem_averaged = None
    for key, value in state.items():
        if key.startswith(IMAGENET_HEAD_PREFIXES):
            dropped += 1
            continue
        if key not in ours or key.startswith("last_layer."):
            raise CheckpointError(
                f"{path}: unexpected key {key!r} for this network "
                f"(is it HRNetV2 of the same width?)"
            )
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: key {key!r} holds a {type(value).__name__}, not a tensor"
            )
        want = tuple(ours[key].shape)
        if (
            key == "conv1.weight"
            and value.dim() == 4
            and value.shape[1] != want[1]
            and want[1] == 1
        ):
            stem_averaged = tuple(value.shape)
            value = value.float().mean(dim=1, keepdim=True)
        if tuple(value.shape) != want:
            raise CheckpointError(
                f"{path}: key {key!r} has shape {tuple(value.shape)}, the model expects {want}"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: key {key!r} holds NaN or infinite values")
        kept[key] = value.to(ours[key].dtype)
    missing = [
        k
        for k in ours
        if k not in kept
        and not k.startswith("last_layer.")
        and not k.endswith("num_batches_tracked")
    ]
    if missing:
        raise CheckpointError(
            f"{path}: missing key {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    merged = dict(ours)
    merged.update(kept)
    model.load_state_dict(merged, strict=True)
    return {
        "path": path,
        "layout": "imagenet",
        "backbone_keys": len(kept),
        "dropped_head_keys": dropped,
        "stem_averaged_from": list(stem_averaged) if stem_averaged else None,
    }


def read_init(path: str) -> tuple[str, object]:
    """(layout, loaded object) of an --init file: 'imagenet', 'authors' or 'sosmaskfuse'."""
    obj = checkpoints.read_file(path)
    arch, layout = checkpoints.identify(obj)
    if arch is None:
        stripped = _strip_module_prefix(checkpoints._unwrap(obj)) if isinstance(obj, dict) else obj
        arch, layout = checkpoints.identify(stripped)
        obj = stripped
    if arch != SOSNet.architecture:
        what = (
            f"a {arch!r} checkpoint" if arch else "not an SOS network / ImageNet HRNet checkpoint"
        )
        raise CheckpointError(
            f"{path}: {what}; --init takes an ImageNet HRNetV2 checkpoint, the "
            f"authors' SOS network file or one of ours"
        )
    return layout, obj


def initialise(model: SOSNet, path: str, layout: str, obj) -> dict:
    """Load --init weights into `model` (see read_init); returns what was done for the metadata."""
    if layout == "imagenet":
        return init_from_imagenet(model, _strip_module_prefix(checkpoints._unwrap(obj)), path)
    source, meta = checkpoints.load_sosnet(
        path
    )  # ours or the authors': strict, names key and file
    if source.config != model.config:
        raise CheckpointError(
            f"{path}: holds a network of another architecture ({source.config}) than "
            f"this run's ({model.config})"
        )
    model.load_state_dict(source.state_dict())
    return {"path": path, "layout": layout, "source": meta.get("kind", meta.get("source", ""))}
