"""HRNetV2-W30 SOS network blocks against hand-checked small cases, and its key mappings."""

import math

import torch
import torch.nn.functional as F
from official_hrnet import HEAD_PREFIXES, W30, official_hrnet_keys
from parity_recipe import authors_schemas

from sosmaskfuse_core.models import sos_hrnet as hr


def _identity_bn(bn: torch.nn.BatchNorm2d, bias: float = 0.0) -> None:
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.fill_(bias)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(var + eps) = x


def _eval(module):
    return module.eval()


def test_basic_block_adds_the_residual_before_the_final_relu():
    block = hr.BasicBlock(2, 2, 0.1)
    for bn in (block.bn1, block.bn2):
        _identity_bn(bn)
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv2.weight.zero_()
    _identity_bn(block.bn2, bias=-0.5)
    x = torch.tensor([[[[1.0, 0.2]], [[0.4, 3.0]]]])
    assert torch.allclose(_eval(block)(x), torch.relu(x - 0.5), atol=1e-6)


def test_bottleneck_expands_four_times_through_the_downsample_path():
    down = hr._conv_bn(3, 8, 0.1, kernel=1, relu=False)
    block = hr.Bottleneck(3, 2, 0.1, down)
    for bn in (block.bn1, block.bn2, block.bn3, down[1]):
        _identity_bn(bn)
    with torch.no_grad():
        block.conv3.weight.zero_()
        down[0].weight.zero_()
        down[0].weight[:, 0] = -1.0  # every output channel = -channel 0
    x = torch.rand(1, 3, 4, 4)
    out = _eval(block)(x)
    assert out.shape == (1, 8, 4, 4)
    assert torch.allclose(out, torch.relu(-x[:, :1]).expand(-1, 8, -1, -1), atol=1e-6)


def test_module_fuse_upsamples_nearest_and_downsamples_with_strided_convs():
    mod = hr.HighResolutionModule((1, 1), num_blocks=1, momentum=0.1)
    for m in mod.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            _identity_bn(m)
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.zeros_(m.weight)
    with torch.no_grad():
        mod.fuse_layers[0][1][0].weight.fill_(2.0)  # 1x1 conv, high -> full resolution
        mod.fuse_layers[1][0][0][0].weight[0, 0, 1, 1] = 1.0  # stride-2 3x3: centre tap
    x0 = torch.arange(16.0).view(1, 1, 4, 4)
    x1 = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    y0, y1 = _eval(mod)([x0, x1])
    assert torch.allclose(y0, torch.relu(x0 + 2 * F.interpolate(x1, scale_factor=2.0)))
    assert torch.allclose(y1, torch.relu(x1 + x0[..., ::2, ::2]))


def test_fuse_from_two_levels_up_has_relu_between_its_strided_steps():
    mod = hr.HighResolutionModule((2, 3, 5), num_blocks=1, momentum=0.1)
    steps = mod.fuse_layers[2][0]
    assert len(steps) == 2
    assert (
        isinstance(steps[0][2], torch.nn.ReLU) and len(steps[1]) == 2
    )  # the last step has no ReLU
    assert steps[0][0].out_channels == 2 and steps[1][0].out_channels == 5


def test_transitions_match_the_spec():
    net = hr.SOSNet()
    t1 = net.transition1
    assert t1[0][0].stride == (1, 1) and (t1[0][0].in_channels, t1[0][0].out_channels) == (256, 30)
    assert t1[1][0][0].stride == (2, 2) and (
        t1[1][0][0].in_channels,
        t1[1][0][0].out_channels,
    ) == (256, 60)
    assert net.transition2[0] is None and net.transition2[1] is None
    assert (net.transition2[2][0][0].in_channels, net.transition2[2][0][0].out_channels) == (
        60,
        120,
    )
    assert (net.transition3[3][0][0].in_channels, net.transition3[3][0][0].out_channels) == (
        120,
        240,
    )
    assert [len(getattr(net, f"stage{n}")) for n in (2, 3, 4)] == [1, 4, 3]


def test_head_upsamples_branches_and_logit_with_align_corners(tiny_sosnet):
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        xs = tiny_sosnet.features(x)
        size = xs[0].shape[-2:]
        cat = torch.cat(
            [xs[0]]
            + [F.interpolate(t, size=size, mode="bilinear", align_corners=True) for t in xs[1:]],
            1,
        )
        expected = F.interpolate(
            tiny_sosnet.last_layer(cat), size=(64, 96), mode="bilinear", align_corners=True
        )
        out = tiny_sosnet(x)
    assert [t.shape[-2:] for t in xs] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert torch.allclose(out, expected, atol=1e-6)


