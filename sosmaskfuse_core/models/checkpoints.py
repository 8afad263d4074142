"""Loading and saving checkpoints (the authors' files, ours, ImageNet HRNet), safely and strictly.

Every file is read with ``torch.load(weights_only=True)``: no code in a checkpoint ever runs.
Nor can a file make us allocate more than it holds: `read_file` accepts the zip archives
``torch.save`` writes only with stored (uncompressed) records, so no tensor can declare more
bytes than the file has (torch checks each record against its tensor), and maps them with
``mmap=True``, so the tensors cost no memory until the model's own are filled from them after
every key and shape was checked (on meta tensors). A 2 MB file of deflated records declaring
2 GB of zeros is refused before a byte of them is inflated. PyTorch's legacy (pre-1.6,
non-zip) files still load, without the map; anything else (a zero-filled or text file) gets our
own message, never torch's advice to retry with ``weights_only=False``.

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
import re
import stat
import zipfile
from typing import Any, Callable, TypeVar

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


#: How PyTorch's legacy (pre-1.6) files start: pickle protocol 2 and torch's magic number.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."


def _layout(path: str) -> str:
    """``"zip"`` (torch.save's archive) or ``"legacy"``; CheckpointError for anything else.

    A zip archive must hold only stored records: torch.save never compresses, and a deflated
    record could declare far more memory than the file holds.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"{path}: a folder, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path}: not a regular file")
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                packed = [i.filename for i in archive.infolist() if i.compress_type != 0]
        except (zipfile.BadZipFile, OSError) as exc:
            raise CheckpointError(f"{path}: a damaged zip archive ({exc})") from None
        if packed:
            raise CheckpointError(
                f"{path}: holds compressed records ({packed[0]}), which torch.save never "
                "writes; refused, as their tensors could need far more memory than the file"
            )
        return "zip"
    if head == _LEGACY_MAGIC:
        return "legacy"
    what = "empty" if info.st_size == 0 else f"{info.st_size} bytes"
    raise CheckpointError(
        f"{path}: not a PyTorch checkpoint ({what}, neither the zip archive torch.save "
        "writes nor PyTorch's legacy format)"
    )


def read_file(path: str | os.PathLike) -> Any:
    """`torch.load` with `weights_only=True` on the CPU; unreadable files raise CheckpointError.

    Tensors of a zip archive are mapped from the file (``mmap=True``): they cost memory only
    when copied, and a file cannot declare more bytes than it has (see the module docstring).
    """
    path = os.fspath(path)
    mmap = _layout(path) == "zip"
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to unpickle (only tensors and plain data are "
            f"loaded, weights_only=True): {_without_advice(exc)}"
        ) from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/zipfile errors for junk
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint "
            f"({type(exc).__name__}: {_without_advice(exc)})"
        ) from None


def _without_advice(exc: Exception) -> str:
    """The exception's text without torch's paragraphs about weights_only (unsafe advice)."""
    kept = [p.strip() for p in re.split(r"\n\s*\n", str(exc)) if "weights_only" not in p]
    return " ".join(p for p in kept if p) or type(exc).__name__


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


