"""FusionPipeline on CUDA: CPU parity, GPU tensors, fp16/bf16, CUDA graphs, transfers, layout.

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


# --- the GPU path: CUDA graphs per size, one upload, one copy back, channels_last -------------


def _graph_pipes(autoencoder, sosnet=None, **config):
    eager = FusionPipeline(
        copy.deepcopy(autoencoder),
        copy.deepcopy(sosnet),
        device="cuda",
        config=PipelineConfig(sos_size=(64, 64), **config),
        backend_options={"cuda_graphs": False},
    )
    graphs = FusionPipeline(
        autoencoder, sosnet, device="cuda", config=PipelineConfig(sos_size=(64, 64), **config)
    )
    return eager, graphs


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_graph_replays_give_the_eager_results(tiny_autoencoder, tiny_sosnet, precision):
    eager, graphs = _graph_pipes(tiny_autoencoder, tiny_sosnet, precision=precision)
    assert graphs.backend.graphs is not None and eager.backend.graphs is None
    for seed in range(4):  # call 1 eager, 2 captures, 3-4 replay, each on new data
        ir, vis = _pair(seed=seed)
        a, b = eager(ir, vis), graphs(ir, vis)
        assert np.abs(a.mask_u8.astype(int) - b.mask_u8.astype(int)).max() <= 1
        assert np.allclose(a.raw, b.raw, rtol=1e-3, atol=1e-3 * np.abs(a.raw).max())
        assert (np.abs(a.fused.astype(int) - b.fused.astype(int)) <= 1).mean() >= 0.999
    assert graphs.backend.graphs.captures == 2  # the SOS network and the autoencoder


def test_one_graph_per_input_size(tiny_autoencoder):
    _, pipe = _graph_pipes(tiny_autoencoder)
    for h, w in [(96, 128)] * 3 + [(64, 80)] * 3 + [(96, 128)]:
        ir, vis = _pair(h, w)
        pipe(ir, vis, np.full(ir.shape, 100, np.uint8))
    cache = pipe.backend.graphs
    assert cache.captures == 2
    assert sorted(k[1] for k in cache.keys()) == [(1, 1, 64, 80), (1, 1, 96, 128)]


def test_a_replay_does_not_overwrite_earlier_results(tiny_autoencoder):
    _, pipe = _graph_pipes(tiny_autoencoder)
    mask = torch.full((96, 128), 0.5, device="cuda")
    results = []
    for seed in range(4):
        ir, vis = _pair(seed=seed)
        results.append(pipe(torch.from_numpy(ir).cuda(), torch.from_numpy(vis).cuda(), mask))
    kept = [r.raw.clone() for r in results]
    pipe(*(torch.from_numpy(x).cuda() for x in _pair(seed=9)), mask)
    for r, k in zip(results, kept):
        assert torch.equal(r.raw, k)
    assert not torch.equal(results[2].raw, results[3].raw)


def test_one_pinned_upload_per_call(tiny_autoencoder):
    _, pipe = _graph_pipes(tiny_autoencoder)
    for seed in range(3):
        ir, vis = _pair(seed=seed)
        pipe(ir, vis, np.full(ir.shape, 200, np.uint8))
    assert pipe.transfer.uploads == 3
    assert pipe.transfer._pinned.is_pinned()


def test_the_classical_mask_is_made_on_the_host_before_the_upload(tiny_autoencoder):
    from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker

    pipes = [
        FusionPipeline(
            copy.deepcopy(tiny_autoencoder),
            device=device,
            config=PipelineConfig(mask_source="thermal"),
            thermal_masker=ThermalHotObjectMasker(),
        )
        for device in ("cpu", "cuda")
    ]
    ir, vis = _pair()
    a, b = (p(ir, vis) for p in pipes)
    assert pipes[1].transfer.uploads == 1
    assert np.array_equal(a.mask_u8, b.mask_u8)  # the same mask, made on the host both times
    assert (np.abs(a.fused.astype(int) - b.fused.astype(int)) <= 1).mean() >= 0.99


def test_channels_last_on_cuda_matches_nchw(tiny_autoencoder):
    ir, vis = _pair()
    mask = np.full(ir.shape, 128, np.uint8)
    outs = [
        FusionPipeline(
            copy.deepcopy(tiny_autoencoder),
            device="cuda",
            backend_options={"channels_last": cl, "cuda_graphs": False},
        )(ir, vis, mask)
        for cl in (False, True)
    ]
    assert np.allclose(outs[0].raw, outs[1].raw, rtol=1e-3, atol=1e-3 * np.abs(outs[0].raw).max())


# --- the data path per mask source (test_pipeline_transfers.py checks the same on the CPU) -------


@pytest.mark.parametrize("source", ["sosnet", "thermal", "ensemble", "topic"])
def test_each_mask_source_moves_data_once_each_way_and_matches_the_cpu(
    source, tiny_autoencoder, tiny_sosnet, monkeypatch
):
    from test_pipeline_transfers import _instrument

    config = PipelineConfig(mask_source=source, sos_size=(64, 64))
    cpu = FusionPipeline(
        copy.deepcopy(tiny_autoencoder), copy.deepcopy(tiny_sosnet), device="cpu", config=config
    )
    gpu = FusionPipeline(tiny_autoencoder, tiny_sosnet, device="cuda", config=config)
    reads = _instrument(gpu, monkeypatch)
    ir, vis = _pair()
    mask = np.full(ir.shape, 200, np.uint8) if source == "topic" else None
    for _ in range(3):  # eager, captured, replayed
        with reads:
            b = gpu(ir, vis, mask)
    assert (gpu.transfer.uploads, gpu.transfer.downloads) == (3, 3)
    assert reads.seen == [], f"host reads between upload and decoder: {reads.seen}"
    a = cpu(ir, vis, mask)
    assert np.abs(a.mask - b.mask).max() < 1e-3
    assert (np.abs(a.fused.astype(int) - b.fused.astype(int)) <= 1).mean() >= 0.99


def test_a_processing_size_is_applied_once_on_the_host(tiny_autoencoder, tiny_sosnet):
    from sosmaskfuse_core.pipeline import FramePreparer, PairStage
    from sosmaskfuse_core.pipeline.pair_stage import Frame

    config = PipelineConfig(mask_source="ensemble", sos_size=(64, 64))
    stages = [
        PairStage(
            FusionPipeline(
                copy.deepcopy(tiny_autoencoder),
                copy.deepcopy(tiny_sosnet),
                device=device,
                config=config,
            ),
            FramePreparer(size=(64, 48)),
        )
        for device in ("cpu", "cuda")
    ]
    rng = np.random.default_rng(1)
    thermal = Frame(rng.integers(7000, 9000, (96, 128)).astype(np.uint16), "mono16")
    visible = Frame(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), "bgr8")
    a, b = (s(thermal, visible) for s in stages)
    assert b.fused.shape == (48, 64) and stages[1].pipeline.transfer.uploads == 1
    assert (np.abs(a.fused.astype(int) - b.fused.astype(int)) <= 1).mean() >= 0.99
