"""Paper-exact pre/post-processing: luma, SOS input, mask quantisation and the output stretch."""

import cv2
import numpy as np
import pytest
import torch

from sosmaskfuse_core.pipeline import preprocessing as pp


def _nchw(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(a)
    return (t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]).contiguous()


def test_luma_matches_pil_convert_l():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[0, :4] = [[255, 255, 255], [0, 0, 0], [1, 2, 3], [128, 128, 127]]
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    ours = pp.luma_u8(_nchw(rgb[..., ::-1].copy()))[0, 0].numpy()
    assert np.array_equal(ours, expected)


def test_luma_of_gray_replicated_is_exact():
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(pp.luma_u8(_nchw(np.dstack([g, g, g])))[0, 0].numpy(), g)


@pytest.mark.parametrize("h,w", [(480, 640), (251, 333), (600, 801)])
def test_sos_input_matches_the_reference_order_of_operations(h, w):
    rng = np.random.default_rng(h)
    bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # The reference: normalise each channel, cv2.resize to 640x480 bilinear,
    # collapse 0.11/0.59/0.30.
    x = bgr.astype(np.float64)
    x = (x - np.array(pp.SOS_MEAN_BGR)) / np.array(pp.SOS_STD_BGR)
    x = cv2.resize(x.astype(np.float32), (640, 480), interpolation=cv2.INTER_LINEAR)
    ref = 0.11 * x[..., 0] + 0.59 * x[..., 1] + 0.30 * x[..., 2]
    ours = pp.sos_input(_nchw(bgr))[0, 0].numpy()
    assert ours.shape == (480, 640)
    assert np.abs(ours - ref).max() < 2e-6


def test_quantize_mask_rounds_to_nearest():
    p = torch.tensor([0.0, 0.5 / 255, 0.49 / 255, 1.0, 1.2, 127.6 / 255])
    assert pp.quantize_mask(p).tolist() == [0, 0, 0, 255, 255, 128]


def test_minmax_truncates_and_handles_constant_images(caplog):
    out = torch.tensor([0.0, 0.5, 1.0, 0.999]).view(1, 1, 1, 4)
    assert pp.minmax_to_u8(out).flatten().tolist() == [0, 127, 255, 254]
    flat = torch.full((1, 1, 2, 2), 3.0)
    assert pp.minmax_to_u8(flat).flatten().tolist() == [0, 0, 0, 0]
    assert "constant" in caplog.text


def test_clip_rounds_and_saturates():
    out = torch.tensor([-3.0, 0.4, 0.6, 254.5, 300.0]).view(1, 1, 1, 5)
    assert pp.clip_to_u8(out).flatten().tolist() == [0, 0, 1, 254, 255]
