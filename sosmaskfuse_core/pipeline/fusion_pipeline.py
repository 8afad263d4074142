"""The fusion pipeline: thermal + visible frames in, salient-object mask and fused image out.

One `FusionPipeline` holds the networks (through its backend) on one device and is called per
frame, or per batch of same-sized frames. Inputs are NumPy arrays (uint8, H x W or H x W x 3 in
OpenCV's BGR order) or torch tensors (uint8, or float gray levels 0..255) already on the
pipeline's device; results come back in the same kind. Raw thermal counts, registration and the
processing size are the frame preparer's business (`frames.FramePreparer`, through `PairStage`):
the pipeline fuses the 8-bit images it is given, at their size.

`PipelineConfig.paper()` (fusion mode `imvf`) reproduces the reference implementation number
for number (docs/algorithm.md); the default, `imvf-contrast`, runs the same passes and then
guards every thermal target's contrast, mask or not (docs/thermal_contrast.md); other settings
trade exactness for video use.

A call, step by step (`fuse_batch`): `_load` checks and stacks the inputs, makes the classical
thermal mask on the host where the mask source needs it, and uploads everything in one copy;
`_mask_probability` runs the SOS network on the device and combines; the stream's mask filter
(smoothing) and `_fusion_mask` follow; `_decode` runs the autoencoder and the strategy through
the backend and, for `imvf-contrast`, guards the thermal contrast; `_output_images` scales to
8 bit; `_finish` checks that the output is finite and brings what was asked for back in one
copy. Between the upload and the decoder's output nothing waits for the host.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch

from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder
from sosmaskfuse_core.models.sos_hrnet import SOSNet
from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker
from sosmaskfuse_core.thermal.stretch import StretchLimits

from . import preprocessing as pp
from .backends import Backend, choose_backend, make_backend
from .config import PipelineConfig
from .contrast_guard import guard_thermal_contrast, target_map
from .devices import check_precision, fusion_memory_budget, resolve_device, resolve_precision
from .health import count_non_finite, raise_if_non_finite
from .mask_source import needs_classical, needs_network, resolve_mask_source
from .stage_clock import StageClock
from .transfer import (
    MIN_SIZE,
    DeviceTransfer,
    check_request,
    check_sizes,
    mask_tensor,
    mask_to_float,
    stack,
    to_u8_tensor,
)

log = logging.getLogger(__name__)

__all__ = [
    "MIN_SIZE",
    "OUTPUTS",
    "FusionPipeline",
    "FusionResult",
    "MaskFilter",
    "PipelineConfig",
]

Image = Union[np.ndarray, torch.Tensor]
#: What `fuse_batch` can return (see FusionResult); callers ask only for what they use.
OUTPUTS = ("mask", "mask_u8", "fused", "raw", "decoded")
#: A stream's filter of the masks the pipeline computes: (probabilities N x 1 x H x W, thermal
#: luma N x 1 x H x W, both on the pipeline's device) -> probabilities (`PairStage` smooths).
MaskFilter = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: A classical thermal mask: 8-bit gray H x W -> probability H x W in [0, 1] (on the host).
ThermalMasker = Callable[[np.ndarray], np.ndarray]


@dataclass
class FusionResult:
    """One fused pair, as arrays (or tensors, for tensor inputs) of the input size.

    A field the caller did not ask for (`fuse_batch(outputs=...)`) is None.

    mask: float32 H x W in [0, 1], the mask the fusion used.
    mask_u8: uint8 H x W, round(255 * mask).
    fused: uint8 H x W (or H x W x 3 BGR with color_output).
    raw: float32 H x W, the output before scaling to 8 bits (guarded in `imvf-contrast`).
    decoded: float32 H x W, the decoder's output itself (the paper's IMV-F pass in the
        `imvf` modes): `raw` before the contrast guard.
    """

    mask: Image | None = None
    mask_u8: Image | None = None
    fused: Image | None = None
    raw: Image | None = None
    decoded: Image | None = None


@dataclass
class _Batch:
    """One call's inputs on the pipeline's device: N pairs of one size (`_load`)."""

    ir: torch.Tensor  # N x C x H x W uint8 (C = 1, 3 or 4)
    vis: torch.Tensor | None  # N x C x H x W uint8; None when only the mask is asked for
    ir_y: torch.Tensor  # N x 1 x H x W uint8 luma (ir itself when it is gray)
    vis_y: torch.Tensor | None  # the visible luma, likewise
    given: torch.Tensor | None  # masks given with the pairs, float N x 1 x H x W in [0, 1]
    classical: torch.Tensor | None  # the classical mask's probability, float N x 1 x H x W
    on_host: bool  # the inputs were NumPy arrays: the results go back as arrays

    @property
    def n(self) -> int:
        return int(self.ir.shape[0])


@dataclass
class _Evidence:
    """What a computed mask was made from: the network's probability, the classical mask."""

    network: torch.Tensor | None = None
    masks: list[torch.Tensor] = dataclasses.field(default_factory=list)


