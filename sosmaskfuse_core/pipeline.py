"""The fusion pipeline: thermal + visible frames in, salient-object mask and fused image out.

One `FusionPipeline` holds the networks on their device and is called per frame (or per
batch of same-sized frames). Inputs are NumPy arrays (uint8 or uint16, H x W or H x W x 3
in OpenCV's BGR order) or torch tensors (uint8, or float gray levels 0..255) already on
the pipeline's device; results come back in the same kind.

`PipelineConfig.paper()` reproduces the reference implementation number for number
(ALGORITHM.md); the other settings trade that exactness for video use (see PipelineConfig).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np
import torch

from . import preprocessing as pp
from .devices import autocast, check_precision, resolve_device
from .fusion import FUSION_MODES, fuse_levels
from .models.imvf_autoencoder import IMVFAutoencoder
from .models.sos_hrnet import SOSNet
from .thermal_agc import ThermalAGC

log = logging.getLogger(__name__)

Image = Union[np.ndarray, torch.Tensor]
MASK_SOURCES = ("sosnet", "thermal", "external")
# The encoder's fourth level is 1/8 of the input and its 3x3 reflection padding needs 2 pixels.
MIN_SIZE = 16
OUTPUT_SCALINGS = ("minmax", "clip")


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline computes. Defaults are the paper's (`PipelineConfig.paper()`).

    fusion_mode: `imvf` (the paper) or the mask-free baselines `sca` and `addition`.
    mu: IMV-F foreground weight of the thermal features (0..1).
    mask_threshold: None keeps the soft mask (as the paper's code); a value in (0, 1)
        binarises the mask probability at it.
    sos_size: (width, height) the SOS network sees; None runs it at the image size
        rounded down to a multiple of 32 (keeps the aspect ratio; cheaper for small frames).
    quantize_mask: round the soft mask to 8 bits, as the reference does by writing a PNG.
    output_scaling: `minmax` (the paper: per-image stretch, truncating cast) or `clip`
        (round and clip the decoder's gray levels: no frame-to-frame flicker on video).
    precision: fp32, fp16 (CUDA only) or bf16; the fusion strategy always runs in fp32.
    process_size: (width, height) to resize both inputs to before anything else; None = native.
    color_output: return BGR, the fused image as luma with the visible image's chroma.
    """

    fusion_mode: str = "imvf"
    mu: float = 0.8
    mask_threshold: float | None = None
    sos_size: tuple[int, int] | None = pp.PAPER_SOS_SIZE
    quantize_mask: bool = True
    output_scaling: str = "minmax"
    precision: str = "fp32"
    process_size: tuple[int, int] | None = None
    color_output: bool = False

    def __post_init__(self) -> None:
        if self.fusion_mode not in FUSION_MODES:
            raise ValueError(f"fusion_mode {self.fusion_mode!r}: expected one of {', '.join(FUSION_MODES)}")
        if not 0.0 <= float(self.mu) <= 1.0:
            raise ValueError(f"mu {self.mu}: must lie in [0, 1]")
        if self.mask_threshold is not None and not 0.0 < float(self.mask_threshold) < 1.0:
            raise ValueError(f"mask_threshold {self.mask_threshold}: must lie in (0, 1), or None for a soft mask")
        if self.output_scaling not in OUTPUT_SCALINGS:
            raise ValueError(f"output_scaling {self.output_scaling!r}: expected one of {', '.join(OUTPUT_SCALINGS)}")
        for name in ("sos_size", "process_size"):
            size = getattr(self, name)
            if size is not None and (len(size) != 2 or min(int(s) for s in size) < MIN_SIZE):
                raise ValueError(f"{name} {size}: expected (width, height), each at least {MIN_SIZE}")

    @classmethod
    def paper(cls, **overrides) -> "PipelineConfig":
        """The reference implementation's processing, exactly."""
        return cls(**overrides)

    def replace(self, **changes) -> "PipelineConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass
class FusionResult:
    """One fused pair. Arrays (or tensors, for tensor inputs) of the processed size.

    mask: float32 H x W in [0, 1], the mask the fusion used.
    mask_u8: uint8 H x W, round(255 * mask).
    fused: uint8 H x W (or H x W x 3 BGR with color_output).
    raw: float32 H x W, the decoder's output before scaling to 8 bits.
    """

    mask: Image
    mask_u8: Image
    fused: Image
    raw: Image


