"""Host <-> device traffic of the pipeline: input checks, one upload per call, one copy back.

`to_u8_tensor` and `mask_tensor` check and view the caller's images as C x H x W tensors where
they are (NumPy arrays become CPU tensors without a copy). `DeviceTransfer` is the only way the
pipeline moves data: `upload` sends every CPU tensor of a call to a CUDA device in one copy
through a reused pinned buffer, `download` brings a set of device tensors back as NumPy arrays
in one packed copy. On the CPU both are no-ops; both count their calls everywhere, so tests on
the CPU check the one-upload, one-download property of the GPU path.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Union

import numpy as np
import torch

Image = Union[np.ndarray, torch.Tensor]
# The encoder's fourth level is 1/8 of the input and its 3x3 reflection padding needs 2 pixels.
MIN_SIZE = 16
_ALIGN = 64  # bytes: every piece of a packed buffer starts on a cache line


def to_u8_tensor(image: Image, what: str) -> torch.Tensor:
    """C x H x W uint8 from H x W or H x W x C (C = 1, 3, 4) arrays or tensors, where it is."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            counts = (
                "; raw thermal counts go through the stream's gain control first "
                "(PairStage / FramePreparer with encoding mono16, or ThermalAGC)"
                if image.dtype == np.uint16 or image.dtype == np.float32
                else ""
            )
            raise ValueError(
                f"{what} image: dtype {image.dtype} is not supported (8-bit gray levels{counts})"
            )
        t = torch.from_numpy(np.ascontiguousarray(image))
    elif isinstance(image, torch.Tensor):
        t = image
        if t.is_floating_point():
            if not torch.isfinite(t).all():
                raise ValueError(f"{what} image: contains NaN or infinite values")
            t = t.round().clamp(0, 255).to(torch.uint8)
        elif t.dtype != torch.uint8:
            raise ValueError(
                f"{what} tensor: dtype {t.dtype} is not supported (uint8 or float 0..255)"
            )
    else:
        raise TypeError(
            f"{what} image: expected a NumPy array or a torch tensor, got {type(image).__name__}"
        )
    if t.ndim == 2:
        t = t[None]
    elif t.ndim == 3 and t.shape[2] in (1, 3, 4):
        t = t.permute(2, 0, 1)
    else:
        raise ValueError(f"{what} image: shape {tuple(t.shape)} is not H x W or H x W x 1/3/4")
    if min(t.shape[1], t.shape[2]) < MIN_SIZE:
        raise ValueError(
            f"{what} image: {t.shape[2]}x{t.shape[1]} is smaller than the "
            f"{MIN_SIZE}x{MIN_SIZE} the autoencoder needs"
        )
    return t


def mask_tensor(mask: Image) -> torch.Tensor:
    """1 x H x W mask where it is: uint8 (0..255) as is, other dtypes as float32 (0..1), checked.

    `mask_to_float` turns it into the float mask in [0, 1] once it is on the device.
    """
    t = torch.from_numpy(np.ascontiguousarray(mask)) if isinstance(mask, np.ndarray) else mask
    if t.ndim == 3:
        t = t[..., 0] if t.shape[-1] in (1, 3, 4) else t[0]
    if t.ndim != 2:
        raise ValueError(f"mask: shape {tuple(t.shape)} is not H x W")
    if t.dtype != torch.uint8:
        t = t.float()
        if not torch.isfinite(t).all():
            raise ValueError("mask: contains NaN or infinite values")
    return t[None]


def mask_to_float(t: torch.Tensor) -> torch.Tensor:
    """A `mask_tensor` result as float32 in [0, 1]."""
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    return t.clamp(0.0, 1.0)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


