"""Backends: channels_last and bf16 on the CPU, the CUDA-graph cache, ONNX Runtime, transfers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sosmaskfuse_core.models.flops import conv_macs, fused_pair_gflop
from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder
from sosmaskfuse_core.pipeline import transfer
from sosmaskfuse_core.pipeline.backends import (
    GraphCache,
    TorchBackend,
    choose_backend,
    onnxruntime_available,
)
from sosmaskfuse_core.pipeline.fusion_modes import fusion_mode
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig

CPU = torch.device("cpu")
needs_ort = pytest.mark.skipif(
    not onnxruntime_available(), reason="onnxruntime/onnx are not installed (extra 'onnx')"
)


def small_autoencoder(seed: int = 0) -> IMVFAutoencoder:
    torch.manual_seed(seed)
    model = IMVFAutoencoder(AutoencoderConfig(widths=(8, 16, 24, 32), stem_channels=4)).eval()
    with torch.no_grad():
        model.encoder.stem.conv.weight.mul_(1 / 255.0)
        model.decoder.head.conv.bias.fill_(1.0)
    return model


def _pair(h=45, w=61, seed=0):
    """An odd size: the decoder's padding path runs."""
    rng = np.random.default_rng(seed)
    ir = rng.integers(0, 256, (h, w), dtype=np.uint8)
    vis = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, (h, w), dtype=np.uint8)
    return ir, vis, mask


def _pipe(backend="torch", precision="fp32", seed=0, **options):
    return FusionPipeline(
        small_autoencoder(seed),
        device="cpu",
        config=PipelineConfig(precision=precision),
        backend=backend,
        backend_options=options,
    )


# --- PyTorch on the CPU --------------------------------------------------------------------------


def test_channels_last_gives_the_nchw_results():
    ir, vis, mask = _pair()
    nchw = _pipe(channels_last=False)(ir, vis, mask)
    nhwc_pipe = _pipe(channels_last=True)
    nhwc = nhwc_pipe(ir, vis, mask)
    weight = nhwc_pipe.autoencoder.decoder.node1_1.reduce.conv.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert np.allclose(nchw.raw, nhwc.raw, rtol=1e-5, atol=1e-5 * np.abs(nchw.raw).max())
    assert np.abs(nchw.fused.astype(int) - nhwc.fused.astype(int)).max() <= 1
    assert np.array_equal(nchw.mask_u8, nhwc.mask_u8)


@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="no bf16 support in this CPU"
)
def test_bf16_on_the_cpu_stays_close_and_leaves_the_fp32_weights_alone():
    """The shipped (trained) weights: a random network's output is too flat to compare."""
    from sosmaskfuse_core.models.checkpoints import load_autoencoder
    from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER

    ir, vis, mask = _pair()
    trained = {p: load_autoencoder(SHIPPED_AUTOENCODER)[0] for p in ("fp32", "bf16")}
    pipes = {
        p: FusionPipeline(m, device="cpu", config=PipelineConfig(precision=p))
        for p, m in trained.items()
    }
    fp32, bf16 = (pipes[p](ir, vis, mask) for p in ("fp32", "bf16"))
    assert pipes["bf16"].autoencoder.encoder.stem.conv.weight.dtype == torch.float32
    assert np.abs(fp32.raw - bf16.raw).max() < 0.05 * np.ptp(fp32.raw)
    assert (np.abs(fp32.fused.astype(int) - bf16.fused.astype(int)) <= 3).mean() >= 0.99


def test_the_backend_leaves_the_callers_modules_alone():
    model = small_autoencoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pipe = FusionPipeline(model, device="cpu", config=PipelineConfig(precision="bf16"))
    pipe(*_pair())
    weight = model.decoder.node1_1.reduce.conv.weight
    assert weight.is_contiguous() and not weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert pipe.autoencoder is not model  # the backend's own copy, in its own layout
    assert pipe.autoencoder.decoder.node1_1.reduce.conv.weight.is_contiguous(
        memory_format=torch.channels_last
    )


def test_the_strategy_runs_in_fp32_whatever_the_precision(monkeypatch):
    from sosmaskfuse_core.pipeline.fusion_modes import FusionMode

    seen = []
    original = FusionMode.fuse_levels

    def spy(self, feats, n, mu):
        out = original(self, feats, n, mu)
        seen.extend(f.dtype for f in out)
        return out

    monkeypatch.setattr(FusionMode, "fuse_levels", spy)
    ir, vis, mask = _pair()
    _pipe(precision="bf16")(ir, vis, mask)
    assert seen and set(seen) == {torch.float32}


# --- the CUDA-graph cache (its bookkeeping; capturing itself needs a GPU) ------------------------


class _FakeGraph:
    def __init__(self, fn, inputs):
        self.fn, self.replays = fn, 0

    def __call__(self, *inputs):
        self.replays += 1
        return self.fn(*inputs)


