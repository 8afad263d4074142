"""IMV-F autoencoder blocks against hand-checked small cases, and its key mapping."""

import json

import pytest
import torch
from conftest import SHARED

from sosmaskfuse_core.models import imvf_autoencoder as ae
from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder


def test_conv_layer_reflection_pads_then_applies_bias_and_relu():
    layer = ae.ConvLayer(1, 1, 3)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left neighbour
        layer.conv.bias.fill_(-1.0)
    x = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]])
    # Reflection padding mirrors without repeating the edge: the top-left neighbour of
    # (0, 0) is x[1, 1] = 5, of (0, 1) is x[1, 0] = 4, of (1, 2) is x[0, 1] = 2.
    expected = torch.relu(torch.tensor([[[[5.0, 4.0, 5.0], [2.0, 1.0, 2.0]]]]) - 1.0)
    assert torch.equal(layer(x), expected)


def test_output_layer_keeps_its_relu():
    layer = ae.ConvLayer(1, 1, 1)
    with torch.no_grad():
        layer.conv.weight.fill_(-1.0)
        layer.conv.bias.zero_()
    assert torch.equal(layer(torch.ones(1, 1, 2, 2)), torch.zeros(1, 1, 2, 2))


def test_dense_block_halves_then_expands():
    block = ae.DenseBlockLight(176, 64)
    assert block.reduce.conv.weight.shape == (88, 176, 3, 3)
    assert block.expand.conv.weight.shape == (64, 88, 1, 1)


@pytest.mark.parametrize("h,w", [(16, 16), (17, 23), (19, 16)])
def test_encoder_levels_use_floor_max_pooling(h, w):
    feats = ae.Encoder(ae.AutoencoderConfig())(torch.rand(1, 1, h, w) * 255)
    sizes = [tuple(f.shape[-2:]) for f in feats]
    assert sizes == [(h, w), (h // 2, w // 2), (h // 4, w // 4), (h // 8, w // 8)]
    assert [f.shape[1] for f in feats] == [64, 112, 160, 208]


def test_upsample_to_pads_floor_half_before_and_the_rest_after():
    ref = torch.zeros(1, 1, 5, 7)
    x = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]])  # -> 4 x 6 after x2 nearest
    y = ae.upsample_to(ref, x)
    assert y.shape[-2:] == (5, 7)
    # Height shortfall 1: 0 rows on top, 1 reflected row at the bottom (a copy of row 2 = x row 1).
    # Width shortfall 1: 0 columns left, 1 reflected column right (= column 4 = x column 2).
    assert y[0, 0, 4].tolist() == [4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 6.0]
    assert y[0, 0, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    even = ae.upsample_to(torch.zeros(1, 1, 4, 6), x)
    assert torch.equal(even, torch.nn.functional.interpolate(x, scale_factor=2.0))


@pytest.mark.parametrize("h,w", [(32, 32), (33, 47), (21, 30)])
def test_autoencoder_reconstructs_the_input_size_and_is_nonnegative(h, w):
    model = ae.IMVFAutoencoder().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, h, w) * 255)
    assert out.shape == (2, 1, h, w)
    assert (out >= 0).all()  # the output layer has a ReLU


def test_decoder_input_widths_follow_the_nested_connections():
    d = ae.Decoder(ae.AutoencoderConfig())
    widths = {n: getattr(d, f"node{n}").reduce.conv.in_channels for n in ae.DECODER_NODES}
    assert widths == {"1_1": 176, "2_1": 272, "1_2": 240, "3_1": 368, "2_2": 384, "1_3": 304}


def test_key_mapping_covers_the_authors_schema_both_ways():
    path = SHARED / "spec" / "checkpoint_schemas.json"
    if not path.exists():
        pytest.skip("../shared/spec is absent")
    schema = json.loads(path.read_text())["autoencoder"]
    ours = ae.IMVFAutoencoder().state_dict()
    mapped = {ae.authors_to_ours(k): shape for k, shape, _ in schema}
    assert set(mapped) == set(ours)
    assert all(list(ours[k].shape) == s for k, s in mapped.items())
    assert all(ae.authors_to_ours(ae.ours_to_authors(k)) == k for k in ours)


def test_known_keys_map_as_documented():
    assert ae.authors_to_ours("conv0.conv2d.weight") == "encoder.stem.conv.weight"
    assert (
        ae.authors_to_ours("DB3_0.denseblock.1.conv2d.bias") == "encoder.levels.2.expand.conv.bias"
    )
    assert (
        ae.authors_to_ours("DB1_3.denseblock.0.conv2d.weight")
        == "decoder.node1_3.reduce.conv.weight"
    )
    assert ae.authors_to_ours("conv_out.conv2d.bias") == "decoder.head.conv.bias"
    assert sum(p.numel() for p in ae.IMVFAutoencoder().parameters()) == 2_732_761


def test_space_to_depth_runs_every_convolution_at_half_resolution():
    from sosmaskfuse_core.models.flops import fused_pair_gflop

    plain = IMVFAutoencoder(AutoencoderConfig(widths=(8, 16, 32, 48), stem_channels=8))
    s2d = IMVFAutoencoder(
        AutoencoderConfig(widths=(8, 16, 32, 48), stem_channels=8, space_to_depth=2)
    ).eval()
    work = [sum(fused_pair_gflop(m, 96, 128).values()) for m in (plain, s2d)]
    assert work[1] == pytest.approx(work[0] / 4, rel=0.02)  # only the 1x1 stem/head differ
    with torch.no_grad():
        feats = s2d.encoder(torch.rand(1, 1, 96, 128))
        assert [f.shape[-2:] for f in feats] == [(48, 64), (24, 32), (12, 16), (6, 8)]
        # odd sizes: padded to a multiple of 2 inside, the output cropped back
        x = torch.rand(2, 1, 45, 61) * 255
        assert s2d(x).shape == (2, 1, 45, 61)
        assert s2d.config.min_size == 32


def test_space_to_depth_is_pixel_unshuffle_then_the_network():
    """A 2x2 block's four pixels reach the stem as its four channels, nothing mixed or lost."""
    s2d = IMVFAutoencoder(
        AutoencoderConfig(widths=(4, 8, 8, 8), stem_channels=4, space_to_depth=2)
    ).eval()
    x = torch.arange(64 * 64, dtype=torch.float32).view(1, 1, 64, 64)
    seen = []
    s2d.encoder.stem.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        s2d.encoder(x)
    block = seen[0][0, :, 0, 0].tolist()  # the top-left position's channels
    assert block == [x[0, 0, 0, 0].item(), x[0, 0, 0, 1].item(), x[0, 0, 1, 0].item(), 65.0]


def test_config_round_trip_and_files_before_space_to_depth():
    cfg = AutoencoderConfig(widths=(8, 16, 32, 48), stem_channels=8, space_to_depth=2)
    assert AutoencoderConfig.from_dict(cfg.to_dict()) == cfg
    old = {"widths": [8, 16, 32, 48], "stem_channels": 8}  # what earlier files hold
    assert AutoencoderConfig.from_dict(old).space_to_depth == 1
    with pytest.raises(ValueError, match="space_to_depth 3"):
        AutoencoderConfig(space_to_depth=3)
