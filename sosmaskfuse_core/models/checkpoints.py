"""Loading and saving checkpoints (the authors' files, ours, ImageNet HRNet), safely and strictly.

Every file is read with ``torch.load(weights_only=True)``: no code in a checkpoint ever runs.
Three layouts are recognised:

* the authors' plain state dicts (`Epoch_model_1.model` for the autoencoder,
  `normal_epoch_170.pth` / `Final_normal.pth` for the SOS network), mapped key by key to our
  module names (the tables are in `models/imvf_autoencoder.py` and `models/sos_hrnet.py`);
* our own files: a dict with ``format == "sosmaskfuse"``, the architecture, its config, the
  state dict in our names and a metadata dict (see `save_checkpoint`);
* (SOS network only) an official ImageNet HRNetV2-W30 checkpoint, for `--init` in training.

Loading is strict: a missing, unexpected or mis-shaped key is a `CheckpointError` naming the
key and the file, and a file given to the wrong loader says which architecture it holds.
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any, Callable

import torch
from torch import nn

from sosmaskfuse_core.models import imvf_autoencoder as ae
from sosmaskfuse_core.models import sos_hrnet as hr

log = logging.getLogger(__name__)

FORMAT = "sosmaskfuse"
FORMAT_VERSION = 1
_LOADER_FLAG = {
    ae.ARCHITECTURE: "--autoencoder (load_autoencoder)",
    hr.ARCHITECTURE: "--sosnet (load_sosnet)",
}
_DESCRIPTION = {
    ae.ARCHITECTURE: "an IMV-F autoencoder checkpoint",
    hr.ARCHITECTURE: "an SOS network (HRNetV2-W30) checkpoint",
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the reason and the file's name."""