def test_graph_cache_captures_a_size_on_its_second_call_and_replays_it():
    cache = GraphCache(capacity=2, capture=_FakeGraph)

    def fn(x):
        return x * 2

    x = torch.ones(1, 1, 4, 4)
    for _ in range(4):
        assert torch.equal(cache.run(("fuse", (1, 1, 4, 4)), fn, (x,)), x * 2)
    assert cache.captures == 1 and len(cache) == 1
    # call 1 ran eagerly; call 2 captured and replayed; calls 3 and 4 replayed
    assert cache._graphs[("fuse", (1, 1, 4, 4))].replays == 3


def test_graph_cache_keeps_one_graph_per_size_and_drops_the_least_recently_used():
    cache = GraphCache(capacity=2, capture=_FakeGraph)
    sizes = [(8, 8), (16, 16), (8, 8), (32, 32)]
    for size in sizes + sizes:
        cache.run(size, lambda x: x, (torch.zeros(size),))
    assert len(cache) == 2
    assert cache.keys() == [(8, 8), (32, 32)]  # (16, 16) was least recently used


def test_graph_keys_hold_the_settings_baked_into_a_graph(monkeypatch):
    backend = TorchBackend(small_autoencoder(), None, CPU)
    backend.graphs = GraphCache(capture=_FakeGraph)  # as on CUDA
    ir = torch.rand(1, 1, 32, 48) * 255
    mask = torch.rand(1, 1, 32, 48)
    for mu in (0.8, 0.8, 0.5, 0.5):
        backend.fuse(ir, ir, mask, fusion_mode("imvf"), mu, "fp32")
    keys = backend.graphs.keys()
    assert len(keys) == 2 and {k[3] for k in keys} == {0.8, 0.5}
    assert all(k[1] == (1, 1, 32, 48) for k in keys)


def test_no_graphs_on_the_cpu():
    assert TorchBackend(small_autoencoder(), None, CPU).graphs is None


# --- choosing a backend --------------------------------------------------------------------------


def test_choose_backend():
    assert choose_backend("torch", CPU, "bf16") == "torch"
    auto = choose_backend("auto", CPU, "fp32")
    assert auto == ("onnxruntime" if onnxruntime_available() else "torch")
    assert choose_backend("auto", CPU, "bf16") == "torch"
    assert choose_backend("auto", torch.device("cuda"), "fp32") == "torch"
    with pytest.raises(ValueError, match="fp32 on the CPU"):
        choose_backend("onnxruntime", CPU, "bf16")
    with pytest.raises(ValueError, match="backend 'tensorrt'"):
        choose_backend("tensorrt", CPU, "fp32")


def test_onnxruntime_missing_is_a_clear_error(monkeypatch):
    from sosmaskfuse_core.pipeline import backends

    monkeypatch.setattr(backends, "onnxruntime_available", lambda: False)
    with pytest.raises(ValueError, match=r"pip install 'sosmaskfuse_ros\[onnx\]'"):
        _pipe(backend="onnxruntime")
    assert _pipe(backend="auto").backend.name == "torch"


# --- ONNX Runtime --------------------------------------------------------------------------------


@needs_ort
def test_onnxruntime_backend_reproduces_torch():
    ir, vis, mask = _pair()
    ref = _pipe()(ir, vis, mask)
    ort_pipe = _pipe(backend="onnxruntime")
    assert ort_pipe.backend.name == "onnxruntime"
    out = ort_pipe(ir, vis, mask)
    assert np.abs(out.raw - ref.raw).max() <= 1e-4 * np.abs(ref.raw).max()
    assert (np.abs(out.fused.astype(int) - ref.fused.astype(int)) <= 1).mean() >= 0.999
    batch = ort_pipe.fuse_batch([ir, ir], [vis, vis], [mask, mask])  # batch size is dynamic
    assert np.allclose(batch[1].raw, out.raw, rtol=1e-4, atol=1e-4)


@needs_ort
def test_onnxruntime_runs_the_sos_network(tiny_sosnet):
    ir, vis, _ = _pair(64, 80)
    cfg = PipelineConfig(sos_size=(64, 48))
    ref = FusionPipeline(small_autoencoder(), tiny_sosnet, device="cpu", config=cfg)
    ort_pipe = FusionPipeline(
        small_autoencoder(), tiny_sosnet, device="cpu", config=cfg, backend="onnxruntime"
    )
    assert np.abs(ref.mask(ir) - ort_pipe.mask(ir)).max() < 1e-4


@needs_ort
def test_onnxruntime_refuses_a_half_precision_change():
    pipe = _pipe(backend="onnxruntime")
    with pytest.raises(ValueError, match="runs fp32 on the CPU"):
        pipe.update(precision="bf16")
    assert pipe.config.precision == "fp32"


