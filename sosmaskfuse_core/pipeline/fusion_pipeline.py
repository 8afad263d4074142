"""The fusion pipeline: thermal + visible frames in, salient-object mask and fused image out.

One `FusionPipeline` holds the networks on their device and is called per frame (or per
batch of same-sized frames). Inputs are NumPy arrays (uint8, or uint16 thermal counts; H x W
or H x W x 3 in OpenCV's BGR order) or torch tensors (uint8, or float gray levels 0..255)
already on the pipeline's device; results come back in the same kind.

`PipelineConfig.paper()` (fusion mode `imvf`) reproduces the reference implementation number
for number (docs/algorithm.md); the default, `imvf-contrast`, runs the same passes and then
keeps the thermal targets' contrast (docs/thermal_contrast.md); other settings trade
exactness for video use.
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
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.thermal.agc import ThermalAGC

from . import preprocessing as pp
from .backends import make_backend
from .devices import check_precision, resolve_device
from .health import check_finite
from .thermal_contrast import (
    ContrastCarryConfig,
    carry_thermal_contrast,
    feature_strategy,
)
from .transfer import MIN_SIZE, Uploader, download, mask_tensor, mask_to_float, to_u8_tensor

log = logging.getLogger(__name__)

Image = Union[np.ndarray, torch.Tensor]
#: The mask sources a pipeline can run: `topic` means the caller supplies a mask with every pair.
MASK_SOURCES = tuple(s for s in table.MASK_SOURCES if s != "auto")
#: What `fuse_batch` can return (see FusionResult); callers ask only for what they use.
OUTPUTS = ("mask", "mask_u8", "fused", "raw")
#: A stream's filter of the masks the pipeline computes: (probabilities N x 1 x H x W, thermal
#: luma N x 1 x H x W, both on the pipeline's device) -> probabilities (`PairStage` smooths).
MaskFilter = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline computes; `PipelineConfig.paper()` is the paper's.

    User-facing fields take their defaults and checks from the settings table
    (`sosmaskfuse_core.settings.table`), so the default fusion mode is `imvf-contrast`.

    fusion_mode: `imvf-contrast` (IMV-F, then each thermal target's gain-normalised contrast
        carried onto the fused local background: `thermal_contrast`), `imvf` (the paper) or
        the mask-free baselines `sca` and `addition`.
    contrast: the settings of `imvf-contrast` (`ContrastCarryConfig`).
    mu: IMV-F foreground weight of the thermal features (0..1).
    mask_threshold: None keeps the soft mask (as the paper's code); a value in (0, 1)
        binarises the mask probability at it.
    mask_input_stretch: the SOS network sees the thermal frame through `contrast.stretch`
        (the gain normaliser), so its mask is the same whatever the camera's gain and
        offset; False = the paper's input.
    sos_size: (width, height) the SOS network sees; None runs it at the image size
        rounded down to a multiple of 32 (keeps the aspect ratio; cheaper for small frames).
    quantize_mask: round the soft mask to 8 bits, as the reference does by writing a PNG.
    output_scaling: `minmax` (the paper: per-image stretch, truncating cast) or `clip`
        (round and clip the decoder's gray levels: no frame-to-frame flicker on video).
    precision: fp32, fp16 (CUDA only) or bf16; the fusion strategy always runs in fp32.
    process_size: (width, height) to resize both inputs to before anything else; None = native.
    color_output: return BGR, the fused image as luma with the visible image's chroma.
    """

    fusion_mode: str = table.default("fusion_mode")
    mu: float = table.default("mu")
    mask_threshold: float | None = table.default("mask_threshold")
    mask_input_stretch: bool = table.default("mask_input_stretch")
    sos_size: tuple[int, int] | None = pp.PAPER_SOS_SIZE
    quantize_mask: bool = True
    output_scaling: str = table.default("output_scaling")
    precision: str = table.default("precision")
    process_size: tuple[int, int] | None = None
    color_output: bool = table.default("color_output")
    contrast: ContrastCarryConfig = dataclasses.field(default_factory=ContrastCarryConfig)

    @property
    def carries_contrast(self) -> bool:
        """Whether the mode carries the thermal contrast after the decoder (`imvf-contrast`)."""
        return feature_strategy(self.fusion_mode) != self.fusion_mode

    @classmethod
    def paper(cls, **changes) -> PipelineConfig:
        """The reference implementation's settings (IMV-F, the per-frame min-max stretch)."""
        paper = {"fusion_mode": "imvf", "output_scaling": "minmax", "mask_input_stretch": False}
        return cls(**{**paper, **changes})

    def __post_init__(self) -> None:
        for name in (
            "fusion_mode",
            "mu",
            "mask_threshold",
            "mask_input_stretch",
            "output_scaling",
            "precision",
            "color_output",
        ):
            table.by_name(name).check(getattr(self, name))
        for name in ("sos_size", "process_size"):
            size = getattr(self, name)
            if size is not None and (len(size) != 2 or min(int(s) for s in size) < MIN_SIZE):
                raise ValueError(
                    f"{name} {size}: expected (width, height), each at least {MIN_SIZE}"
                )

    def replace(self, **changes) -> PipelineConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass
