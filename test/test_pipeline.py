"""FusionPipeline: input kinds, batching, mask sources, settings, errors; small random networks."""

import numpy as np
import pytest
import torch

from sosmaskfuse_core.pipeline import devices
from sosmaskfuse_core.pipeline import preprocessing as pp
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig


def _pair(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    ir = rng.integers(0, 256, (h, w), dtype=np.uint8)
    vis = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return ir, vis


@pytest.fixture
def pipe(tiny_autoencoder, tiny_sosnet):
    # the paper's mode: imvf-contrast assumes an autoencoder that reconstructs gray levels,
    # which these random networks do not (test_thermal_contrast.py tests that mode)
    return FusionPipeline(
        tiny_autoencoder,
        tiny_sosnet,
        device="cpu",
        config=PipelineConfig.paper(sos_size=(64, 64)),
    )


def test_numpy_in_numpy_out(pipe):
    ir, vis = _pair()
    r = pipe(ir, vis)
    assert r.fused.dtype == np.uint8 and r.fused.shape == (48, 64)
    assert r.mask.dtype == np.float32 and r.mask.shape == (48, 64)
    assert r.mask_u8.dtype == np.uint8
    assert 0.0 <= r.mask.min() and r.mask.max() <= 1.0
    assert r.fused.min() == 0 and r.fused.max() == 255  # the paper's min-max stretch


def test_tensor_inputs_give_the_same_result_as_arrays(pipe):
    ir, vis = _pair()
    a = pipe(ir, vis)
    b = pipe(torch.from_numpy(ir), torch.from_numpy(vis).float())
    assert isinstance(b.fused, torch.Tensor)
    assert np.array_equal(a.fused, b.fused.numpy())
    assert np.allclose(a.raw, b.raw.numpy())


def test_batch_equals_one_by_one(pipe):
    pairs = [_pair(seed=s) for s in range(3)]
    batch = pipe.fuse_batch([p[0] for p in pairs], [p[1] for p in pairs])
    for (ir, vis), r in zip(pairs, batch):
        single = pipe(ir, vis)
        assert np.allclose(single.raw, r.raw, rtol=1e-4, atol=1e-4)
        assert np.array_equal(single.mask_u8, r.mask_u8)


def test_the_encoder_runs_once_per_call_on_four_images(pipe, monkeypatch):
    calls = []
    original = pipe.autoencoder.encoder.forward
    monkeypatch.setattr(
        pipe.autoencoder.encoder, "forward", lambda x: calls.append(x.shape) or original(x)
    )
    pipe.fuse_batch(*zip(*[_pair(seed=s) for s in range(2)]))
    assert calls == [torch.Size([8, 1, 48, 64])]


def test_gray_and_replicated_color_thermal_agree(pipe):
    ir, vis = _pair()
    a = pipe(ir, vis)
    b = pipe(np.dstack([ir, ir, ir]), vis)
    assert np.array_equal(a.fused, b.fused)


def test_given_mask_overrides_the_network(pipe):
    ir, vis = _pair()
    ones = np.full(ir.shape, 255, np.uint8)
    r = pipe(ir, vis, mask=ones)
    assert (r.mask == 1.0).all()
    zeros = pipe(ir, vis, mask=np.zeros(ir.shape, np.float32))
    assert (zeros.mask == 0.0).all()
    assert not np.array_equal(r.raw, zeros.raw)


def test_mask_threshold_binarises(pipe):
    ir, vis = _pair()
    soft = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    pipe.update(mask_threshold=0.5)
    r = pipe(ir, vis, mask=soft)
    assert set(np.unique(r.mask)) == {0.0, 1.0}
    assert np.array_equal(r.mask == 1.0, soft >= 0.5)


def test_mu_changes_the_result_and_bad_updates_change_nothing(pipe):
    ir, vis = _pair()
    mask = np.full(ir.shape, 200, np.uint8)
    a = pipe(ir, vis, mask=mask).raw
    pipe.update(mu=0.2)
    b = pipe(ir, vis, mask=mask).raw
    assert not np.allclose(a, b)
    for bad in (
        {"mu": 1.5},
        {"fusion_mode": "max"},
        {"mask_threshold": 1.0},
        {"precision": "fp16"},
    ):
        with pytest.raises(ValueError):
            pipe.update(**bad)
    assert pipe.config.mu == 0.2 and pipe.config.fusion_mode == "imvf"


@pytest.mark.parametrize("mode", ["sca", "addition"])
def test_mask_free_baselines_ignore_the_mask(pipe, mode):
    ir, vis = _pair()
    pipe.update(fusion_mode=mode)
    a = pipe(ir, vis, mask=np.zeros(ir.shape, np.uint8)).raw
    b = pipe(ir, vis, mask=np.full(ir.shape, 255, np.uint8)).raw
    assert np.array_equal(a, b)


def test_color_output_keeps_visible_chroma(pipe):
    ir, vis = _pair()
    pipe.update(color_output=True)
    r = pipe(ir, vis)
    assert r.fused.shape == (48, 64, 3)
    gray = pp.luma_u8(torch.from_numpy(r.fused).permute(2, 0, 1)[None])[0, 0].numpy().astype(int)
    pipe.update(color_output=False)
    plain = pipe(ir, vis).fused.astype(int)
    assert np.abs(gray - plain).mean() < 2.0  # luma of the colour image is the fused image


def test_uint16_thermal_is_gain_controlled_by_the_stage(pipe):
    from sosmaskfuse_core.pipeline.pair_stage import Frame, PairStage
    from sosmaskfuse_core.thermal.agc import ThermalAGC

    ir, vis = _pair()
    counts = (ir.astype(np.uint16) * 7 + 20000).astype(np.uint16)  # narrow raw-count range
    mask = np.full(ir.shape, 128, np.uint8)
    with pytest.raises(ValueError, match="gain control"):  # one owner: the frame preparer
        pipe(counts, vis, mask)
    stage = PairStage(pipe)
    a = stage(Frame(counts, "mono16"), Frame(vis, "bgr8"), Frame(mask, "mono8"))
    b = stage(Frame(ThermalAGC().apply(counts), "mono8"), Frame(vis, "bgr8"), Frame(mask, "mono8"))
    assert np.array_equal(a.fused, b.fused)
    plain = stage(Frame(ir, "mono8"), Frame(vis, "bgr8"), Frame(mask, "mono8")).fused
    assert np.abs(plain.astype(int) - a.fused).mean() < 0.05 * 255


def test_process_size_resizes_both_inputs_once_in_the_preparer(pipe):
    from sosmaskfuse_core.pipeline.frames import FramePreparer
    from sosmaskfuse_core.pipeline.pair_stage import Frame, PairStage

    ir, vis = _pair(96, 128)
    stage = PairStage(pipe, FramePreparer(size=(64, 48)))
    prepared = stage.prepare(Frame(ir, "mono8"), Frame(vis, "bgr8"))
    assert prepared.thermal.shape == (48, 64) and prepared.visible.shape[:2] == (48, 64)
    r = stage(Frame(ir, "mono8"), Frame(vis, "bgr8"))
    assert r.fused.shape == (48, 64) and r.mask.shape == (48, 64)


@pytest.mark.parametrize(
    "ir,vis,match",
    [
        (np.zeros((48, 64), np.uint8), np.zeros((40, 64), np.uint8), "register or resize"),
        (np.zeros((48, 64), np.float64), np.zeros((48, 64), np.uint8), "dtype float64"),
        (np.zeros((8, 64), np.uint8), np.zeros((8, 64), np.uint8), "smaller than"),
        (np.zeros((48, 64, 2), np.uint8), np.zeros((48, 64), np.uint8), "shape"),
    ],
)
def test_bad_inputs_are_named(pipe, ir, vis, match):
    with pytest.raises(ValueError, match=match):
        pipe(ir, vis)


def test_nan_tensor_is_refused(pipe):
    ir = torch.zeros(48, 64)
    ir[3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pipe(ir, torch.zeros(48, 64))


def test_topic_source_without_mask_says_so(tiny_autoencoder):
    p = FusionPipeline(tiny_autoencoder, device="cpu", config=PipelineConfig(mask_source="topic"))
    assert p.mask_source == "topic"
    with pytest.raises(ValueError, match="needs a mask"):
        p(*_pair())


def test_auto_without_a_network_is_the_classical_mask(tiny_autoencoder):
    from sosmaskfuse_core.thermal.hot_object_mask import ThermalHotObjectMasker

    p = FusionPipeline(tiny_autoencoder, device="cpu", config=PipelineConfig.paper())
    assert p.mask_source == "thermal"
    ir, vis = _pair()
    expected = ThermalHotObjectMasker()(ir)
    assert np.allclose(p(ir, vis).mask, np.round(expected * 255) / 255, atol=1e-6)
    with pytest.raises(ValueError, match="needs SOS network weights"):
        FusionPipeline(tiny_autoencoder, device="cpu", config=PipelineConfig(mask_source="sosnet"))


def test_unknown_device_and_cpu_fp16_are_refused(tiny_autoencoder):
    with pytest.raises(ValueError, match="expected auto, cpu"):
        FusionPipeline(tiny_autoencoder, device="tpu")
    with pytest.raises(ValueError, match="fp16' needs a CUDA"):
        FusionPipeline(tiny_autoencoder, device="cpu", config=PipelineConfig(precision="fp16"))


@pytest.mark.parametrize(
    "flags,expected",
    [
        ("fpu sse avx512f avx512_bf16 amx_tile", "bf16"),
        ("fpu sse amx_bf16 amx_tile", "bf16"),
        ("fpu sse avx2 avx512f avx512_vnni", "fp32"),  # bf16 emulated there: slower than fp32
    ],
)
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(
    tiny_autoencoder, tmp_path, monkeypatch, flags, expected
):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert devices.native_bf16(str(cpuinfo)) == (expected == "bf16")
    assert not devices.native_bf16(str(tmp_path / "absent"))  # no cpuinfo: the safe fp32
    monkeypatch.setattr(devices, "native_bf16", lambda: expected == "bf16")
    assert PipelineConfig().precision == "auto"
    pipe = FusionPipeline(tiny_autoencoder, device="cpu")
    assert pipe.config.precision == expected  # resolved once, at build
    assert pipe.update(mu=0.5).precision == expected
    assert pipe.update(precision="fp32").precision == "fp32"  # a choice is kept
    assert pipe.update(precision="auto").precision == expected
    onnx = devices.resolve_precision("auto", torch.device("cpu"), backend="onnxruntime")
    assert onnx == "fp32"  # ONNX Runtime runs fp32


def test_bf16_on_cpu_stays_close_to_fp32():
    from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder

    torch.manual_seed(0)
    small = IMVFAutoencoder(AutoencoderConfig(widths=(8, 16, 24, 32), stem_channels=4)).eval()
    ir, vis = _pair()
    mask = np.full(ir.shape, 128, np.uint8)
    a = FusionPipeline(small, device="cpu", config=PipelineConfig(precision="fp32"))(ir, vis, mask)
    b = FusionPipeline(small, device="cpu", config=PipelineConfig(precision="bf16"))(ir, vis, mask)
    assert np.abs(a.raw - b.raw).max() < 0.05 * np.abs(a.raw).max()


def test_a_trained_sos_network_runs_at_the_size_it_was_trained_at(
    tmp_path, tiny_autoencoder, tiny_sosnet
):
    from sosmaskfuse_core.models import checkpoints
    from sosmaskfuse_core.pipeline.builder import build_pipeline

    checkpoints.save_checkpoint(tmp_path / "ae.pt", tiny_autoencoder)
    checkpoints.save_checkpoint(tmp_path / "sos.pt", tiny_sosnet, {"input_size": [96, 64]})
    pipe, sources = build_pipeline(str(tmp_path / "ae.pt"), str(tmp_path / "sos.pt"), device="cpu")
    assert pipe.config.sos_size == (96, 64) and "at 96x64" in sources.mask
    checkpoints.save_checkpoint(tmp_path / "sos_paper.pt", tiny_sosnet)
    pipe, _ = build_pipeline(str(tmp_path / "ae.pt"), str(tmp_path / "sos_paper.pt"), device="cpu")
    assert pipe.config.sos_size == (640, 480)