class DeviceTransfer:
    """Moves a call's tensors between the host and one device, one copy each way.

    Tensors already on the device pass through; on a CPU device everything passes through.
    `uploads` and `downloads` count the calls that carried host inputs or asked for results
    (on every device). Not thread-safe on its own: the pipeline calls it under its lock.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._pinned: torch.Tensor | None = None
        self._done: torch.cuda.Event | None = None  # the last copy out of the pinned buffer
        self.uploads = 0  # calls that moved host tensors towards the device
        self.downloads = 0  # calls that brought device tensors back as arrays

    def upload(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The tensors on the device, in order; the CPU ones arrive through one copy."""
        host = [i for i, t in enumerate(tensors) if t.device.type == "cpu"]
        if host:
            self.uploads += 1
        if self.device.type != "cuda":
            return [t.to(self.device) for t in tensors]
        out = [t if t.device == self.device else t.to(self.device) for t in tensors]
        if not host:
            return out
        offsets, total = [], 0
        for i in host:
            offsets.append(total)
            total += _padded(_nbytes(tensors[i]))
        staging = self._staging(total)
        for i, offset in zip(host, offsets):
            t = tensors[i]  # copy_ reads any strides: the one host copy, into pinned memory
            staging[offset : offset + _nbytes(t)].view(t.dtype).view(t.shape).copy_(t)
        on_device = staging[:total].to(self.device, non_blocking=True)
        self._done = torch.cuda.Event()
        self._done.record()
        for i, offset in zip(host, offsets):
            t = tensors[i]
            out[i] = on_device[offset : offset + _nbytes(t)].view(t.dtype).view(t.shape)
        return out

    def _staging(self, nbytes: int) -> torch.Tensor:
        if self._done is not None:
            self._done.synchronize()  # the previous copy has left the buffer
        if self._pinned is None or self._pinned.numel() < nbytes:
            self._pinned = torch.empty(_padded(nbytes), dtype=torch.uint8, pin_memory=True)
        return self._pinned

    def download(self, tensors: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The tensors as NumPy arrays; from a CUDA device in one packed device -> host copy.

        The arrays own fresh memory (never a buffer the next call reuses).
        """
        if not tensors:
            return {}
        self.downloads += 1
        first = next(iter(tensors.values()))
        if first.device.type != "cuda":
            return {k: v.numpy() for k, v in tensors.items()}
        # the widest dtypes first, so every piece stays aligned to its element size
        order = sorted(tensors, key=lambda k: -tensors[k].element_size())
        flat = torch.cat([tensors[k].contiguous().view(-1).view(torch.uint8) for k in order])
        host = flat.cpu().numpy()
        out, offset = {}, 0
        for k in order:
            t = tensors[k]
            n = _nbytes(t)
            dtype = torch.empty((), dtype=t.dtype).numpy().dtype
            out[k] = host[offset : offset + n].view(dtype).reshape(tuple(t.shape))
            offset += n
        return out


# --- checks of a call's inputs ----------------------------------------------------------------


def check_request(
    thermals: Sequence[Image],
    visibles: Sequence[Image],
    masks: Sequence[Image] | None,
    outputs: Collection[str],
    known: Collection[str],
) -> None:
    """ValueError for outputs not `known`, or image and mask lists that do not match."""
    unknown = set(outputs) - set(known)
    if unknown:
        raise ValueError(f"unknown outputs {sorted(unknown)}; expected some of {', '.join(known)}")
    if len(thermals) != len(visibles) or not thermals:
        raise ValueError(
            f"need as many thermal as visible images (got {len(thermals)} and {len(visibles)})"
        )
    if masks is not None and len(masks) != len(thermals):
        raise ValueError(f"got {len(masks)} masks for {len(thermals)} pairs")


def stack(images: list[torch.Tensor], what: str) -> torch.Tensor:
    """One N x C x H x W batch of C x H x W images (ValueError when they differ in shape)."""
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) > 1:
        raise ValueError(
            f"a batch needs {what} images of one size and channel count, got {sorted(shapes)}"
        )
    return torch.stack(images)


def check_sizes(
    ir: torch.Tensor, vis: torch.Tensor | None, mask: torch.Tensor | None, min_size: int
) -> None:
    """ValueError for images under the network's minimum or of sizes that do not match."""
    if min(ir.shape[-2:]) < min_size:
        raise ValueError(
            f"images are {ir.shape[-1]}x{ir.shape[-2]}, smaller than the {min_size}x{min_size} "
            "this autoencoder needs"
        )
    if vis is not None and ir.shape[-2:] != vis.shape[-2:]:
        raise ValueError(
            f"thermal is {ir.shape[-1]}x{ir.shape[-2]} but visible is "
            f"{vis.shape[-1]}x{vis.shape[-2]} (width x height): register or resize first"
        )
    if mask is not None and mask.shape[-2:] != ir.shape[-2:]:
        raise ValueError(
            f"mask is {mask.shape[-1]}x{mask.shape[-2]}, images are {ir.shape[-1]}x{ir.shape[-2]}"
        )