class FusionResult:
    """One fused pair, as arrays (or tensors, for tensor inputs) of the processed size.

    A field the caller did not ask for (`fuse_batch(outputs=...)`) is None.

    mask: float32 H x W in [0, 1], the mask the fusion used.
    mask_u8: uint8 H x W, round(255 * mask).
    fused: uint8 H x W (or H x W x 3 BGR with color_output).
    raw: float32 H x W, the decoder's output before scaling to 8 bits.
    """

    mask: Image | None = None
    mask_u8: Image | None = None
    fused: Image | None = None
    raw: Image | None = None


class FusionPipeline:
    """SOS mask + IMV-F fusion on one device. Thread-safe: one call runs at a time.

    backend: `torch`, `onnxruntime` (CPU fp32) or `auto` (`backends.choose_backend`);
    `backend_options` go to `TorchBackend` (channels_last, cuda_graphs). On CUDA, NumPy inputs
    reach the device in one copy per call through a pinned buffer, the outputs asked for come
    back in one copy, and every network runs on the caller's current stream.
    """

    def __init__(
        self,
        autoencoder: IMVFAutoencoder,
        sosnet: SOSNet | None = None,
        *,
        config: PipelineConfig | None = None,
        device: str | torch.device = "auto",
        mask_source: str | None = None,
        thermal_masker: Callable[[np.ndarray], np.ndarray] | None = None,
        backend: str = "torch",
        backend_options: dict | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self._config = config or PipelineConfig()
        check_precision(self._config.precision, self.device)
        self.autoencoder = autoencoder.to(self.device).eval()
        self.sosnet = sosnet.to(self.device).eval() if sosnet is not None else None
        self.backend = make_backend(
            backend,
            self.autoencoder,
            self.sosnet,
            self.device,
            self._config.precision,
            **(backend_options or {}),
        )
        self._uploader = Uploader(self.device)
        self.thermal_masker = thermal_masker
        self.thermal_agc = (
            ThermalAGC()
        )  # uint16 arrays given to the Python API; streams bring their own
        if mask_source is None:
            mask_source = (
                "sosnet" if sosnet is not None else ("thermal" if thermal_masker else "topic")
            )
        self.mask_source = mask_source
        self._check_mask_source(mask_source)
        self._lock = threading.Lock()

    # --- configuration ----------------------------------------------------------------------

    @property
    def config(self) -> PipelineConfig:
        return self._config

    def update(self, **changes) -> PipelineConfig:
        """Change settings between frames (validated; a bad value raises and changes nothing)."""
        mask_source = changes.pop("mask_source", None)
        new = self._config.replace(**changes)
        check_precision(new.precision, self.device)
        if self.backend.name == "onnxruntime" and new.precision != "fp32":
            raise ValueError(f"backend 'onnxruntime' runs fp32 only (asked: {new.precision})")
        if mask_source is not None:
            self._check_mask_source(mask_source)
        with self._lock:
            self._config = new
            if mask_source is not None:
                self.mask_source = mask_source
        return new

    def _check_mask_source(self, source: str) -> None:
        if source not in MASK_SOURCES:
            raise ValueError(f"mask_source {source!r}: expected one of {', '.join(MASK_SOURCES)}")
        if source in ("sosnet", "ensemble") and self.sosnet is None:
            raise ValueError(f"mask_source {source!r} needs SOS network weights")
        if source in ("thermal", "ensemble") and self.thermal_masker is None:
            raise ValueError(f"mask_source {source!r} needs a thermal masker")

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

        `outputs` names the FusionResult fields to fill (the others stay None): each one costs
        a device -> host copy for NumPy inputs. `mask_filter` sees the mask probabilities the
        pipeline computes (SOS network, classical mask; not the masks given), in pair order.
        """
        unknown = set(outputs) - set(OUTPUTS)
        if unknown:
            raise ValueError(
                f"unknown outputs {sorted(unknown)}; expected some of {', '.join(OUTPUTS)}"
            )
        if len(thermals) != len(visibles) or not thermals:
            raise ValueError(
                f"need as many thermal as visible images (got {len(thermals)} and {len(visibles)})"
            )
        if masks is not None and len(masks) != len(thermals):
            raise ValueError(f"got {len(masks)} masks for {len(thermals)} pairs")
        as_numpy = not isinstance(thermals[0], torch.Tensor)
        with self._lock:
            cfg, source = self._config, self.mask_source
            ir = self._stack([self._thermal_u8(t) for t in thermals], "thermal")
            vis = self._stack([to_u8_tensor(v, "visible") for v in visibles], "visible")
            given = None
            if masks is not None:
                given = self._stack([mask_tensor(m) for m in masks], "mask")
            _check_sizes(ir, vis, given)
            computed = given is None
            if (
                given is None
                and source == "thermal"
                and cfg.process_size is None
                and ir.device != self.device
            ):  # the classical mask of host frames is made on the host, before the upload
                given = self._mask_probability(ir, pp.luma_u8(ir), cfg, source)
            pieces = self._uploader.upload([ir, vis] + ([given] if given is not None else []))
            ir, vis = pieces[:2]
            given = mask_to_float(pieces[2]) if given is not None else None
            if cfg.process_size is not None:
                size_hw = (int(cfg.process_size[1]), int(cfg.process_size[0]))
                ir, vis = _resize_u8(ir, size_hw), _resize_u8(vis, size_hw)
                if given is not None:
                    given = pp.resize_bilinear(given, size_hw)
            ir_y, vis_y = pp.luma_u8(ir), pp.luma_u8(vis)
            ir_limits = None  # the gain normaliser's limits of this thermal frame, computed once
            stretches_sos_input = given is None and cfg.mask_input_stretch and source != "thermal"
            if stretches_sos_input or cfg.carries_contrast:
                ir_limits = cfg.contrast.stretch.limits(ir_y)
            prob = (
                given
                if given is not None
                else self._mask_probability(ir, ir_y, cfg, source, ir_limits)
            )
            if computed and mask_filter is not None:
                prob = mask_filter(prob, ir_y)
            mask = self._fusion_mask(prob, cfg)
            raw, limits = self._fuse(ir_y.float(), vis_y.float(), mask, cfg, ir_limits)
            check_finite(raw)  # NaN would be stretched into a plausible-looking black frame
            out: dict[str, torch.Tensor] = {"mask": mask[:, 0], "raw": raw[:, 0]}
            if "fused" in outputs:
                if cfg.output_scaling == "clip":
                    fused = pp.clip_to_u8(raw)
                else:
                    fused = pp.minmax_to_u8(raw, limits)
                if cfg.color_output and vis.shape[1] >= 3:
                    fused = _with_chroma(fused, vis, vis_y).permute(0, 2, 3, 1).contiguous()
                else:
                    fused = fused[:, 0]
                out["fused"] = fused
            if "mask_u8" in outputs:
                out["mask_u8"] = pp.quantize_mask(mask)[:, 0]
            wanted = {k: v for k, v in out.items() if k in outputs}
            if as_numpy:
                wanted = download(wanted)  # one device -> host copy for the whole batch
        return [FusionResult(**{k: v[i] for k, v in wanted.items()}) for i in range(len(thermals))]

    def mask(self, thermal: Image) -> Image:
        """The SOS probability map (float32 H x W in [0, 1]) of one thermal frame."""
        with torch.inference_mode(), self._lock:
            ir = self._uploader.upload([self._thermal_u8(thermal)[None]])[0]
            prob = self._mask_probability(ir, pp.luma_u8(ir), self._config, self.mask_source)[0, 0]
        return prob.cpu().numpy() if not isinstance(thermal, torch.Tensor) else prob

    # --- stages -------------------------------------------------------------------------------

    def _thermal_u8(self, thermal: Image) -> torch.Tensor:
        if isinstance(thermal, np.ndarray) and thermal.dtype == np.uint16:
            thermal = self.thermal_agc.apply(thermal)
        return to_u8_tensor(thermal, "thermal")

    @staticmethod
    def _stack(images: list[torch.Tensor], what: str) -> torch.Tensor:
        shapes = {tuple(t.shape) for t in images}
        if len(shapes) > 1:
            raise ValueError(
                f"a batch needs {what} images of one size and channel count, got {sorted(shapes)}"
            )
        return torch.stack(images)

    def _mask_probability(
        self,
        ir_u8: torch.Tensor,
        ir_y: torch.Tensor,
        cfg: PipelineConfig,
        source: str,
        limits: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        size_hw = tuple(ir_u8.shape[-2:])
        if source == "ensemble":  # the mean of the network's and the classical probability
            network = self._mask_probability(ir_u8, ir_y, cfg, "sosnet", limits)
            return (network + self._mask_probability(ir_u8, ir_y, cfg, "thermal")) * 0.5
        if source == "sosnet":
            sos_size = cfg.sos_size or (
                max(32, size_hw[1] // 32 * 32),
                max(32, size_hw[0] // 32 * 32),
            )
            if cfg.mask_input_stretch:  # limits of the luma (the gray frame itself, usually)
                limits = limits if limits is not None else cfg.contrast.stretch.limits(ir_y)
                ir_in = cfg.contrast.stretch(ir_u8, limits)
            else:
                ir_in = ir_u8
            logit = self.backend.sos(pp.sos_input(ir_in, sos_size), cfg.precision)
            return pp.logit_to_probability(logit, size_hw)
        if source == "thermal":
            gray = ir_y[:, 0].cpu().numpy()
            probs = [np.asarray(self.thermal_masker(g), dtype=np.float32) for g in gray]
            return torch.from_numpy(np.stack(probs)[:, None]).to(ir_y.device)
        raise ValueError("mask_source 'topic' needs a mask with every pair")

    @staticmethod
    def _fusion_mask(prob: torch.Tensor, cfg: PipelineConfig) -> torch.Tensor:
        if cfg.mask_threshold is not None:
            return (prob >= cfg.mask_threshold).float()
        if cfg.quantize_mask:
            return pp.quantize_mask(prob).float() / 255.0
        return prob.float().clamp(0.0, 1.0)

    def _fuse(
        self,
        ir: torch.Tensor,
        vis: torch.Tensor,
        mask: torch.Tensor,
        cfg: PipelineConfig,
        ir_limits: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The raw output (fp32), and the image whose range `minmax` uses (None: its own).

        Encoder on the split images, the strategy in fp32, decoder; for `imvf-contrast` the
        paper's output, then the thermal contrast carried onto it (no second network pass).
        """
        out = self.backend.fuse(
            ir, vis, mask, feature_strategy(cfg.fusion_mode), cfg.mu, cfg.precision
        )
        if not cfg.carries_contrast:
            return out, None
        gain = ir_limits[1] if ir_limits is not None else None
        carried = carry_thermal_contrast(out, ir, vis, mask, cfg.mu, cfg.contrast, gain)
        return carried, (out if cfg.contrast.paper_range else None)


# --- input conversion -----------------------------------------------------------------------


def _check_sizes(ir: torch.Tensor, vis: torch.Tensor, mask: torch.Tensor | None) -> None:
    if ir.shape[-2:] != vis.shape[-2:]:
        raise ValueError(
            f"thermal is {ir.shape[-1]}x{ir.shape[-2]} but visible is "
            f"{vis.shape[-1]}x{vis.shape[-2]} (width x height): register or resize first"
        )
    if mask is not None and mask.shape[-2:] != ir.shape[-2:]:
        raise ValueError(
            f"mask is {mask.shape[-1]}x{mask.shape[-2]}, images are {ir.shape[-1]}x{ir.shape[-2]}"
        )


def _resize_u8(x: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size_hw:
        return x
    y = torch.nn.functional.interpolate(
        x.float(),
        size=size_hw,
        mode="bilinear",
        align_corners=False,
        antialias=size_hw[0] < x.shape[-2],
    )
    return y.round().clamp(0, 255).to(torch.uint8)


def _with_chroma(
    fused: torch.Tensor, visible: torch.Tensor, visible_y: torch.Tensor
) -> torch.Tensor:
    """BGR image whose luma is `fused` and whose chroma (B-Y, G-Y, R-Y) is the visible image's."""
    return (
        (visible[:, :3].float() + (fused.float() - visible_y.float()))
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
    )
