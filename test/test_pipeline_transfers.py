"""The GPU data path, checked on the CPU: one upload and one download per call, no host waits.

`DeviceTransfer` counts its calls on every device, and a torch function mode records every
operation that reads a tensor's values on the host (`.cpu()`, `.numpy()`, `.item()`, `bool()`,
`float()`, an explicit device move). Between the upload and the decoder's output (the backend's
`fuse` returning) none may happen, whatever the mask source and with a processing size: on
CUDA each of those would be a synchronisation that stalls the GPU between the SOS network and
the autoencoder. The classical mask is a host algorithm, so it must be made before the upload.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from sosmaskfuse_core.pipeline import FramePreparer, FusionPipeline, PairStage, PipelineConfig
from sosmaskfuse_core.pipeline.pair_stage import Frame
from sosmaskfuse_core.thermal.temporal_mask import MaskSmoother

HOST_READS = {"cpu", "numpy", "item", "tolist", "__bool__", "__float__", "__int__", "__index__"}


def _moves_device(args, kwargs) -> bool:
    """Whether a `Tensor.to` call names a device (a move between host and device)."""
    return any(isinstance(a, (torch.device, str)) for a in (*args[1:], *kwargs.values()))


class HostReads(TorchFunctionMode):
    """Records host reads while `armed`."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if self.armed and (name in HOST_READS or (name == "to" and _moves_device(args, kwargs))):
            self.seen.append(name)
        return func(*args, **kwargs)


def _instrument(pipe: FusionPipeline, monkeypatch) -> HostReads:
    """Arm the recorder when the upload returns, disarm it when the backend's fuse returns."""
    reads = HostReads()
    upload, fuse = pipe.transfer.upload, pipe.backend.fuse

    def armed_upload(tensors):
        out = upload(tensors)
        reads.armed = True
        return out

    def disarming_fuse(*args, **kwargs):
        out = fuse(*args, **kwargs)
        reads.armed = False
        return out

    monkeypatch.setattr(pipe.transfer, "upload", armed_upload)
    monkeypatch.setattr(pipe.backend, "fuse", disarming_fuse)
    return reads


def _pairs(n=2, h=48, w=64):
    rng = np.random.default_rng(0)
    ir = [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(n)]
    vis = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    masks = [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(n)]
    return ir, vis, masks


@pytest.mark.parametrize("source", ["sosnet", "thermal", "ensemble", "topic"])
@pytest.mark.parametrize("mode", ["imvf", "imvf-contrast"])
def test_one_upload_one_download_and_no_host_wait_until_decoded(
    source, mode, tiny_autoencoder, tiny_sosnet, monkeypatch
):
    config = PipelineConfig(
        mask_source=source, fusion_mode=mode, sos_size=(64, 64), output_scaling="clip"
    )
    pipe = FusionPipeline(tiny_autoencoder, tiny_sosnet, device="cpu", config=config)
    smoother = MaskSmoother()
    ir, vis, masks = _pairs()
    reads = _instrument(pipe, monkeypatch)
    for call in range(2):  # the second call smooths against the first
        with reads:
            pipe.fuse_batch(
                ir,
                vis,
                masks if source == "topic" else None,
                outputs=("fused", "mask_u8"),
                mask_filter=smoother.update_batch,
            )
        assert (pipe.transfer.uploads, pipe.transfer.downloads) == (call + 1, call + 1)
        assert reads.seen == [], f"host reads between upload and decoder: {reads.seen}"


def test_the_stage_with_a_processing_size_moves_each_image_once(
    tiny_autoencoder, tiny_sosnet, monkeypatch
):
    config = PipelineConfig(mask_source="ensemble", sos_size=(64, 64), output_scaling="clip")
    pipe = FusionPipeline(tiny_autoencoder, tiny_sosnet, device="cpu", config=config)
    stage = PairStage(pipe, FramePreparer(size=(64, 48)), mask_smoothing=0.6)
    reads = _instrument(pipe, monkeypatch)
    rng = np.random.default_rng(1)
    thermal = Frame((rng.integers(7000, 9000, (96, 128))).astype(np.uint16), "mono16")
    visible = Frame(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), "bgr8")
    with reads:
        out = stage(thermal, visible)
    assert out.fused.shape == (48, 64)  # resized once, on the host, before the upload
    assert (pipe.transfer.uploads, pipe.transfer.downloads) == (1, 1)
    assert reads.seen == []


def test_the_recorder_sees_a_host_read(tiny_autoencoder, monkeypatch):
    """The check itself: a host read planted in the backend is caught."""
    pipe = FusionPipeline(
        tiny_autoencoder, device="cpu", config=PipelineConfig(mask_source="thermal")
    )
    reads = _instrument(pipe, monkeypatch)
    encode = pipe.backend.encode

    def leaky_encode(batch, precision):
        float(batch.mean())  # what a careless statistic would do
        return encode(batch, precision)

    monkeypatch.setattr(pipe.backend, "encode", leaky_encode)
    ir, vis, _ = _pairs(1)
    with reads:
        pipe(ir[0], vis[0])
    assert "__float__" in reads.seen