class FusionPipeline:
    """SOS mask + IMV-F fusion on one device. Thread-safe: one call runs at a time."""

    def __init__(
        self,
        autoencoder: IMVFAutoencoder,
        sosnet: SOSNet | None = None,
        *,
        config: PipelineConfig | None = None,
        device: str | torch.device = "auto",
        mask_source: str | None = None,
        thermal_masker: Callable[[np.ndarray], np.ndarray] | None = None,
        thermal_agc: ThermalAGC | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self._config = config or PipelineConfig()
        check_precision(self._config.precision, self.device)
        self.autoencoder = autoencoder.to(self.device).eval()
        self.sosnet = sosnet.to(self.device).eval() if sosnet is not None else None
        self.thermal_masker = thermal_masker
        self.thermal_agc = thermal_agc or ThermalAGC()
        if mask_source is None:
            mask_source = "sosnet" if sosnet is not None else ("thermal" if thermal_masker else "external")
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
        if source == "sosnet" and self.sosnet is None:
            raise ValueError("mask_source 'sosnet' needs SOS network weights")
        if source == "thermal" and self.thermal_masker is None:
            raise ValueError("mask_source 'thermal' needs a thermal masker")

    # --- public calls ---------------------------------------------------------------------------

    def __call__(self, thermal: Image, visible: Image, mask: Image | None = None) -> FusionResult:
        return self.fuse_batch([thermal], [visible], None if mask is None else [mask])[0]

    @torch.inference_mode()
    def fuse_batch(self, thermals: Sequence[Image], visibles: Sequence[Image],
                   masks: Sequence[Image] | None = None) -> list[FusionResult]:
        """Fuse N same-sized pairs in one pass (the encoder sees 4N images at once)."""
        if len(thermals) != len(visibles) or not thermals:
            raise ValueError(f"need as many thermal as visible images (got {len(thermals)} and {len(visibles)})")
        if masks is not None and len(masks) != len(thermals):
            raise ValueError(f"got {len(masks)} masks for {len(thermals)} pairs")
        as_numpy = not isinstance(thermals[0], torch.Tensor)
        with self._lock:
            cfg, source = self._config, self.mask_source
            ir = self._stack([self._thermal_u8(t) for t in thermals], "thermal")
            vis = self._stack([_to_u8_tensor(v, "visible", self.device) for v in visibles], "visible")
            if ir.shape[-2:] != vis.shape[-2:]:
                raise ValueError(f"thermal is {ir.shape[-1]}x{ir.shape[-2]} but visible is "
                                 f"{vis.shape[-1]}x{vis.shape[-2]} (width x height): register or resize first")
            ext = None
            if masks is not None:
                ext = self._stack([_mask_tensor(m, self.device) for m in masks], "mask")
                if ext.shape[-2:] != ir.shape[-2:]:
                    raise ValueError(f"mask is {ext.shape[-1]}x{ext.shape[-2]}, images are {ir.shape[-1]}x{ir.shape[-2]}")
            if cfg.process_size is not None:
                size_hw = (int(cfg.process_size[1]), int(cfg.process_size[0]))
                ir, vis = _resize_u8(ir, size_hw), _resize_u8(vis, size_hw)
                if ext is not None:
                    ext = pp.resize_bilinear(ext, size_hw)
            prob = ext if ext is not None else self._mask_probability(ir, cfg, source)
            mask = self._fusion_mask(prob, cfg)
            raw = self._fuse(pp.luma_u8(ir).float(), pp.luma_u8(vis).float(), mask, cfg)
            fused = pp.minmax_to_u8(raw) if cfg.output_scaling == "minmax" else pp.clip_to_u8(raw)
            if cfg.color_output and vis.shape[1] >= 3:
                fused = _with_chroma(fused, vis)
            mask_u8 = pp.quantize_mask(mask)
        return [self._result(mask[i], mask_u8[i], fused[i], raw[i], as_numpy) for i in range(len(thermals))]

    def mask(self, thermal: Image) -> Image:
        """The SOS probability map (float32 H x W in [0, 1]) of one thermal frame."""
        with torch.inference_mode(), self._lock:
            ir = self._thermal_u8(thermal)[None]
            prob = self._mask_probability(ir, self._config, self.mask_source)[0, 0]
        return prob.cpu().numpy() if not isinstance(thermal, torch.Tensor) else prob

    # --- stages -------------------------------------------------------------------------------

    def _thermal_u8(self, thermal: Image) -> torch.Tensor:
        if isinstance(thermal, np.ndarray) and thermal.dtype == np.uint16:
            thermal = self.thermal_agc.apply(thermal)
        return _to_u8_tensor(thermal, "thermal", self.device)

    def _stack(self, images: list[torch.Tensor], what: str) -> torch.Tensor:
        shapes = {tuple(t.shape) for t in images}
        if len(shapes) > 1:
            raise ValueError(f"a batch needs {what} images of one size and channel count, got {sorted(shapes)}")
        return torch.stack(images)

    def _mask_probability(self, ir_u8: torch.Tensor, cfg: PipelineConfig, source: str) -> torch.Tensor:
        size_hw = tuple(ir_u8.shape[-2:])
        if source == "sosnet":
            sos_size = cfg.sos_size or (max(32, size_hw[1] // 32 * 32), max(32, size_hw[0] // 32 * 32))
            x = pp.sos_input(ir_u8, sos_size)
            with autocast(self.device, cfg.precision):
                logit = self.sosnet(x)
            return pp.logit_to_probability(logit, size_hw)
        if source == "thermal":
            gray = pp.luma_u8(ir_u8)[:, 0].cpu().numpy()
            probs = [np.asarray(self.thermal_masker(g), dtype=np.float32) for g in gray]
            return torch.from_numpy(np.stack(probs)[:, None]).to(self.device)
        raise ValueError("mask_source 'external' needs a mask with every pair")

    @staticmethod
    def _fusion_mask(prob: torch.Tensor, cfg: PipelineConfig) -> torch.Tensor:
        if cfg.mask_threshold is not None:
            return (prob >= cfg.mask_threshold).float()
        if cfg.quantize_mask:
            return pp.quantize_mask(prob).float() / 255.0
        return prob.float().clamp(0.0, 1.0)

    def _fuse(self, ir: torch.Tensor, vis: torch.Tensor, mask: torch.Tensor, cfg: PipelineConfig) -> torch.Tensor:
        n = ir.shape[0]
        if cfg.fusion_mode == "imvf":
            batch = torch.cat([ir * mask, ir * (1.0 - mask), vis * mask, vis * (1.0 - mask)])
        else:
            batch = torch.cat([ir, vis])
        with autocast(self.device, cfg.precision):
            feats = self.autoencoder.encoder(batch)
        fused = fuse_levels(cfg.fusion_mode, feats, n, cfg.mu)
        with autocast(self.device, cfg.precision):
            out = self.autoencoder.decoder(fused)
        return out.float()

    @staticmethod
    def _result(mask, mask_u8, fused, raw, as_numpy: bool) -> FusionResult:
        fused = fused[0] if fused.shape[0] == 1 else fused.permute(1, 2, 0)
        out = FusionResult(mask=mask[0], mask_u8=mask_u8[0], fused=fused, raw=raw[0])
        if as_numpy:
            out = FusionResult(*(np.ascontiguousarray(t.cpu().numpy()) for t in
                                 (out.mask, out.mask_u8, out.fused, out.raw)))
        return out


# --- input conversion -----------------------------------------------------------------------

def _to_u8_tensor(image: Image, what: str, device: torch.device) -> torch.Tensor:
    """C x H x W uint8 on `device` from H x W or H x W x C (C = 1, 3, 4) arrays or tensors."""
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint16:
            image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
        if image.dtype != np.uint8:
            raise ValueError(f"{what} image: dtype {image.dtype} is not supported (uint8 or uint16)")
        t = torch.from_numpy(np.ascontiguousarray(image))
    elif isinstance(image, torch.Tensor):
        t = image
        if t.is_floating_point():
            if not torch.isfinite(t).all():
                raise ValueError(f"{what} image: contains NaN or infinite values")
            t = t.round().clamp(0, 255).to(torch.uint8)
        elif t.dtype != torch.uint8:
            raise ValueError(f"{what} tensor: dtype {t.dtype} is not supported (uint8 or float 0..255)")
    else:
        raise TypeError(f"{what} image: expected a NumPy array or a torch tensor, got {type(image).__name__}")
    if t.ndim == 2:
        t = t[None]
    elif t.ndim == 3 and t.shape[2] in (1, 3, 4):
        t = t.permute(2, 0, 1)
    else:
        raise ValueError(f"{what} image: shape {tuple(t.shape)} is not H x W or H x W x 1/3/4")
    if min(t.shape[1], t.shape[2]) < MIN_SIZE:
        raise ValueError(f"{what} image: {t.shape[2]}x{t.shape[1]} is smaller than the "
                         f"{MIN_SIZE}x{MIN_SIZE} the autoencoder needs")
    return t.to(device, non_blocking=True)


def _mask_tensor(mask: Image, device: torch.device) -> torch.Tensor:
    """1 x H x W float mask in [0, 1]: uint8 masks are read as 0..255, floats as 0..1."""
    t = torch.from_numpy(np.ascontiguousarray(mask)) if isinstance(mask, np.ndarray) else mask
    if t.ndim == 3:
        t = t[..., 0] if t.shape[-1] in (1, 3, 4) else t[0]
    if t.ndim != 2:
        raise ValueError(f"mask: shape {tuple(t.shape)} is not H x W")
    t = t.to(device)
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    if not torch.isfinite(t).all():
        raise ValueError("mask: contains NaN or infinite values")
    return t.clamp(0.0, 1.0)[None]


def _resize_u8(x: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size_hw:
        return x
    y = torch.nn.functional.interpolate(x.float(), size=size_hw, mode="bilinear", align_corners=False,
                                        antialias=size_hw[0] < x.shape[-2])
    return y.round().clamp(0, 255).to(torch.uint8)


def _with_chroma(fused: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """BGR image whose luma is `fused` and whose chroma (B-Y, G-Y, R-Y) is the visible image's."""
    bgr = visible[:, :3].float()
    y = pp.luma_u8(visible).float()
    return (bgr + (fused.float() - y)).round().clamp(0, 255).to(torch.uint8)

