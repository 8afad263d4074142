"""Where the networks come from: files a user names, or the defaults shipped inside the package.

`build_pipeline` is the one place the CLI, the ROS node and the bag tool turn their options
into a `FusionPipeline`, and it says which weights and which mask source it chose.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import load_autoencoder, load_sosnet
from .pipeline import FusionPipeline, PipelineConfig

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_AUTOENCODER = SHIPPED_DIR / "imvf_autoencoder.pt"
SHIPPED_SOSNET = SHIPPED_DIR / "sosnet.pt"
MASK_SOURCE_CHOICES = ("auto", "sosnet", "thermal", "external")


@dataclass
class ModelSources:
    """A human-readable account of what a pipeline runs, for logs and diagnostics."""

    autoencoder: str
    mask: str

    def __str__(self) -> str:
        return f"autoencoder: {self.autoencoder}; mask: {self.mask}"


def _describe(meta: dict, shipped: bool) -> str:
    what = "shipped default" if shipped else ("authors' weights" if meta.get("layout") == "authors" else "weights")
    return f"{what} {meta['path']}"


def thermal_masker():
    """The classical hot-object masker (no network), or None where it is not available."""
    try:
        from .thermal_mask import ThermalHotObjectMasker
    except ImportError:  # pragma: no cover - the module ships with the package
        return None
    return ThermalHotObjectMasker()


def build_pipeline(
    autoencoder: str | None = None,
    sosnet: str | None = None,
    *,
    mask_source: str = "auto",
    device: str | torch.device = "auto",
    config: PipelineConfig | None = None,
) -> tuple[FusionPipeline, ModelSources]:
    """A pipeline from checkpoint paths; empty paths mean the shipped defaults.

    mask_source `auto` uses the SOS network when weights for it are given or shipped, and
    the classical thermal mask otherwise.
    """
    if mask_source not in MASK_SOURCE_CHOICES:
        raise ValueError(f"mask_source {mask_source!r}: expected one of {', '.join(MASK_SOURCE_CHOICES)}")
    ae_path = autoencoder or (str(SHIPPED_AUTOENCODER) if SHIPPED_AUTOENCODER.is_file() else None)
    if ae_path is None:
        raise FileNotFoundError("no autoencoder weights given and none shipped with the package "
                                f"(expected {SHIPPED_AUTOENCODER})")
    ae, ae_meta = load_autoencoder(ae_path)
    ae_desc = _describe(ae_meta, not autoencoder)

    sos = None
    sos_desc = ""
    want_sos = mask_source in ("sosnet", "auto")
    sos_path = sosnet or (str(SHIPPED_SOSNET) if want_sos and SHIPPED_SOSNET.is_file() else None)
    if mask_source == "sosnet" and sos_path is None:
        raise FileNotFoundError("mask_source 'sosnet' needs SOS network weights (none given, none shipped)")
    if sos_path and mask_source in ("sosnet", "auto"):
        sos, sos_meta = load_sosnet(sos_path)
        sos_desc = "SOS network, " + _describe(sos_meta, not sosnet)
        trained_size = sos_meta.get("input_size")  # our runs record the size they trained at
        if trained_size:
            config = (config or PipelineConfig()).replace(sos_size=tuple(int(v) for v in trained_size))
            sos_desc += f" at {trained_size[0]}x{trained_size[1]}"
    masker = thermal_masker()
    if mask_source == "auto":
        mask_source = "sosnet" if sos is not None else "thermal"
    if mask_source == "thermal":
        if masker is None:
            raise RuntimeError("the classical thermal masker is not available")
        sos_desc = "classical thermal hot-object mask (no network)"
    elif mask_source == "external":
        sos_desc = "external masks"
    pipeline = FusionPipeline(ae, sos, config=config, device=device, mask_source=mask_source,
                              thermal_masker=masker)
    sources = ModelSources(autoencoder=ae_desc, mask=sos_desc)
    log.info("pipeline on %s: %s", pipeline.device, sources)
    return pipeline, sources