class FusionPipeline:
    """SOS mask + IMV-F fusion on one device. Thread-safe: one call runs at a time.

    backend: `torch`, `onnxruntime` (CPU fp32) or `auto` (`backends.choose_backend`);
    `backend_options` go to `TorchBackend` (channels_last, cuda_graphs). The backend runs its
    own copies of `autoencoder` and `sosnet`: the caller's modules are left as they are.
    thermal_masker: the classical mask (default `ThermalHotObjectMasker`), for the `thermal`
    and `ensemble` sources. memory_mb: the autoencoder pass's memory budget
    (`fusion_memory_mb`; 0 = auto, `devices.fusion_memory_budget`): a larger frame is fused in
    bands with the same output. On CUDA, NumPy inputs reach the device in one copy per call
    through a pinned buffer, the outputs asked for come back in one copy, and every network
    runs on the caller's current stream.
    """

    def __init__(
        self,
        autoencoder: IMVFAutoencoder,
        sosnet: SOSNet | None = None,
        *,
        config: PipelineConfig | None = None,
        device: str | torch.device = "auto",
        thermal_masker: ThermalMasker | None = None,
        backend: str = "torch",
        backend_options: dict | None = None,
        memory_mb: int = 0,
    ) -> None:
        self.device = resolve_device(device)
        config = config or PipelineConfig()
        network = "given" if sosnet is not None else "none"
        config = dataclasses.replace(
            config,
            mask_source=resolve_mask_source(config.mask_source, network),
            precision=resolve_precision(config.precision, self.device, backend),
        )
        check_precision(config.precision, self.device)
        self.backend: Backend = make_backend(
            backend, autoencoder, sosnet, self.device, config.precision, **(backend_options or {})
        )
        self.backend.memory_budget = fusion_memory_budget(self.device, memory_mb)
        self.thermal_masker: ThermalMasker = thermal_masker or ThermalHotObjectMasker()
        self.transfer = DeviceTransfer(self.device)
        self.clock = StageClock()  # the time of each stage; see stage_clock.py
        self._config = config
        self._lock = threading.Lock()

    # --- configuration ----------------------------------------------------------------------

    @property
    def config(self) -> PipelineConfig:
        return self._config

    @property
    def mask_source(self) -> str:
        """The mask source the pipeline runs (`auto` already resolved)."""
        return self._config.mask_source

    @property
    def autoencoder(self) -> IMVFAutoencoder:
        """The autoencoder the backend runs (its fp32 module)."""
        return self.backend.autoencoder

    @property
    def sosnet(self) -> SOSNet | None:
        """The SOS network the backend runs (its fp32 module), if any."""
        return self.backend.sosnet

    def update(self, **changes) -> PipelineConfig:
        """Change settings between frames (validated; a bad value raises and changes nothing)."""
        new = dataclasses.replace(self._config, **changes)
        new = dataclasses.replace(
            new, precision=resolve_precision(new.precision, self.device, self.backend.name)
        )
        check_precision(new.precision, self.device)
        choose_backend(self.backend.name, self.device, new.precision)  # e.g. ONNX is fp32 only
        if new.mask_source == "auto":
            raise ValueError("mask_source 'auto' is resolved when the pipeline is built")
        if needs_network(new.mask_source) and self.sosnet is None:
            raise ValueError(f"mask_source {new.mask_source!r} needs SOS network weights")
        with self._lock:
            self._config = new
        return new

    # --- public calls ---------------------------------------------------------------------------

    def __call__(
        self,
        thermal: Image,
        visible: Image,
        mask: Image | None = None,
        *,
        outputs: Collection[str] = OUTPUTS,
    ) -> FusionResult:
        return self.fuse_batch(
            [thermal], [visible], None if mask is None else [mask], outputs=outputs
        )[0]

    @torch.inference_mode()
    def fuse_batch(
        self,
        thermals: Sequence[Image],
        visibles: Sequence[Image],
        masks: Sequence[Image] | None = None,
        *,
        outputs: Collection[str] = OUTPUTS,
        mask_filter: MaskFilter | None = None,
    ) -> list[FusionResult]:
        """Fuse N same-sized pairs in one pass (the encoder sees 4N images at once).

        `outputs` names the FusionResult fields to fill (the others stay None). `mask_filter`
        sees the mask probabilities the pipeline computes (SOS network, classical mask; not
        the masks given), in pair order.
        """
        check_request(thermals, visibles, masks, outputs, OUTPUTS)
        clock = self.clock
        with self._lock:
            cfg = self._config
            with clock("load"):
                batch = self._load(thermals, visibles, masks, cfg)
                limits = self._stretch_limits(batch, cfg)
            prob, evidence = self._mask_probability(batch, cfg, limits)
            if batch.given is None and mask_filter is not None:
                with clock("mask smoothing"):
                    prob = mask_filter(prob, batch.ir_y)
            mask = pp.fusion_mask(prob, cfg.mask_threshold, cfg.quantize_mask)
            raw, decoded = self._decode(batch, mask, evidence, cfg, limits)
            with clock("output"):
                images = _output_images(raw, decoded, mask, batch, cfg, outputs)
                results = self._finish(images, raw, batch)
        clock.pairs_done(batch.n)
        return [FusionResult(**{k: v[i] for k, v in results.items()}) for i in range(batch.n)]

    @torch.inference_mode()
    def mask(self, thermal: Image) -> Image:
        """The mask probability (float32 H x W in [0, 1]) the pipeline makes of a thermal frame."""
        with self._lock:
            cfg = self._config
            batch = self._load([thermal], None, None, cfg)
            prob = self._mask_probability(batch, cfg, self._stretch_limits(batch, cfg))[0][0, 0]
        return self.transfer.download({"mask": prob})["mask"] if batch.on_host else prob

    # --- the steps of a call ---------------------------------------------------------------------

    def _load(
        self,
        thermals: Sequence[Image],
        visibles: Sequence[Image] | None,
        masks: Sequence[Image] | None,
        cfg: PipelineConfig,
    ) -> _Batch:
        """Check and stack the inputs, make the classical mask where it is needed, upload once."""
        ir = stack([to_u8_tensor(t, "thermal") for t in thermals], "thermal")
        vis = None
        if visibles is not None:
            vis = stack([to_u8_tensor(v, "visible") for v in visibles], "visible")
        given = None if masks is None else stack([mask_tensor(m) for m in masks], "mask")
        check_sizes(ir, vis, given, self.autoencoder.config.min_size)
        ir_y = classical = None
        if given is None and needs_classical(cfg.mask_source):
            ir_y = pp.luma_u8(ir)
            with self.clock("classical mask"):
                classical = self._classical_mask(ir_y)  # a host algorithm: before the upload
        send_luma = ir_y is not None and ir.shape[1] > 1  # computed once, for both sides
        send = [t for t in (ir, vis, given, classical) if t is not None]
        if send_luma:
            assert ir_y is not None
            send.append(ir_y)
        pieces = self.transfer.upload(send)
        ir = pieces.pop(0)
        vis = pieces.pop(0) if vis is not None else None
        given = mask_to_float(pieces.pop(0)) if given is not None else None
        classical = pieces.pop(0) if classical is not None else None
        ir_y = pieces.pop(0) if send_luma else pp.luma_u8(ir)
        vis_y = pp.luma_u8(vis) if vis is not None else None
        on_host = not isinstance(thermals[0], torch.Tensor)
        return _Batch(ir, vis, ir_y, vis_y, given, classical, on_host)

    def _classical_mask(self, ir_y: torch.Tensor) -> torch.Tensor:
        """The classical thermal mask of each gray frame (N x 1 x H x W float32, on the host)."""
        gray = ir_y[:, 0].cpu().numpy()  # a no-op for host frames
        probs = [np.asarray(self.thermal_masker(g), dtype=np.float32) for g in gray]
        return torch.from_numpy(np.stack(probs)[:, None])

    @staticmethod
    def _stretch_limits(batch: _Batch, cfg: PipelineConfig) -> StretchLimits | None:
        """The gain normaliser's limits of the thermal frames, once per call, if used."""
        stretches_sos_input = (
            batch.given is None and cfg.mask_input_stretch and needs_network(cfg.mask_source)
        )
        if stretches_sos_input or cfg.contrast_guard is not None:
            return cfg.thermal_stretch.limits(batch.ir_y)
        return None

    def _mask_probability(
        self, batch: _Batch, cfg: PipelineConfig, limits: StretchLimits | None
    ) -> tuple[torch.Tensor, _Evidence]:
        """The mask probability (N x 1 x H x W): given, network, classical or their mean.

        With what it was made from, for the guard's target map.
        """
        if batch.given is not None:
            return batch.given, _Evidence()
        source = cfg.mask_source
        if source == "topic":
            raise ValueError("mask_source 'topic' needs a mask with every pair")
        network = self._network_probability(batch, cfg, limits) if needs_network(source) else None
        classical = [batch.classical] if batch.classical is not None else []
        evidence = _Evidence(network, classical)
        if network is None:
            return classical[0], evidence
        if not classical:
            return network, evidence
        return (network + classical[0]) * 0.5, evidence  # ensemble: the mean of the two

    def _network_probability(
        self, batch: _Batch, cfg: PipelineConfig, limits: StretchLimits | None
    ) -> torch.Tensor:
        """The SOS network's probability at the image size."""
        h, w = batch.ir.shape[-2:]
        sos_size = cfg.sos_size or (max(32, w // 32 * 32), max(32, h // 32 * 32))
        ir = batch.ir
        with self.clock("sos network"):
            if cfg.mask_input_stretch:
                ir = cfg.thermal_stretch(ir, limits)
            logit = self.backend.sos(pp.sos_input(ir, sos_size), cfg.precision)
            return pp.logit_to_probability(logit, (h, w))

    def _decode(
        self,
        batch: _Batch,
        mask: torch.Tensor,
        evidence: _Evidence,
        cfg: PipelineConfig,
        limits: StretchLimits | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The output (fp32, guarded in `imvf-contrast`) and the decoder's own output.

        The backend's pass (encoder on the split images, the strategy in fp32, decoder); for
        `imvf-contrast` the contrast guard then floors every thermal target's contrast where
        the mask, or what it was made of, sees a target (no second network pass).
        """
        assert batch.vis_y is not None
        ir, vis = batch.ir_y.float(), batch.vis_y.float()
        with self.clock("autoencoder"):
            decoded = self.backend.fuse(ir, vis, mask, cfg.mode, cfg.mu, cfg.precision)
        guard = cfg.contrast_guard
        if guard is None:
            return decoded, decoded
        assert limits is not None
        with self.clock("contrast guard"):
            targets = target_map([mask, *evidence.masks], evidence.network, guard)
            return guard_thermal_contrast(decoded, ir, targets, limits[1], guard), decoded

    def _finish(
        self, images: dict[str, torch.Tensor], raw: torch.Tensor, batch: _Batch
    ) -> dict[str, Image]:
        """Refuse a non-finite output; the images asked for, as arrays for host inputs.

        For host inputs the count of non-finite values travels back in the same packed copy
        as the images, so the check costs no extra wait for the device.
        """
        bad = count_non_finite(raw)
        if not batch.on_host:
            raise_if_non_finite(bad, raw[0].numel())
            return dict(images)
        arrays = self.transfer.download({**images, "_non_finite": bad})
        raise_if_non_finite(arrays.pop("_non_finite"), raw[0].numel())
        return dict(arrays)


# --- helpers of the steps ---------------------------------------------------------------------


def _output_images(
    raw: torch.Tensor,
    decoded: torch.Tensor,
    mask: torch.Tensor,
    batch: _Batch,
    cfg: PipelineConfig,
    outputs: Collection[str],
) -> dict[str, torch.Tensor]:
    """The images asked for, on the device: 8-bit fused (with chroma), masks, raw output.

    The paper's min-max stretch takes its limits from the decoder's output, so the guard changes
    the targets, not the whole image's stretch.
    """
    images: dict[str, torch.Tensor] = {}
    if "fused" in outputs:
        if cfg.output_scaling == "clip":
            fused = pp.clip_to_u8(raw)
        else:
            fused = pp.minmax_to_u8(raw, decoded)
        vis, vis_y = batch.vis, batch.vis_y
        assert vis is not None and vis_y is not None
        if cfg.color_output and vis.shape[1] >= 3:
            fused = pp.with_chroma(fused, vis, vis_y).permute(0, 2, 3, 1).contiguous()
        else:
            fused = fused[:, 0]
        images["fused"] = fused
    if "mask" in outputs:
        images["mask"] = mask[:, 0]
    if "mask_u8" in outputs:
        images["mask_u8"] = pp.quantize_mask(mask)[:, 0]
    if "raw" in outputs:
        images["raw"] = raw[:, 0]
    if "decoded" in outputs:
        images["decoded"] = decoded[:, 0]
    return images