# --- host <-> device transfers (CPU: no copies) --------------------------------------------------


def test_on_the_cpu_inputs_are_used_in_place_and_outputs_are_not_copied():
    image = np.zeros((32, 32), np.uint8)
    t = transfer.to_u8_tensor(image, "thermal")
    assert t.data_ptr() == image.ctypes.data  # a view, no copy
    moves = transfer.DeviceTransfer(CPU)
    assert moves.upload([t])[0] is t and moves.uploads == 1  # counted, not copied
    out = torch.arange(6, dtype=torch.float32)
    assert np.shares_memory(moves.download({"raw": out})["raw"], out.numpy())
    assert moves.downloads == 1


def test_mask_tensor_checks_on_the_host():
    with pytest.raises(ValueError, match="NaN"):
        transfer.mask_tensor(np.full((20, 20), np.nan, np.float32))
    m = transfer.mask_tensor(np.full((20, 20), 255, np.uint8))
    assert m.dtype == torch.uint8 and transfer.mask_to_float(m).max() == 1.0


# --- the analytic work count ---------------------------------------------------------------------


def test_conv_macs_counts_every_convolution():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1)
    )
    macs = conv_macs(net, lambda: net(torch.zeros(2, 3, 10, 12)))
    assert macs == 2 * 10 * 12 * (8 * 3 * 9 + 4 * 8)


def test_the_decoder_count_matches_its_architecture():
    def node(cin, cout):  # DenseBlockLight: 3x3 to cin/2, then 1x1 to cout
        return cin * (cin // 2) * 9 + (cin // 2) * cout

    per_pixel = (
        node(64 + 112, 64)
        + node(2 * 64 + 112, 64)
        + node(3 * 64 + 112, 64)
        + 64  # + head
        + (node(112 + 160, 112) + node(2 * 112 + 160, 112)) / 4
        + node(160 + 208, 160) / 16
    )
    gflop = fused_pair_gflop(IMVFAutoencoder(), 32, 48)
    assert gflop["decoder"] == pytest.approx(2 * per_pixel * 32 * 48 / 1e9, rel=1e-12)
    assert gflop["encoder"] < 0.05 * gflop["decoder"]


# --- the decoder's fused CPU path ----------------------------------------------------------------


@pytest.mark.parametrize("h, w", [(12, 16), (13, 17)])
def test_the_fused_concatenation_is_exactly_cat_upsample_pad(h, w):
    from sosmaskfuse_core.models.imvf_autoencoder import cat_upsampled_padded, upsample_to

    gen = torch.Generator().manual_seed(h)
    parts = [torch.randn(2, c, h, w, generator=gen) for c in (3, 5)]
    low = torch.randn(2, 4, h // 2, w // 2, generator=gen)
    expected = torch.nn.functional.pad(
        torch.cat([*parts, upsample_to(parts[0], low)], 1), (1, 1, 1, 1), mode="reflect"
    )
    got = cat_upsampled_padded(parts, low)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("h, w", [(32, 48), (45, 61)])
def test_the_decoders_fused_cpu_path_computes_the_plain_one(h, w):
    model = small_autoencoder()
    x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        plain = model.decoder(model.encoder(x))  # NCHW: the plain path
        fused_model = model.to(memory_format=torch.channels_last)
        feats = [f.contiguous(memory_format=torch.channels_last) for f in fused_model.encoder(x)]
        fused = fused_model.decoder(feats)
    assert torch.allclose(plain, fused, rtol=1e-5, atol=1e-5 * plain.abs().max().item())


def test_the_strategy_computes_the_formula_operation_for_operation():
    """In-place updates change no bit of IMV-F (fp32, NCHW and NHWC)."""
    from sosmaskfuse_core.pipeline.strategies import EPS, imvf

    def formula(a, b, c, d, mu):
        px, py = b.mean(dim=(2, 3), keepdim=True), d.mean(dim=(2, 3), keepdim=True)
        channel = (px / (px + py + EPS)) * b + (py / (px + py + EPS)) * d
        ex, ey = torch.exp(b.mean(dim=1, keepdim=True)), torch.exp(d.mean(dim=1, keepdim=True))
        spatial = (ex / (ex + ey + EPS)) * b + (ey / (ex + ey + EPS)) * d
        s = (3.0 * channel + spatial) / 4.0
        w = s / (s + d + EPS)
        return (mu * a + (1.0 - mu) * c) + 0.6 * (w * s + (1.0 - w) * d) + 0.4 * d

    gen = torch.Generator().manual_seed(0)
    for fmt in (torch.contiguous_format, torch.channels_last):
        a, b, c, d = (
            (torch.rand(2, 8, 13, 17, generator=gen) * 5).contiguous(memory_format=fmt)
            for _ in range(4)
        )
        assert torch.equal(imvf(a, b, c, d, 0.7), formula(a, b, c, d, 0.7))
