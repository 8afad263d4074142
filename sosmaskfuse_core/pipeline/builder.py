"""Building a pipeline: from checkpoint paths (or the shipped defaults), and from settings values.

`build_pipeline` turns model options into a `FusionPipeline` and says which weights and which
mask source it chose; `build_stage` turns a full set of settings values (node parameters or
command-line options, names as in `sosmaskfuse_core.settings.table`) into the `PairStage` the
node, the bag tool and the folder job run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from sosmaskfuse_core.models.checkpoints import load_autoencoder, load_sosnet
from sosmaskfuse_core.models.shipped import (
    SHIPPED_SOSNET,
    describe,
    resolve_autoencoder,
    shipped_or_none,
)
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.thermal.agc import ThermalAGC
from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker

from .frames import FramePreparer, parse_homography
from .fusion_pipeline import FusionPipeline, PipelineConfig
from .health import probe
from .pair_stage import PairStage

log = logging.getLogger(__name__)


@dataclass
class ModelSources:
    """A human-readable account of what a pipeline runs, for logs and diagnostics."""

    autoencoder: str
    mask: str
    #: The SOS network file's metadata (its training run's settings, data and held-out stems).
    sosnet_metadata: dict = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return f"autoencoder: {self.autoencoder}; mask: {self.mask}"


def build_pipeline(
    autoencoder: str | None = None,
    sosnet: str | None = None,
    *,
    mask_source: str = "auto",
    device: str | torch.device = "auto",
    config: PipelineConfig | None = None,
    backend: str = table.default("backend"),
) -> tuple[FusionPipeline, ModelSources]:
    """A pipeline from checkpoint paths; empty paths mean the shipped defaults.

    `autoencoder` may also name a shipped model: "lite". mask_source `auto` runs the shipped
    SOS network averaged with the classical thermal mask (`ensemble`: what measured best on
    held-out ground-level scenes, models/weights/MODEL_CARD_sosnet.md), SOS weights you give
    alone (`sosnet`), and the classical mask (`thermal`) where there is no network; `topic`
    expects a mask with every pair. `backend` is torch, onnxruntime or auto.
    """
    table.by_name("mask_source").check(mask_source)
    table.by_name("backend").check(backend)
    ae_path, shipped_name = resolve_autoencoder(autoencoder)  # "", "lite" or a path
    ae, ae_meta = load_autoencoder(ae_path)
    ae_desc = describe(ae_meta, shipped_name)

    sos = None
    sos_desc = ""
    sos_meta: dict = {}
    if mask_source in ("sosnet", "ensemble", "auto"):
        sos_path = sosnet or shipped_or_none(SHIPPED_SOSNET)
        if mask_source != "auto" and sos_path is None:
            raise FileNotFoundError(
                f"mask_source {mask_source!r} needs SOS network weights (none given, none shipped)"
            )
        if sos_path:
            sos, sos_meta = load_sosnet(sos_path)
            # "shipped SOS network <file>" / "SOS network, authors' weights <file>" / ...
            sos_desc = (
                f"shipped SOS network {sos_meta['path']}"
                if not sosnet
                else "SOS network, " + describe(sos_meta, False)
            )
            trained_size = sos_meta.get("input_size")  # our runs record the size they trained at
            if trained_size:
                config = (config or PipelineConfig()).replace(
                    sos_size=tuple(int(v) for v in trained_size)
                )
                sos_desc += f" at {trained_size[0]}x{trained_size[1]}"
    if mask_source == "auto":
        mask_source = "thermal" if sos is None else ("sosnet" if sosnet else "ensemble")
    if mask_source == "ensemble":
        sos_desc += ", averaged with the classical thermal mask"
    elif mask_source == "thermal":
        sos_desc = "classical thermal hot-object mask (no network)"
    elif mask_source == "topic":
        sos_desc = "masks given with each pair"
    pipeline = FusionPipeline(
        ae,
        sos,
        config=config,
        device=device,
        mask_source=mask_source,
        thermal_masker=ThermalHotObjectMasker(),
        backend=backend,
    )
    sources = ModelSources(
        autoencoder=ae_desc, mask=sos_desc, sosnet_metadata=sos_meta if sos is not None else {}
    )
    probe(pipeline, what=str(sources))  # numerically broken weights are refused here, at load
    log.info("pipeline on %s (%s backend): %s", pipeline.device, pipeline.backend.name, sources)
    return pipeline, sources


# --- from settings values ----------------------------------------------------------------------

#: Settings that are PipelineConfig fields of the same name.
PIPELINE_SETTINGS = (
    "fusion_mode",
    "mu",
    "mask_threshold",
    "mask_input_stretch",
    "output_scaling",
    "precision",
    "color_output",
)


def process_size(values: Mapping[str, Any]) -> tuple[int, int] | None:
    """(width, height) from process_width/process_height; None for the native size."""
    width, height = values.get("process_width", 0), values.get("process_height", 0)
    if bool(width) != bool(height):
        raise ValueError("process_width and process_height go together: set both, or neither")
    return (int(width), int(height)) if width else None


def pipeline_config(values: Mapping[str, Any]) -> PipelineConfig:
    """The PipelineConfig named by settings values (ValueError for a bad one)."""
    return PipelineConfig(
        **{k: values[k] for k in PIPELINE_SETTINGS if k in values},
        process_size=process_size(values),
    )


def frame_preparer(values: Mapping[str, Any]) -> FramePreparer:
    """Gain control, registration, processing size and visible colour from settings values."""
    return FramePreparer(
        agc=ThermalAGC.from_settings(values),
        homography=parse_homography(values.get("homography")),
        size=process_size(values),
        gray_visible=not values.get("color_output", False),
    )


def build_stage(
    values: Mapping[str, Any], **model_overrides: Any
) -> tuple[PairStage, ModelSources]:
    """The per-pair stage named by a full set of settings values.

    `model_overrides` replace autoencoder_weights, sosnet_weights, mask_source, device or
    precision (the node's fallbacks).

    Raises ValueError (a bad value), OSError (a missing file), RuntimeError.
    """
    values = {**values, **model_overrides}
    table.check_values({k: v for k, v in values.items() if _is_setting(k)})
    config = pipeline_config(values)
    preparer = frame_preparer(values)
    pipeline, sources = build_pipeline(
        values.get("autoencoder_weights") or None,
        values.get("sosnet_weights") or None,
        mask_source=values.get("mask_source", "auto"),
        device=values.get("device", "auto"),
        config=config,
        backend=values.get("backend", table.default("backend")),
    )
    stage = PairStage(
        pipeline,
        preparer,
        with_mask=values.get("publish_mask", True),
        mask_smoothing=values.get("mask_smoothing", 0.0),
    )
    return stage, sources


def _is_setting(name: str) -> bool:
    try:
        table.by_name(name)
    except KeyError:
        return False
    return True


def live_update(stage: PairStage, values: Mapping[str, Any]) -> Callable[[], None]:
    """Check the live settings in `values` against `stage`; return the function that applies them.

    `values` is the node's full set, changes merged in; the function applies them between two
    pairs. ValueError, changing nothing, when a value or a combination is refused (e.g.
    fixed_min above fixed_max).
    """
    config = stage.pipeline.config.replace(
        **{k: values[k] for k in PIPELINE_SETTINGS if k in values}
    )
    agc = ThermalAGC.from_settings(values)
    gray_visible = not config.color_output
    with_mask = values.get("publish_mask", stage.with_mask)
    smoothing = values.get("mask_smoothing", stage.mask_smoothing)
    table.by_name("mask_smoothing").check(smoothing)

    def apply() -> None:
        stage.pipeline.update(**{k: getattr(config, k) for k in PIPELINE_SETTINGS})
        stage.replace_preparer(agc=agc, gray_visible=gray_visible)
        stage.with_mask = with_mask
        stage.set_mask_smoothing(smoothing)

    return apply
