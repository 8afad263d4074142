"""The weight-free fusion strategies against hand-computed values."""

import math

import pytest
import torch

from sosmaskfuse_core.pipeline import strategies as fusion
from sosmaskfuse_core.pipeline.fusion_modes import fusion_mode


def test_sca_on_a_hand_computed_case():
    # One channel, two pixels: x = [1, 3], y = [3, 1].
    x = torch.tensor([1.0, 3.0]).view(1, 1, 1, 2)
    y = torch.tensor([3.0, 1.0]).view(1, 1, 1, 2)
    eps = fusion.EPS
    # channel means are both 2 -> weights 2 / (4 + eps) each:
    # F_c = (x + y) * 2 / (4 + eps) = 4 * 2/(4+eps)
    fc = 4.0 * 2.0 / (4.0 + eps)
    # spatial: pixel 0: e^1 / (e^1 + e^3 + eps) for x, e^3 / (...) for y
    d0 = math.exp(1) + math.exp(3) + eps
    fs0 = (math.exp(1) * 1.0 + math.exp(3) * 3.0) / d0
    d1 = math.exp(3) + math.exp(1) + eps
    fs1 = (math.exp(3) * 3.0 + math.exp(1) * 1.0) / d1
    out = fusion.spatial_channel_attention(x, y)
    assert torch.allclose(
        out, torch.tensor([(3 * fc + fs0) / 4, (3 * fc + fs1) / 4]).view(1, 1, 1, 2)
    )


def test_sca_is_symmetric():
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5)
    assert torch.allclose(
        fusion.spatial_channel_attention(a, b), fusion.spatial_channel_attention(b, a)
    )


def test_imvf_follows_the_formula():
    torch.manual_seed(1)
    a, b, c, d = (torch.rand(1, 2, 3, 3) for _ in range(4))
    s = fusion.spatial_channel_attention(b, d)
    w = s / (s + d + fusion.EPS)
    expected = 0.7 * a + 0.3 * c + 0.6 * (w * s + (1 - w) * d) + 0.4 * d
    assert torch.allclose(fusion.imvf(a, b, c, d, mu=0.7), expected)


def test_imvf_mu_one_takes_only_thermal_foreground():
    a, c = torch.rand(1, 2, 3, 3), torch.rand(1, 2, 3, 3)
    zero = torch.zeros(1, 2, 3, 3)
    assert torch.allclose(fusion.imvf(a, zero, c, zero, mu=1.0), a)
    assert torch.allclose(fusion.imvf(a, zero, c, zero, mu=0.0), c)


def test_fuse_levels_splits_the_encoder_batch_in_groups():
    n = 2
    feats = [torch.arange(4 * n, dtype=torch.float32).view(4 * n, 1, 1, 1).expand(-1, 2, 2, 2)]
    out = fusion_mode("addition").fuse_levels([f[: 2 * n] for f in feats], n, 0.8)
    assert torch.equal(out[0][:, 0, 0, 0], torch.tensor([1.0, 2.0]))  # mean of (0, 2) and (1, 3)
    with pytest.raises(ValueError, match="fusion mode 'nope'"):
        fusion_mode("nope")


def test_every_fusion_mode_of_the_table_has_one_record():
    from sosmaskfuse_core.pipeline.fusion_modes import MODES
    from sosmaskfuse_core.settings.table import FUSION_MODES

    assert tuple(MODES) == FUSION_MODES
    assert [m.groups for m in MODES.values()] == [4, 4, 2, 2]
    assert [m.guards_contrast for m in MODES.values()] == [False, True, False, False]
    ir, vis, mask = (torch.full((1, 1, 2, 2), v) for v in (10.0, 20.0, 0.25))
    batch = fusion_mode("imvf").encoder_input(ir, vis, mask)
    assert batch[:, 0, 0, 0].tolist() == [2.5, 7.5, 5.0, 15.0]  # m ir, (1-m) ir, m vis, ...
    assert fusion_mode("sca").encoder_input(ir, vis, mask)[:, 0, 0, 0].tolist() == [10.0, 20.0]
