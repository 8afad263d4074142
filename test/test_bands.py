"""Fusion in bands: halos that cover the receptive field, the unbanded output, the budget kept."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
import torch

import sosmaskfuse_core.models.imvf_autoencoder as imvf_autoencoder
from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder
from sosmaskfuse_core.models.shipped import SHIPPED_AUTOENCODER, SHIPPED_AUTOENCODER_LITE
from sosmaskfuse_core.pipeline import bands
from sosmaskfuse_core.pipeline import preprocessing as pp
from sosmaskfuse_core.pipeline.backends import TorchBackend
from sosmaskfuse_core.pipeline.fusion_modes import FusionMode, fusion_mode
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene

LITE = AutoencoderConfig(widths=(8, 16, 32, 48), stem_channels=8)
MODES = ("imvf", "sca", "addition")


def random_autoencoder(config: AutoencoderConfig | None = None, seed: int = 0):
    """The real architecture with He-initialised random weights.

    (test/conftest.py's tiny autoencoder decodes to a near-constant image, which would hide
    a wrong row; these weights keep the activations' spread through all layers.)
    """
    torch.manual_seed(seed)
    model = IMVFAutoencoder(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.normal_(m.bias, 0.0, 0.1)
        model.encoder.stem.conv.weight.mul_(1 / 128)
    return model


def scene(width: int, height: int, seed: int = 0):
    """Gray thermal and visible images (0..255 float) and a soft mask, 1 x 1 x H x W."""
    frame = SyntheticScene(width, height, seed=seed).render(1.0)
    counts = frame.thermal.astype(np.float32)
    lo, hi = np.percentile(counts, (1, 99))
    ir = np.clip((counts - lo) / (hi - lo) * 255, 0, 255).round()
    vis = frame.visible.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    mask = frame.mask.astype(np.float32) / 255
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]  # noqa: E731
    return as_t(ir), as_t(vis.round()), as_t(mask)


def noise(height: int, width: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ir, vis = (torch.rand(1, 1, height, width, generator=g) * 255 for _ in range(2))
    return ir, vis, torch.rand(1, 1, height, width, generator=g)


def encoder_batch(ir, vis, mask, mode: str) -> torch.Tensor:
    return fusion_mode(mode).encoder_input(ir, vis, mask)


def fuse_levels(mode: str, feats, n: int, mu: float = 0.8, channel_means=None):
    return fusion_mode(mode).fuse_levels(feats, n, mu, channel_means)


def channel_mean_images(batch, mode: str, n: int):
    return fusion_mode(mode).mean_images(batch, n)


def mode_of(mode: str | FusionMode) -> FusionMode:
    return fusion_mode(mode) if isinstance(mode, str) else mode


def calls(backend: TorchBackend, precision: str):
    return (lambda b: backend.encode(b, precision)), (lambda f: backend.decode(f, precision))


# --- the plan ------------------------------------------------------------------------------------


@pytest.mark.parametrize("height", [1, 7, 8, 9, 64, 333, 517, 1024])
@pytest.mark.parametrize("rows", [8, 24, 64, 136])
def test_bands_partition_the_rows_on_the_pooling_grid(height, rows):
    plan = bands.plan_bands(height, rows)
    owned = [b.rows for b in plan]
    assert owned[0][0] == 0 and owned[-1][1] == height
    assert len(plan) == -(-height // rows)  # the fewest bands
    sizes = [b - a for a, b in owned]
    assert max(sizes) - min(sizes) < 16  # evened out (the last may end on a partial 8 rows)
    assert all(a[1] == b[0] for a, b in zip(owned, owned[1:]))
    for band in plan:
        a, b = band.rows
        d0, d1 = band.decoded
        e0, e1 = band.encoded
        assert b - a <= rows
        # every edge inside the image is on the 8-row grid of the encoder's three pools
        for edge in (a, b, d0, d1, e0, e1):
            assert edge == height or edge % 8 == 0
        # the halos: 8 rows decoded beyond the band's, 16 more encoded (or the image's edge)
        assert d0 <= max(0, a - 8) and d1 >= min(height, b + 8)
        assert e0 <= max(0, d0 - 16) and e1 >= min(height, d1 + 16)
    # crops of one height (the lowest may reach down to the image's bottom: < 8 rows more)
    for crops in ([b.decoded for b in plan], [b.encoded for b in plan]):
        heights = [stop - start for start, stop in crops]
        assert min(heights) == heights[0] and max(heights) - min(heights) < 8


def test_one_band_when_rows_cover_the_frame():
    assert bands.plan_bands(333, None) == [bands.Band((0, 333), (0, 333), (0, 333))]
    assert bands.plan_bands(333, 336) == bands.plan_bands(333, None)
    with pytest.raises(ValueError, match="multiple of 8"):
        bands.plan_bands(333, 12)


# --- the receptive field, measured ---------------------------------------------------------------


def _corrupted_rows(crop: torch.Tensor, whole: torch.Tensor, at_bottom: bool) -> int:
    """How far from the crop's false edge its rows differ from the whole image's."""
    wrong = (crop - whole).abs().amax(dim=(0, 1, 3)) > 1e-4 * whole.abs().max()
    wrong = wrong.flip(0) if at_bottom else wrong
    found = torch.nonzero(wrong)
    return int(found[-1]) + 1 if found.numel() else 0


@pytest.mark.parametrize("at_bottom", [True, False])
def test_the_halos_cover_the_receptive_field_and_no_more_than_needed(at_bottom):
    """A crop's false edge corrupts f1..f4 by 1, 2, 2, 2 rows and the decoder's output by 7."""
    model = random_autoencoder()
    h, w, cut = 96, 75, 48
    x = noise(h, w)[0]
    with torch.no_grad():
        whole = model.encoder(x)
        sl = slice(0, cut) if at_bottom else slice(cut, h)
        crop = model.encoder(x[:, :, sl])
        depths = []
        for k, (c, f) in enumerate(zip(crop, whole)):
            part = f[:, :, sl.start >> k : sl.stop >> k]
            depths.append(_corrupted_rows(c, part, at_bottom))
        assert depths == [1, 2, 2, 2]
        assert max(d << k for k, d in enumerate(depths)) == bands.ENCODER_HALO

        # the decoder on exact features of the crop's rows
        feats = [f[:, :, sl.start >> k : sl.stop >> k] for k, f in enumerate(whole)]
        decoded = model.decoder(feats)
        reference = model.decoder(whole)[:, :, sl]
        depth = _corrupted_rows(decoded, reference, at_bottom)
    assert depth == 7 and depth <= bands.DECODER_HALO < depth + 8


# --- the output ----------------------------------------------------------------------------------


def _compare(banded: torch.Tensor, whole: torch.Tensor, precision: str) -> int:
    """Max gray-level difference of the 8-bit outputs; fp32 raw outputs agree to 2e-5."""
    if precision == "fp32":
        torch.testing.assert_close(banded, whole, rtol=1e-5, atol=2e-5 * whole.abs().max().item())
    return int((pp.minmax_to_u8(banded).int() - pp.minmax_to_u8(whole).int()).abs().max())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("mode", MODES)
def test_banded_equals_unbanded_lite_at_an_odd_size(mode, precision):
    backend = TorchBackend(random_autoencoder(LITE), None, torch.device("cpu"))
    ir, vis, mask = noise(333, 517)
    whole = backend.fuse(ir, vis, mask, mode_of(mode), 0.8, precision)
    assert whole.std() > 0.1 * whole.mean()  # an image, not a constant
    encode, decode = calls(backend, precision)
    batch = encoder_batch(ir, vis, mask, mode)
    banded = bands.fuse_in_bands(encode, decode, batch, mode_of(mode), 1, 0.8, 48)  # 7 bands
    assert _compare(banded, whole, precision) <= (1 if precision == "fp32" else 2)
    if mode == "addition":  # no global term: the very same numbers
        assert torch.equal(banded, whole)


@pytest.mark.parametrize(
    "mode,precision", [("imvf", "fp32"), ("sca", "bf16"), ("addition", "fp32")]
)
def test_banded_equals_unbanded_full_widths(mode, precision):
    backend = TorchBackend(random_autoencoder(), None, torch.device("cpu"))
    ir, vis, mask = noise(101, 83, seed=1)
    whole = backend.fuse(ir, vis, mask, mode_of(mode), 0.8, precision)
    encode, decode = calls(backend, precision)
    banded = bands.fuse_in_bands(
        encode, decode, encoder_batch(ir, vis, mask, mode), mode_of(mode), 1, 0.8, 24
    )
    assert _compare(banded, whole, precision) <= (1 if precision == "fp32" else 2)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("which", ["lite", "full"])
def test_banded_equals_unbanded_with_the_shipped_weights(which, precision):
    path = SHIPPED_AUTOENCODER_LITE if which == "lite" else SHIPPED_AUTOENCODER
    if not path.is_file():
        pytest.skip(f"{path} is not in this install")
    backend = TorchBackend(load_autoencoder(path)[0], None, torch.device("cpu"))
    ir, vis, mask = scene(517, 333) if which == "lite" else scene(203, 157)
    encode, decode = calls(backend, precision)
    batch = encoder_batch(ir, vis, mask, "imvf")
    whole = backend.fuse(ir, vis, mask, mode_of("imvf"), 0.8, precision)
    banded = bands.fuse_in_bands(encode, decode, batch, mode_of("imvf"), 1, 0.8, 64)
    levels = _compare(banded, whole, precision)
    # bf16: one unit in the last place of the decoder's output is a gray level above 128,
    # which the min-max stretch can make two
    assert levels <= (1 if precision == "fp32" else 2)
    differ = (pp.minmax_to_u8(banded) != pp.minmax_to_u8(whole)).float().mean().item()
    assert differ < 1e-3


def test_plain_modules_as_encode_and_decode():
    """Backend-agnostic: any encode/decode pair, here the modules themselves in NCHW."""
    model = random_autoencoder(LITE)
    ir, vis, mask = noise(77, 50, seed=2)
    batch = encoder_batch(ir, vis, mask, "sca")
    with torch.no_grad():
        whole = model.decoder(fuse_levels("sca", model.encoder(batch), 1))
        banded = bands.fuse_in_bands(
            model.encoder, model.decoder, batch, mode_of("sca"), 1, 0.8, 8
        )
    torch.testing.assert_close(banded, whole, rtol=1e-6, atol=1e-5)


def test_channel_means_are_the_whole_images_means_and_needed():
    model = random_autoencoder(LITE)
    ir, vis, mask = noise(141, 66, seed=3)
    batch = encoder_batch(ir, vis, mask, "imvf")
    images = channel_mean_images(batch, "imvf", 1)
    with torch.no_grad():
        whole = model.encoder(images)
        means = bands.channel_means(model.encoder, images, 16)
        for m, f in zip(means, whole):
            torch.testing.assert_close(m, f.mean(dim=(2, 3), keepdim=True), rtol=1e-6, atol=0)
        # a band's own means are not the image's: without the first pass bands would differ
        band = model.encoder(images[:, :, :40])
        assert not torch.allclose(band[0].mean(dim=(2, 3)), whole[0].mean(dim=(2, 3)), rtol=1e-2)


def test_batch_of_two_pairs():
    backend = TorchBackend(random_autoencoder(LITE), None, torch.device("cpu"))
    a, b = noise(70, 45, seed=4), noise(70, 45, seed=5)
    ir, vis, mask = (torch.cat([x, y]) for x, y in zip(a, b))
    whole = backend.fuse(ir, vis, mask, mode_of("imvf"), 0.8, "fp32")
    encode, decode = calls(backend, "fp32")
    banded = bands.fuse_in_bands(
        encode, decode, encoder_batch(ir, vis, mask, "imvf"), mode_of("imvf"), 2, 0.8, 16
    )
    _compare(banded, whole, "fp32")


# --- the budget ----------------------------------------------------------------------------------


def test_no_bands_when_the_frame_fits():
    backend = TorchBackend(random_autoencoder(LITE), None, torch.device("cpu"))
    ir, vis, mask = noise(64, 80)
    fp = bands.footprint(LITE, mode_of("imvf"), 1, 4)
    fits = bands.fusion_bytes(fp, 64, 80, None)
    assert bands.band_rows(fp, 64, 80, fits) is None
    assert bands.band_rows(fp, 64, 80, fits - 1) is not None
    encode, decode = calls(backend, "fp32")
    out = bands.fuse_within_budget(
        encode,
        decode,
        encoder_batch(ir, vis, mask, "imvf"),
        mode_of("imvf"),
        1,
        0.8,
        config=LITE,
        element_size=4,
        budget_bytes=fits,
    )
    whole = backend.fuse(ir, vis, mask, mode_of("imvf"), 0.8, "fp32")
    assert torch.equal(out, whole)  # bit for bit


def test_band_rows_follow_the_budget():
    fp = bands.footprint(AutoencoderConfig(), mode_of("imvf"), 1, 4)
    h, w = 1024, 1280
    previous = 0
    for budget_mb in (256, 512, 1024, 2048):
        rows = bands.band_rows(fp, h, w, budget_mb * 2**20)
        assert rows % 8 == 0 and rows > previous
        assert bands.fusion_bytes(fp, h, w, rows) <= budget_mb * 2**20
        previous = rows
    # evened out: no thin last band
    rows = bands.band_rows(fp, h, w, 512 * 2**20)
    sizes = [b - a for a, b in (band.rows for band in bands.plan_bands(h, rows))]
    assert max(sizes) <= rows and max(sizes) - min(sizes) <= 8
    assert bands.band_rows(fp, h, w, 1) == bands.MIN_ROWS  # nothing fits: the thinnest


def _peak_allocated(fn) -> int:
    """Peak bytes allocated by PyTorch (CPU) while fn runs, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        events = json.load(open(f.name))["traceEvents"]
    return max(e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]")


@pytest.mark.parametrize(
    "config,mode,precision,fused_cpu_path",
    [
        (LITE, "imvf", "fp32", True),
        (LITE, "imvf", "fp32", False),
        (LITE, "sca", "bf16", False),
        (AutoencoderConfig(), "imvf", "fp32", False),
    ],
)
def test_measured_peak_within_the_estimate(config, mode, precision, fused_cpu_path, monkeypatch):
    """The estimate is the plain path's peak within 20% (oneDNN's scratch is not counted)."""
    if not fused_cpu_path:  # what CUDA runs: no oneDNN conv + ReLU, no one-buffer concatenation
        monkeypatch.setattr(imvf_autoencoder, "_fusable", lambda x, conv: False)
    backend = TorchBackend(random_autoencoder(config), None, torch.device("cpu"))
    h, w = (160, 200) if config is LITE else (72, 90)
    ir, vis, mask = noise(h, w)
    encode, decode = calls(backend, precision)
    batch = encoder_batch(ir, vis, mask, mode)
    element = 4 if precision == "fp32" else 2
    fp = bands.footprint(config, mode_of(mode), 1, element)
    with torch.no_grad():
        bands.fuse_in_bands(encode, decode, batch, mode_of(mode), 1, 0.8, None)  # one-time set-up
        for rows in (None, 32):
            measured = _peak_allocated(
                lambda: bands.fuse_in_bands(encode, decode, batch, mode_of(mode), 1, 0.8, rows)
            )
            estimate = bands.fusion_bytes(fp, h, w, rows)
            assert measured <= 1.2 * estimate, (rows, measured, estimate)
            assert estimate <= (1.2 if not fused_cpu_path else 1.5) * measured


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_banded_on_cuda(precision):
    device = torch.device("cuda")
    backend = TorchBackend(random_autoencoder(LITE), None, device, cuda_graphs=False)
    ir, vis, mask = (t.to(device) for t in noise(333, 517))
    whole = backend.fuse(ir, vis, mask, mode_of("imvf"), 0.8, precision)
    encode, decode = calls(backend, precision)
    batch = encoder_batch(ir, vis, mask, "imvf")
    element = 4 if precision == "fp32" else 2
    budget = bands.fusion_bytes(bands.footprint(LITE, mode_of("imvf"), 1, element), 333, 517, 64)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    with backend._numerics(precision):  # fp32 without TF32, as TorchBackend.fuse runs it
        banded = bands.fuse_within_budget(
            encode,
            decode,
            batch,
            mode_of("imvf"),
            1,
            0.8,
            config=LITE,
            element_size=element,
            budget_bytes=budget,
        )
    peak = torch.cuda.max_memory_allocated(device) - start
    assert peak <= 1.25 * budget
    levels = int((pp.minmax_to_u8(banded).int() - pp.minmax_to_u8(whole).int()).abs().max())
    assert levels <= (1 if precision == "fp32" else 2)


@pytest.mark.parametrize("mode", MODES)
def test_banded_equals_unbanded_for_a_space_to_depth_network(mode):
    """The CPU model's layout: every level at half resolution, bands on a 16-row grid."""
    config = AutoencoderConfig(widths=(8, 16, 32, 48), stem_channels=8, space_to_depth=2)
    backend = TorchBackend(random_autoencoder(config), None, torch.device("cpu"))
    ir, vis, mask = scene(333, 517, seed=3)  # odd sizes: the padded bottom and right edges
    whole = backend.fuse(ir, vis, mask, mode_of(mode), 0.8, "fp32")
    assert whole.shape[-2:] == (517, 333)
    encode, decode = calls(backend, "fp32")
    batch = encoder_batch(ir, vis, mask, mode)
    assert [b.rows for b in bands.plan_bands(517, 96, scale=2)][0] == (0, 96)
    with pytest.raises(ValueError, match="multiple of 16"):
        bands.plan_bands(517, 88, scale=2)
    banded = bands.fuse_in_bands(encode, decode, batch, mode_of(mode), 1, 0.8, 96, scale=2)
    assert _compare(banded, whole, "fp32") <= 1
