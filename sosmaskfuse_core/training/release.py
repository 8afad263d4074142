"""Training run to shipped weights: strip the optimizer state, store fp16, keep the metadata."""

from __future__ import annotations

from pathlib import Path

from sosmaskfuse_core.models import sos_hrnet
from sosmaskfuse_core.models.checkpoints import (
    identify,
    load_autoencoder,
    load_sosnet,
    read_file,
    save_checkpoint,
)


def export_weights(run: Path, out: Path, half: bool) -> dict:
    """A release checkpoint: model and metadata, no optimizer state; fp16 tensors with `half`."""
    arch, _ = identify(read_file(run))
    loader = load_sosnet if arch == sos_hrnet.ARCHITECTURE else load_autoencoder
    model, meta = loader(run)
    meta = {k: v for k, v in meta.items() if k not in ("path", "layout")}
    meta["exported_from"] = Path(run).name
    meta["stored_as"] = "float16" if half else "float32"
    save_checkpoint(out, model, meta, half=half)
    return meta