def check_state(
    ours: dict,
    state: dict,
    path: str,
    to_ours: Callable[[str], str | None],
    to_theirs: Callable[[str], str],
) -> dict[str, torch.Tensor]:
    """`state` in our key names, checked against `ours` (shapes and dtypes; meta tensors do).

    CheckpointError names the first key that is missing, unexpected, mis-shaped, of another
    kind, not a tensor or not finite.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the state dict is a {type(state).__name__}, not a dict")
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: state dict key {key!r} is not a string")
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
    return mapped


# --- our files: config and contents checked before anything is built ----------------------------

#: Sanity caps on config values (inclusive): the paper's networks are far inside them, and a
#: file declaring more would cost gigabytes to build before its weights could be compared.
AUTOENCODER_CAPS = {"widths": (4, 1, 1024), "stem_channels": (None, 1, 256)}
SOSNET_CAPS = {
    "in_channels": (None, 1, 4),
    "stem_channels": (None, 1, 512),
    "layer1_blocks": (None, 1, 16),
    "stage_channels": ((2, 3, 4), 1, 1024),
    "stage_modules": (3, 1, 16),
    "blocks_per_branch": (None, 1, 16),
    "num_classes": (None, 1, 16),
}


def _config(path: str, obj: dict, cls, caps: dict):
    """The config dataclass of one of our files, every capped value checked first."""
    config = obj.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' is missing or not a dict")
    for field, (shape, lo, hi) in caps.items():
        if field not in config:
            raise CheckpointError(f"{path}: config has no {field!r}")
        _check_capped(path, field, config[field], shape, lo, hi)
    try:
        return cls.from_dict(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad config ({type(exc).__name__}: {exc})") from None


def _check_capped(path: str, field: str, value: Any, shape: Any, lo: int, hi: int) -> None:
    """Check a capped config value: an int in [lo, hi], or lists of them.

    `shape` None is one int, an int is a list of that many, a tuple a list of lists whose
    lengths are its items.
    """
    if shape is None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise CheckpointError(
                f"{path}: config {field} = {value!r}; expected an integer in [{lo}, {hi}]"
            )
        return
    count = len(shape) if isinstance(shape, tuple) else shape
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise CheckpointError(f"{path}: config {field} = {value!r}; expected {count} items")
    for i, item in enumerate(value):
        _check_capped(path, field, item, shape[i] if isinstance(shape, tuple) else None, lo, hi)


def _state_dict(path: str, obj: dict) -> dict:
    state = obj.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'state_dict' is missing or not a dict")
    return state


def _metadata(path: str, obj: dict) -> dict:
    meta = obj.get("metadata", {})
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: 'metadata' is a {type(meta).__name__}, not a dict")
    return dict(meta)


_Net = TypeVar("_Net", bound=nn.Module)


def _built(path: str, make: Callable[[], _Net], state: Any, to_ours, to_theirs) -> _Net:
    """The model made by `make`, its weights from `state`: checked on meta tensors first.

    The shapes are compared on a model without storage, so a file that does not fit costs
    nothing to refuse; the real model is built only for a state dict that fills it exactly.
    """
    with torch.device("meta"):
        shapes = make().state_dict()
    mapped = check_state(shapes, state, path, to_ours, to_theirs)
    model = make()
    model.load_state_dict(mapped, strict=True)
    return model


def load_autoencoder(path: str | os.PathLike) -> tuple[ae.IMVFAutoencoder, dict]:
    """The IMV-F autoencoder from the authors' file or ours: (model in eval mode, metadata)."""
    path = os.fspath(path)
    obj = read_file(path)
    layout = _check_architecture(path, obj, ae.ARCHITECTURE)
    if layout == FORMAT:
        config = _config(path, obj, ae.AutoencoderConfig, AUTOENCODER_CAPS)
        state, meta = _state_dict(path, obj), _metadata(path, obj)
        model = _built(path, lambda: ae.IMVFAutoencoder(config), state, lambda k: k, lambda k: k)
    else:
        model = _built(
            path, ae.IMVFAutoencoder, _unwrap(obj), ae.authors_to_ours, ae.ours_to_authors
        )
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
        config = _config(path, obj, hr.HRNetConfig, SOSNET_CAPS)
        state, meta = _state_dict(path, obj), _metadata(path, obj)
        model = _built(path, lambda: hr.SOSNet(config), state, lambda k: k, lambda k: k)
    else:
        state = _unwrap(obj)
        alias = state.get(hr.AUTHORS_STEM_ALIAS)
        stem = state.get("layer_thermal_1.0.weight")
        if not isinstance(alias, torch.Tensor):
            raise CheckpointError(f"{path}: missing key {hr.AUTHORS_STEM_ALIAS!r}")
        if isinstance(stem, torch.Tensor) and (
            alias.shape != stem.shape or not torch.equal(alias, stem)
        ):
            # The authors' model registers one convolution under both names; loading their file
            # into it copies 'encoder_thermal_conv1.weight' first and 'layer_thermal_1.0.weight'
            # last, so the latter is what their network computes with. We do the same.
            log.warning(
                "%s: %r differs from 'layer_thermal_1.0.weight' (one shared tensor in the "
                "authors' files); using 'layer_thermal_1.0.weight' as their loader does",
                path,
                hr.AUTHORS_STEM_ALIAS,
            )
        model = _built(path, hr.SOSNet, state, hr.authors_to_ours, hr.ours_to_authors)
        meta = {"source": "authors"}
    meta.update(path=path, layout=layout)
    return model.eval(), meta


def save_checkpoint(
    path: str | os.PathLike,
    model: ae.IMVFAutoencoder | hr.SOSNet,
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
