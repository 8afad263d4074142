"""Fusion in horizontal bands: encoder, strategy and decoder within a memory budget, same output.

The autoencoder's working set grows with the frame: the encoder keeps 64 channels of four
images at full resolution, the decoder's full-resolution nodes concatenate 176 to 304 (paper
widths). Every layer but one is local, so the frame can be fused band by band, each band
computed on a slightly taller crop (a halo) whose extra rows absorb the crop's false edges.

Receptive field (reflection-padded 3x3 convolutions, 2x2 max pools, nearest x2 upsampling):
a crop's false edge corrupts, counted in rows of each level, the encoder's features
f1..f4 by 1, 2, 2, 2 rows (a 3x3 layer adds one row, a pool halves, rounding up), that is
by at most 16 image rows (f4: 2 rows at 1/8); given exact features, the decoder's output by
7 rows (x1_1 1, x2_1 1, x1_2 3, x3_1 1, x2_2 3 at 1/2, x1_3 7). So a band of output rows
[a, b) decodes (at least) rows [a - 8, b + 8) from features encoded on (at least) rows
[a - 24, b + 24); the strategy runs on the decoded rows only. Crop edges are multiples of
8, so every crop's pooling grid is the image's; a crop that reaches the image's top or
bottom takes the image's own edge (its reflection padding, and `upsample_to`'s padding of
odd sizes, which is at the bottom only), so those rows are computed exactly as for the
whole image. `test/test_bands.py` measures both receptive fields on the real architecture.

A space-to-depth network (`AutoencoderConfig.space_to_depth` s) runs every level at 1/s of
these resolutions: the grid, the halos and the rows of each level scale by s.

The one global term: SCA's channel weights use each channel's spatial mean over the whole
image (`strategies.spatial_channel_attention`). A first pass encodes the images they come
from (`FusionMode.mean_images`: the two backgrounds for imvf, both images for sca, none for
addition) band by band and sums each channel over the band's own rows (no halo);
the second pass gives these means to the strategy. The spatial softmax is per
pixel and needs nothing. The first pass costs the encoder on half the images (imvf), a few
percent of the decoder's work.

Every convolution of a band gives the whole frame's numbers (the `addition` mode, which has
no global term, is bit for bit the unbanded one); the means differ from the whole image's
fp32 means in the last bits (summation order). In fp32 that moves the output by ~1e-6 of
its range, at most one gray level after the 8-bit stretch; in bf16 such a change can move
a rounding to bf16, which is a gray level above 128: at most two after the stretch, on a
few pixels in 10^5 (`benchmarks/bench_memory.py`). The band height follows from a budget in
bytes (`band_rows`,
estimated by `fusion_bytes` from the widths, the batch and the precision), so the same
code serves a small board and a desktop GPU; a frame whose whole pass fits the budget is
fused in one piece, exactly as without banding. Backend-agnostic: `encode` and `decode`
are the backend's calls, the tensors may live on any device, and nothing synchronises
with the host (a CUDA graph can capture the whole banded pass).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig

from .fusion_modes import FusionMode

#: Band edges are multiples of this (the encoder pools three times).
ALIGN = 8
#: Rows beyond a crop's false edge that the decoder's output needs (its receptive field: 7).
DECODER_HALO = 8
#: Rows beyond a crop's false edge that the encoder's features need (f4: 2 rows at 1/8).
ENCODER_HALO = 16
#: Fewest output rows of a band.
MIN_ROWS = ALIGN

Encode = Callable[[torch.Tensor], Sequence[torch.Tensor]]
Decode = Callable[[Sequence[torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Band:
    """One band: the output rows it owns, the rows decoded and the rows encoded for them."""

    rows: tuple[int, int]
    decoded: tuple[int, int]
    encoded: tuple[int, int]


def _window(start: int, stop: int, rows: int, height: int, grid: int) -> tuple[int, int]:
    """`rows` rows (a multiple of `grid`) around [start, stop), on the grid, inside the image.

    Shifted rather than clipped at the image's edges, so that every band's crop has the same
    height (the allocator reuses the same blocks band after band); a window that ends less
    than a grid step short of the bottom goes down to it (the bottom edge must be the image's).
    """
    if rows >= height:
        return 0, height
    lo = max(0, min(start, (height - rows) // grid * grid))
    hi = lo + rows
    return lo, (height if height - hi < grid or hi < stop else hi)


def plan_bands(
    height: int, rows: int | None, decoder_halo: int = DECODER_HALO, scale: int = 1
) -> list[Band]:
    """The fewest bands of at most `rows` output rows (a multiple of 8) covering `height` rows.

    Band heights are multiples of 8 (the last band ends at the image's bottom) and differ by
    at most 8: no thin last band paying a whole halo. `rows` None or >= height: one band,
    the whole image. Each band decodes at least `decoder_halo` rows beyond its own on each
    side (or up to the image's edge) and encodes at least ENCODER_HALO rows beyond those;
    all bands decode (and encode) crops of one height, up to 7 rows more for the lowest.
    `decoder_halo` 0 plans the first pass, which encodes only. `scale`: the network's
    space-to-depth factor, which multiplies the grid and both halos.
    """
    if height < 1:
        raise ValueError(f"height {height}: expected at least one row")
    if rows is None or rows >= height:
        return [Band((0, height), (0, height), (0, height))]
    grid = ALIGN * scale
    if rows < MIN_ROWS * scale or rows % grid:
        raise ValueError(f"band rows {rows}: expected a multiple of {grid}, at least {grid}")
    count = math.ceil(height / rows)
    blocks = math.ceil(height / grid)  # of `grid` rows; the first blocks % count get one more
    tallest = grid * math.ceil(blocks / count)
    decoded_rows = tallest + 2 * decoder_halo * scale
    encoded_rows = decoded_rows + 2 * ENCODER_HALO * scale
    bands, a = [], 0
    for i in range(count):
        b = min(height, a + grid * (blocks // count + (i < blocks % count)))
        d0, d1 = _window(
            a - decoder_halo * scale, b + decoder_halo * scale, decoded_rows, height, grid
        )
        e0, e1 = _window(
            d0 - ENCODER_HALO * scale, d1 + ENCODER_HALO * scale, encoded_rows, height, grid
        )
        bands.append(Band((a, b), (d0, d1), (e0, e1)))
        a = b
    return bands


def _level_rows(
    f: torch.Tensor, shift: int, crop_start: int, rows: tuple[int, int]
) -> torch.Tensor:
    """Rows [rows) of the image (image-row numbers) of a crop's map at 1/2^shift resolution.

    The bottom row may be the image's last (its own, possibly padded, size).
    """
    lo = (rows[0] >> shift) - (crop_start >> shift)
    hi = -(-rows[1] >> shift) - (crop_start >> shift)
    return f[:, :, lo:hi]


def _shift(scale: int, level: int) -> int:
    """log2 of a level's downsampling: the space-to-depth factor times 2^level."""
    return scale.bit_length() - 1 + level


# --- the global term ---------------------------------------------------------------------------


def channel_means(
    encode: Encode, images: torch.Tensor, rows: int | None = None, scale: int = 1
) -> list[torch.Tensor]:
    """Each level's spatial channel means (fp32, B x C x 1 x 1) of `encode(images)`.

    Encoded band by band (`rows` output rows a band; None: at once), each band's own rows
    summed in fp32 and the bands' sums added in fp64: the means of the whole image's
    features up to summation order (an fp64 sum of every pixel costs ten times more).
    """
    height = images.shape[-2]
    sums: list[torch.Tensor] | None = None
    counts: list[int] = []
    for band in plan_bands(height, rows, decoder_halo=0, scale=scale):
        e0, e1 = band.encoded
        feats = encode(images[:, :, e0:e1])
        own = [_level_rows(f, _shift(scale, k), e0, band.rows) for k, f in enumerate(feats)]
        parts = [  # fp32 sums (as exact as the whole image's fp32 mean), added up in fp64
            f.sum(dim=(2, 3), keepdim=True, dtype=torch.float32).double() for f in own
        ]
        pixels = [f.shape[-2] * f.shape[-1] for f in own]
        del feats, own
        sums = parts if sums is None else [s + p for s, p in zip(sums, parts)]
        counts = pixels if not counts else [c + p for c, p in zip(counts, pixels)]
    assert sums is not None
    return [(s / c).float() for s, c in zip(sums, counts)]


# --- the banded pass ---------------------------------------------------------------------------


def fuse_in_bands(
    encode: Encode,
    decode: Decode,
    batch: torch.Tensor,
    mode: FusionMode,
    n: int,
    mu: float,
    rows: int | None,
    scale: int = 1,
) -> torch.Tensor:
    """Encoder, `fuse_levels` and decoder on an encoder batch, `rows` output rows at a time.

    batch: the encoder's input for `mode` (`FusionMode.encoder_input`: 4n images for imvf, 2n
    otherwise), N' x 1 x H x W. encode / decode: the backend's calls (a crop's batch -> four
    levels; four levels -> N x 1 x h x W, fp32). rows: a band's output rows (a multiple of
    8 scale), None for the whole frame in one piece, which is then computed exactly as
    `decode(mode.fuse_levels(encode(batch), n, mu))`. scale: the network's space-to-depth
    factor. The first pass (SCA's channel means) runs in bands of the same height, so the
    allocator reuses its blocks. Returns N x 1 x H x W fp32 (a padded decoder output cropped).
    """
    height, width = batch.shape[-2:]
    bands = plan_bands(height, rows, scale=scale)
    if len(bands) == 1:
        return decode(mode.fuse_levels(encode(batch), n, mu))[..., :height, :width]
    images = mode.mean_images(batch, n)
    means = None
    if images is not None:
        means = channel_means(encode, images, rows, scale)
        del images
    out = None
    for band in bands:
        e0, e1 = band.encoded
        feats = encode(batch[:, :, e0:e1])
        feats = [_level_rows(f, _shift(scale, k), e0, band.decoded) for k, f in enumerate(feats)]
        fused = mode.fuse_levels(feats, n, mu, channel_means=means)
        del feats  # the encoder's maps go before the decoder's arrive
        y = decode(fused)
        del fused
        if out is None:
            out = y.new_empty((y.shape[0], y.shape[1], height, width))
        d0 = band.decoded[0]
        a, b = band.rows
        out[:, :, a:b].copy_(y[:, :, a - d0 : b - d0, :width])
    assert out is not None
    return out


# --- the budget --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """Estimated bytes per pixel (of a crop's full-resolution rows) of each phase of a band.

    encoder: encoding the crop's batch; features: the encoder's maps held through the
    strategy; strategy: the fp32 strategy's maps on the decoded rows; decoder: decoding
    (its fp32 inputs included); means: the first pass's encoder (0 without a global term);
    output: the fp32 output image. Scratch memory of the convolution library (oneDNN's
    reorders, cuDNN's workspace) is not counted: up to 15% more on the CPU.
    """

    encoder: float
    features: float
    strategy: float
    decoder: float
    means: float
    output: float


def footprint(config: AutoencoderConfig, mode: FusionMode, n: int, element_size: int) -> Footprint:
    """The working set of the fusion per full-resolution pixel, counted from the widths.

    Counts, in channels per full-resolution pixel (a map at 1/2 counts a quarter), the
    tensors alive at each phase's largest moment in PyTorch's plain path (a decoder node
    holds its concatenation and its padded copy at once; the CPU's fused path holds less).
    `element_size`: bytes of the networks' precision (4 fp32, 2 bf16/fp16); the strategy is
    fp32. A space-to-depth network's maps are at 1/s: every term but the input and the output
    divides by s^2. Checked against measured peaks in test/test_bands.py.
    """
    w1, w2, w3, w4 = config.widths
    s = config.stem_channels
    e = element_size / config.space_to_depth**2  # bytes per image pixel of a map channel
    half = element_size != 4
    images = mode.groups * n
    feat = w1 + w2 / 4 + w3 / 16 + w4 / 64  # the four levels' maps
    # one image in the encoder: its input and cast copy, then the largest of: the stem, its
    # padded copy and the 3x3 layer; the stem, the 3x3 layer and f1; f1 and level 2's pooled
    # map, padded copy, 3x3 layer or f2; the coarser levels (all features and a little)
    per_image = max(
        2 + 2.5 * s,
        2 + 1.5 * s + w1,
        w1 + w1 / 4 + w1 / 8 + max(w1 / 4, w2 / 4),
        feat + w2 / 8,
    )
    encoder = images * per_image * e
    features = images * feat * e
    # level 1 of the strategy: five fp32 maps of one group (a half precision adds the
    # level's fp32 copy of all groups)
    area = 1.0 / config.space_to_depth**2
    strategy = (n * 5 * w1 * 4 + (images * w1 * 4 if half else 0)) * area
    # decoder at node1_3: its fp32 inputs (+ a cast copy), x1_1, x1_2, the 1/2 and 1/4
    # maps, the concatenation, its padded copy and the 3x3 layer's output
    cat = 3 * w1 + w2
    decoder = n * (
        feat * (4 * area + (e if half else 0)) + (2 * w1 + w2 / 2 + w3 / 16 + 2.5 * cat + 1) * e
    )
    means = len(mode.mean_groups) * n * per_image * e
    return Footprint(encoder, features, strategy, decoder, means, 4.0 * n)


def fusion_bytes(
    fp: Footprint, height: int, width: int, rows: int | None, scale: int = 1
) -> float:
    """Estimated peak working set of the fusion of a height x width frame in bands of `rows`.

    Banded, the fp32 output image (`fp.output` per pixel) is held throughout.
    """
    if rows is None or rows >= height:
        return width * height * max(fp.encoder, fp.features + fp.strategy, fp.decoder)
    plan = plan_bands(height, rows, scale=scale)
    decoded = max(b.decoded[1] - b.decoded[0] for b in plan)
    encoded = max(b.encoded[1] - b.encoded[0] for b in plan)
    first = plan_bands(height, rows, decoder_halo=0, scale=scale)
    means = max(b.encoded[1] - b.encoded[0] for b in first)
    return width * (
        fp.output * height
        + max(
            fp.encoder * encoded,
            fp.features * encoded + fp.strategy * decoded,
            (fp.decoder + fp.output) * decoded,
            fp.means * means,
        )
    )


@functools.lru_cache(maxsize=64)
def band_rows(
    fp: Footprint, height: int, width: int, budget_bytes: float, scale: int = 1
) -> int | None:
    """The band height for a budget: None when the whole frame fits, else a multiple of 8.

    The tallest bands within the budget (`fusion_bytes` grows with the band height: a
    bisection); MIN_ROWS when not even those fit (the budget is then exceeded, by the least
    possible). Cached: a video asks for the same frame size every time.
    """
    if fusion_bytes(fp, height, width, None) <= budget_bytes:
        return None
    grid = ALIGN * scale
    lo, hi = 1, max(1, (height - 1) // grid)  # in grid steps; lo is returned if none fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fusion_bytes(fp, height, width, mid * grid, scale) <= budget_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo * grid


def fuse_within_budget(
    encode: Encode,
    decode: Decode,
    batch: torch.Tensor,
    mode: FusionMode,
    n: int,
    mu: float,
    *,
    config: AutoencoderConfig,
    element_size: int,
    budget_bytes: float | None,
) -> torch.Tensor:
    """`fuse_in_bands` in bands as tall as the budget allows (None: no limit, one piece).

    config: the autoencoder's widths; element_size: bytes of the networks' precision (4 fp32,
    2 bf16/fp16). A frame whose whole pass fits the budget is fused in one piece.
    """
    rows = None
    scale = config.space_to_depth
    if budget_bytes is not None:
        fp = footprint(config, mode, n, element_size)
        rows = band_rows(fp, batch.shape[-2], batch.shape[-1], budget_bytes, scale)
    return fuse_in_bands(encode, decode, batch, mode, n, mu, rows, scale)


__all__ = [
    "ALIGN",
    "DECODER_HALO",
    "ENCODER_HALO",
    "Band",
    "Footprint",
    "band_rows",
    "channel_means",
    "footprint",
    "fuse_in_bands",
    "fuse_within_budget",
    "fusion_bytes",
    "plan_bands",
]