def read_file(path: str | os.PathLike) -> Any:
    """`torch.load` with `weights_only=True` on the CPU; unreadable files raise CheckpointError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to unpickle (only tensors and plain data are "
            f"loaded, weights_only=True): {exc}"
        ) from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/zipfile errors for junk
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from None


def identify(obj: Any) -> tuple[str | None, str]:
    """(architecture, layout) of a loaded checkpoint object; architecture None if unknown.

    layout is ``"sosmaskfuse"``, ``"authors"``, ``"imagenet"`` or ``"unknown"``.
    """
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj.get("architecture"), FORMAT
    state = _unwrap(obj)
    if not isinstance(state, dict):
        return None, "unknown"
    keys = list(state.keys())
    if ae.is_authors_layout(keys):
        return ae.ARCHITECTURE, "authors"
    if hr.is_authors_layout(keys):
        return hr.ARCHITECTURE, "authors"
    if hr.is_imagenet_layout(keys):
        return hr.ARCHITECTURE, "imagenet"
    return None, "unknown"


def _unwrap(obj: Any) -> Any:
    """Plain state dicts are sometimes saved inside {"state_dict": ...} or {"model": ...}."""
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                return obj[key]
    return obj


def _check_architecture(path: str, obj: Any, expected: str) -> str:
    arch, layout = identify(obj)
    if arch is None:
        raise CheckpointError(
            f"{path}: not {_DESCRIPTION[expected]} (neither the authors' key layout "
            f"nor a {FORMAT} checkpoint)"
        )
    if arch != expected:
        described = _DESCRIPTION.get(arch, f"a {arch!r} checkpoint")
        hint = f"; load it with {_LOADER_FLAG[arch]}" if arch in _LOADER_FLAG else ""
        raise CheckpointError(
            f"{path}: this is {described} ({layout} layout), not {_DESCRIPTION[expected]}{hint}"
        )
    return layout


def load_state_strict(
    model: nn.Module,
    state: dict,
    path: str,
    to_ours: Callable[[str], str | None],
    to_theirs: Callable[[str], str],
) -> None:
    """Copy `state` (keys in the file's layout) into `model`; a key problem names key and file."""
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = to_ours(key)
        if name is None:
            continue
        if name not in ours:
            raise CheckpointError(f"{path}: unexpected key {key!r}")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: key {key!r} holds a {type(value).__name__}, not a tensor"
            )
        if tuple(value.shape) != tuple(ours[name].shape):
            raise CheckpointError(
                f"{path}: key {key!r} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(ours[name].shape)}"
            )
        if value.is_floating_point() != ours[name].is_floating_point():
            raise CheckpointError(
                f"{path}: key {key!r} has dtype {value.dtype}, "
                f"the model expects {ours[name].dtype}"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: key {key!r} holds NaN or infinite values")
        mapped[name] = value
    missing = [k for k in ours if k not in mapped]
    if missing:
        raise CheckpointError(
            f"{path}: missing key {to_theirs(missing[0])!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    model.load_state_dict(mapped, strict=True)


def load_autoencoder(path: str | os.PathLike) -> tuple[ae.IMVFAutoencoder, dict]:
    """The IMV-F autoencoder from the authors' file or ours: (model in eval mode, metadata)."""
    path = os.fspath(path)
    obj = read_file(path)
    layout = _check_architecture(path, obj, ae.ARCHITECTURE)
    if layout == FORMAT:
        model = ae.IMVFAutoencoder(ae.AutoencoderConfig.from_dict(obj["config"]))
        load_state_strict(model, obj["state_dict"], path, lambda k: k, lambda k: k)
        meta = dict(obj.get("metadata", {}))
    else:
        model = ae.IMVFAutoencoder()
        load_state_strict(model, _unwrap(obj), path, ae.authors_to_ours, ae.ours_to_authors)
        meta = {"source": "authors"}
    meta.update(path=path, layout=layout)
    return model.eval(), meta


def load_sosnet(path: str | os.PathLike) -> tuple[hr.SOSNet, dict]:
    """The SOS network from the authors' file or ours; returns (model in eval mode, metadata)."""
    path = os.fspath(path)
    obj = read_file(path)
    layout = _check_architecture(path, obj, hr.ARCHITECTURE)
    if layout == "imagenet":
        raise CheckpointError(
            f"{path}: an ImageNet HRNet classification checkpoint has no "
            f"segmentation head; use it as `train-sosnet --init`"
        )
    if layout == FORMAT:
        model = hr.SOSNet(hr.HRNetConfig.from_dict(obj["config"]))
        load_state_strict(model, obj["state_dict"], path, lambda k: k, lambda k: k)
        meta = dict(obj.get("metadata", {}))
    else:
        state = _unwrap(obj)
        alias = state.get(hr.AUTHORS_STEM_ALIAS)
        stem = state.get("layer_thermal_1.0.weight")
        if alias is None:
            raise CheckpointError(f"{path}: missing key {hr.AUTHORS_STEM_ALIAS!r}")
        if stem is not None and (alias.shape != stem.shape or not torch.equal(alias, stem)):
            # The authors' model registers one convolution under both names; loading their file
            # into it copies 'encoder_thermal_conv1.weight' first and 'layer_thermal_1.0.weight'
            # last, so the latter is what their network computes with. We do the same.
            log.warning(
                "%s: %r differs from 'layer_thermal_1.0.weight' (one shared tensor in the "
                "authors' files); using 'layer_thermal_1.0.weight' as their loader does",
                path,
                hr.AUTHORS_STEM_ALIAS,
            )
        model = hr.SOSNet()
        load_state_strict(model, state, path, hr.authors_to_ours, hr.ours_to_authors)
        meta = {"source": "authors"}
    meta.update(path=path, layout=layout)
    return model.eval(), meta


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    metadata: dict | None = None,
    half: bool = False,
    extra: dict | None = None,
) -> None:
    """Write a checkpoint in our format.

    The file holds {format, format_version, architecture, config, state_dict, metadata}.
    `metadata` must hold plain data (str, int, float, bool, None, lists and dicts of them) so
    the file loads with weights_only=True. `half` stores floating tensors as float16.
    `extra` adds top-level entries (e.g. optimizer state for resuming training).
    """
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
        for k, v in model.state_dict().items()
    }
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "config": model.config.to_dict(),
        "state_dict": state,
        "metadata": dict(metadata or {}),
    }
    if extra:
        obj.update(extra)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def export_authors_layout(model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict in the authors' key layout (e.g. to run their code on weights we trained)."""
    state = model.state_dict()
    if isinstance(model, ae.IMVFAutoencoder):
        return {ae.ours_to_authors(k): v for k, v in state.items()}
    if isinstance(model, hr.SOSNet):
        out = {hr.AUTHORS_STEM_ALIAS: state["conv1.weight"]}
        out.update({hr.ours_to_authors(k): v for k, v in state.items()})
        return out
    raise TypeError(f"no authors' layout for {type(model).__name__}")