def test_w30_has_the_papers_parameter_count():
    assert sum(p.numel() for p in hr.SOSNet().parameters()) == 26_015_425


def test_backbone_names_and_shapes_are_the_official_hrnet_ones():
    """An ImageNet HRNetV2-W30 checkpoint loads by name into the backbone.

    The official key list is written out from the published code in test/official_hrnet.py;
    ours must be it, in the same order, minus the classification head, for 3 and 1 inputs.
    """
    for in_ch in (3, 1):
        net = hr.SOSNet(hr.HRNetConfig(in_channels=in_ch))
        ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        official = official_hrnet_keys(**{**W30, "in_ch": in_ch})
        backbone = {k: s for k, s in official.items() if not k.startswith(HEAD_PREFIXES)}
        assert list(k for k in ours if not k.startswith("last_layer.")) == list(backbone)
        assert {k: s for k, s in ours.items() if not k.startswith("last_layer.")} == backbone


def test_the_official_key_list_has_the_published_sizes():
    """HRNetV2-W30-C: 37.7 M parameters (HRNet-Image-Classification's table), 1956 tensors."""
    keys = official_hrnet_keys(**W30)
    params = sum(math.prod(s) for k, s in keys.items() if not k.endswith("num_batches_tracked"))
    assert 37.7e6 <= params < 37.8e6, params
    assert len(keys) == 1956


# The authors' stem Sequential (ALGORITHM.md section 1): [0] conv, [1] BN, [3] conv, [4] BN,
# [6] layer1; transitions and stages renamed with a prefix.
AUTHORS_NAMES = (
    ("layer_thermal_1.0.", "conv1."),
    ("layer_thermal_1.1.", "bn1."),
    ("layer_thermal_1.3.", "conv2."),
    ("layer_thermal_1.4.", "bn2."),
    ("layer_thermal_1.6.", "layer1."),
    ("layer_thermal_transition", "transition"),
    ("layer_thermal_stage", "stage"),
)


def test_the_authors_sos_network_is_the_official_backbone_under_their_names():
    schema = authors_schemas()["sosnet"]
    renamed = {}
    for key, shape, _ in schema:
        if key == "encoder_thermal_conv1.weight":  # the stem conv stored a second time
            assert shape == [64, 1, 3, 3]
            continue
        for theirs, official in AUTHORS_NAMES:
            if key.startswith(theirs):
                key = official + key[len(theirs) :]
                break
        renamed[key] = tuple(shape)
    official = official_hrnet_keys(**{**W30, "in_ch": 1})
    backbone = {k: s for k, s in official.items() if not k.startswith(HEAD_PREFIXES)}
    head = {k: s for k, s in renamed.items() if k.startswith("last_layer.")}
    assert {k: s for k, s in renamed.items() if not k.startswith("last_layer.")} == backbone
    assert head["last_layer.0.weight"] == (450, 450, 1, 1) and head["last_layer.3.weight"] == (
        1,
        450,
        1,
        1,
    )


def test_key_mapping_covers_the_authors_schema():
    schema = authors_schemas()["sosnet"]
    ours = hr.SOSNet().state_dict()
    mapped = {hr.authors_to_ours(k): s for k, s, _ in schema if hr.authors_to_ours(k) is not None}
    assert set(mapped) == set(ours)
    assert all(list(ours[k].shape) == s for k, s in mapped.items())
    assert {k for k, _, _ in schema} - {hr.ours_to_authors(k) for k in ours} == {
        hr.AUTHORS_STEM_ALIAS
    }


def test_known_keys_map_as_documented():
    assert hr.authors_to_ours("layer_thermal_1.0.weight") == "conv1.weight"
    assert hr.authors_to_ours("layer_thermal_1.4.running_var") == "bn2.running_var"
    assert (
        hr.authors_to_ours("layer_thermal_1.6.0.downsample.1.bias") == "layer1.0.downsample.1.bias"
    )
    assert (
        hr.authors_to_ours("layer_thermal_stage4.2.fuse_layers.3.0.2.0.weight")
        == "stage4.2.fuse_layers.3.0.2.0.weight"
    )
    assert hr.authors_to_ours(hr.AUTHORS_STEM_ALIAS) is None
    assert (
        hr.ours_to_authors("transition3.3.0.0.weight") == "layer_thermal_transition3.3.0.0.weight"
    )
