"""FusionPipeline on CUDA: the CPU's results, tensors already on the GPU, fp16/bf16 close to fp32.

Runs only where a CUDA device is present (skipped on CPU-only machines such as CI).
"""

import copy

import numpy as np
import pytest
import torch

from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"
)


def _pair(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(
        0, 256, (h, w, 3), dtype=np.uint8
    )


def _pipes(tiny_autoencoder, tiny_sosnet, **config):
    cfg = PipelineConfig(sos_size=(64, 64), **config)
    cpu = FusionPipeline(
        copy.deepcopy(tiny_autoencoder),
        copy.deepcopy(tiny_sosnet),
        device="cpu",
        config=PipelineConfig(sos_size=(64, 64)),
    )
    gpu = FusionPipeline(tiny_autoencoder, tiny_sosnet, device="cuda", config=cfg)
    return cpu, gpu


def test_cuda_matches_cpu(tiny_autoencoder, tiny_sosnet):
    cpu, gpu = _pipes(tiny_autoencoder, tiny_sosnet)
    ir, vis = _pair()
    a, b = cpu(ir, vis), gpu(ir, vis)
    assert isinstance(b.fused, np.ndarray)
    assert np.abs(a.mask - b.mask).max() < 1e-3
    assert np.abs(a.fused.astype(int) - b.fused.astype(int)).max() <= 1


def test_tensors_on_the_gpu_stay_there(tiny_autoencoder, tiny_sosnet):
    _, gpu = _pipes(tiny_autoencoder, tiny_sosnet)
    ir, vis = _pair()
    r = gpu(torch.from_numpy(ir).cuda(), torch.from_numpy(vis).cuda())
    assert r.fused.is_cuda and r.mask.is_cuda
    assert np.array_equal(r.fused.cpu().numpy(), gpu(ir, vis).fused)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precisions_stay_close_to_fp32(precision):
    from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder

    torch.manual_seed(0)
    small = IMVFAutoencoder(AutoencoderConfig(widths=(8, 16, 24, 32), stem_channels=4)).eval()
    ir, vis = _pair()
    mask = np.full(ir.shape, 128, np.uint8)
    a = FusionPipeline(small, device="cpu")(ir, vis, mask)
    b = FusionPipeline(small, device="cuda", config=PipelineConfig(precision=precision))(
        ir, vis, mask
    )
    assert np.abs(a.raw - b.raw).max() < 0.05 * np.abs(a.raw).max()
