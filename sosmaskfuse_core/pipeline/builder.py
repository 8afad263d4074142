"""Building a pipeline: from checkpoint paths (or the shipped defaults), and from settings values.

`build_pipeline` is four steps, each its own function: `load_networks` reads the checkpoint
files (or the shipped ones), `mask_source.resolve_mask_source` makes `auto` concrete,
`describe_sources` says in words what runs, and `health.probe` refuses broken weights.
`build_stage` turns a full set of settings values (node parameters or command-line options,
names as in `sosmaskfuse_core.settings.table`) into the `PairStage` the node, the bag tool and
the folder job run; `LiveSettings` checks and applies the live ones between pairs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sosmaskfuse_core.models.checkpoints import load_autoencoder, load_sosnet
from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder
from sosmaskfuse_core.models.shipped import (
    SHIPPED_SOSNET,
    describe,
    resolve_autoencoder,
    shipped_or_none,
)
from sosmaskfuse_core.models.sos_hrnet import SOSNet
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.thermal.agc import ThermalAGC

from .devices import resolve_device
from .frames import FramePreparer, parse_homography
from .fusion_pipeline import FusionPipeline, PipelineConfig
from .health import probe
from .mask_source import needs_network, resolve_mask_source
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


@dataclass
class Networks:
    """The networks read from their files, with what the files say about them."""

    autoencoder: IMVFAutoencoder
    autoencoder_meta: dict
    autoencoder_shipped: str | None  # "full" or "lite" for a shipped file, else None
    sosnet: SOSNet | None = None
    sosnet_meta: dict = field(default_factory=dict)
    sosnet_given: bool = False  # the user named the SOS file (else the shipped one, or none)

    @property
    def network(self) -> str:
        """Where the SOS network comes from, as `resolve_mask_source` asks: none/shipped/given."""
        if self.sosnet is None:
            return "none"
        return "given" if self.sosnet_given else "shipped"

    @property
    def sos_size(self) -> tuple[int, int] | None:
        """The (width, height) our training runs record for the network; None for others."""
        size = self.sosnet_meta.get("input_size")
        return (int(size[0]), int(size[1])) if size else None


def load_networks(
    autoencoder: str | None,
    sosnet: str | None,
    *,
    with_sosnet: bool = True,
    on_gpu: bool = False,
) -> Networks:
    """The autoencoder and (with `with_sosnet`) the SOS network from their files.

    Empty paths mean the shipped files; `autoencoder` may also name a shipped model ("auto",
    "full", "lite"; "auto" is the full model `on_gpu`, the lite model on a CPU).
    An SOS network asked for by path must load; the shipped one is used where it ships.
    Raises OSError (a missing file), ValueError or RuntimeError (a file that is not usable).
    """
    ae_path, shipped_name = resolve_autoencoder(autoencoder, on_gpu)
    ae, ae_meta = load_autoencoder(ae_path)
    networks = Networks(ae, ae_meta, shipped_name)
    if with_sosnet:
        sos_path = sosnet or shipped_or_none(SHIPPED_SOSNET)
        if sos_path:
            networks.sosnet, networks.sosnet_meta = load_sosnet(sos_path)
            networks.sosnet_given = bool(sosnet)
    return networks


def describe_sources(networks: Networks, mask_source: str) -> ModelSources:
    """What runs, in words: `autoencoder: shipped lite <file>; mask: shipped SOS network...`."""
    if mask_source == "thermal":
        mask = "classical thermal hot-object mask (no network)"
    elif mask_source == "topic":
        mask = "masks given with each pair"
    else:
        meta = networks.sosnet_meta
        mask = (
            "SOS network, " + describe(meta, False)
            if networks.sosnet_given
            else f"shipped SOS network {meta['path']}"
        )
        if networks.sos_size:
            mask += f" at {networks.sos_size[0]}x{networks.sos_size[1]}"
        if mask_source == "ensemble":
            mask += ", averaged with the classical thermal mask"
    return ModelSources(
        autoencoder=describe(networks.autoencoder_meta, networks.autoencoder_shipped),
        mask=mask,
        sosnet_metadata=networks.sosnet_meta if needs_network(mask_source) else {},
    )


def build_pipeline(
    autoencoder: str | None = None,
    sosnet: str | None = None,
    *,
    mask_source: str = "auto",
    device: str | torch.device = "auto",
    config: PipelineConfig | None = None,
    backend: str = table.default("backend"),
    memory_mb: int = table.default("fusion_memory_mb"),
) -> tuple[FusionPipeline, ModelSources]:
    """A pipeline from checkpoint paths; empty paths mean the shipped defaults.

    `autoencoder` may also name a shipped model: "auto" (full on a GPU, lite on a CPU), "full"
    or "lite". `mask_source` (see
    `mask_source.resolve_mask_source`): `auto` runs the shipped SOS network averaged with the
    classical thermal mask (`ensemble`), SOS weights you give alone (`sosnet`), and the
    classical mask (`thermal`) where there is no network; `topic` expects a mask with every
    pair. `backend` is torch, onnxruntime or auto. The pipeline is probed before it is returned
    (`health.probe`).
    """
    table.by_name("mask_source").check(mask_source)
    table.by_name("backend").check(backend)
    device = resolve_device(device)
    networks = load_networks(
        autoencoder,
        sosnet,
        with_sosnet=mask_source in ("auto", "sosnet", "ensemble"),
        on_gpu=device.type == "cuda",
    )
    if needs_network(mask_source) and networks.sosnet is None:
        raise FileNotFoundError(
            f"mask_source {mask_source!r} needs SOS network weights (none given, none shipped)"
        )
    source = resolve_mask_source(mask_source, networks.network)
    config = config or PipelineConfig()
    changes: dict[str, Any] = {"mask_source": source}
    if needs_network(source) and networks.sos_size:  # the size our runs trained at
        changes["sos_size"] = networks.sos_size
    config = dataclasses.replace(config, **changes)
    sos = networks.sosnet if needs_network(source) else None
    pipeline = FusionPipeline(
        networks.autoencoder,
        sos,
        config=config,
        device=device,
        backend=backend,
        memory_mb=memory_mb,
    )
    sources = describe_sources(networks, source)
    probe(pipeline, what=str(sources))  # broken or useless weights are refused here, at load
    pipeline.clock.take()  # the probe is no pair
    log.info("pipeline on %s (%s backend): %s", pipeline.device, pipeline.backend.name, sources)
    return pipeline, sources


# --- from settings values ----------------------------------------------------------------------


def process_size(values: Mapping[str, Any]) -> tuple[int, int] | None:
    """(width, height) from process_width/process_height; None for the native size."""
    width, height = values.get("process_width", 0), values.get("process_height", 0)
    if bool(width) != bool(height):
        raise ValueError("process_width and process_height go together: set both, or neither")
    return (int(width), int(height)) if width else None


def pipeline_config(values: Mapping[str, Any]) -> PipelineConfig:
    """The PipelineConfig named by settings values (ValueError for a bad one)."""
    return PipelineConfig(**{k: values[k] for k in PipelineConfig.SETTINGS if k in values})


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
    table.check_values({k: v for k, v in values.items() if table.is_setting(k)})
    config = pipeline_config(values)
    preparer = frame_preparer(values)
    pipeline, sources = build_pipeline(
        values.get("autoencoder_weights") or None,
        values.get("sosnet_weights") or None,
        mask_source=config.mask_source,
        device=values.get("device", "auto"),
        config=config,
        backend=values.get("backend", table.default("backend")),
        memory_mb=values.get("fusion_memory_mb", 0),
    )
    stage = PairStage(
        pipeline,
        preparer,
        with_mask=values.get("publish_mask", True),
        mask_smoothing=values.get("mask_smoothing", 0.0),
    )
    return stage, sources


@dataclass(frozen=True)
class LiveSettings:
    """The live settings of one set of values, checked against a stage; `apply` sets them.

    Made by `LiveSettings.check(stage, values)` (ValueError, changing nothing, when a value or
    a combination is refused, e.g. agc_min above agc_max); `apply(stage)` changes the stage
    between two pairs. The homography stays the stage's own array while its numbers do not
    change (a new one is a new registration).
    """

    pipeline: dict[str, Any]
    agc: ThermalAGC
    gray_visible: bool
    with_mask: bool
    mask_smoothing: float
    homography: np.ndarray | None

    @classmethod
    def check(cls, stage: PairStage, values: Mapping[str, Any]) -> LiveSettings:
        """The live settings in `values` (the full set, changes merged in), validated."""
        live = {k: values[k] for k in PipelineConfig.SETTINGS if k in values and _is_live(k)}
        config = dataclasses.replace(stage.pipeline.config, **live)
        smoothing = values.get("mask_smoothing", stage.mask_smoothing)
        table.by_name("mask_smoothing").check(smoothing)
        current = stage.preparer.homography
        homography = parse_homography(values["homography"]) if "homography" in values else current
        if homography is not None and current is not None and np.array_equal(homography, current):
            homography = current
        return cls(
            pipeline=live,
            agc=ThermalAGC.from_settings(values),
            gray_visible=not config.color_output,
            with_mask=values.get("publish_mask", stage.with_mask),
            mask_smoothing=smoothing,
            homography=homography,
        )

    def apply(self, stage: PairStage) -> None:
        """Set these values on the stage (the pipeline's own lock keeps a pair in flight whole)."""
        stage.pipeline.update(**self.pipeline)
        stage.replace_preparer(
            agc=self.agc, gray_visible=self.gray_visible, homography=self.homography
        )
        stage.with_mask = self.with_mask
        stage.set_mask_smoothing(self.mask_smoothing)


def _is_live(name: str) -> bool:
    return table.by_name(name).live
