"""SOSMaskFuse as the authors' code computes it, from ALGORITHM.md alone, for parity tests.

A second, deliberately plain implementation: functional torch on the authors' own state-dict
keys (no module classes, nothing from `sosmaskfuse_core`), the pre- and post-processing with
OpenCV and PIL as the reference does it. It is checked against the reference's fixture
(test/test_parity.py) and then gives the expected outputs of cases the fixture lacks (odd
sizes, colour inputs). Slow and simple on purpose; float32 on the CPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

State = dict[str, torch.Tensor]

SOS_SIZE = (640, 480)  # (width, height) the SOS network sees
BGR_MEAN = np.array([0.341, 0.360, 0.753], np.float32) * 255
BGR_STD = np.array([0.208, 0.269, 0.241], np.float32) * 255
MU, EPS = 0.8, 1e-5


# --- shared pieces ---------------------------------------------------------------------------


def _bn(x: torch.Tensor, sd: State, p: str) -> torch.Tensor:
    return F.batch_norm(
        x,
        sd[f"{p}.running_mean"],
        sd[f"{p}.running_var"],
        sd[f"{p}.weight"],
        sd[f"{p}.bias"],
        training=False,
        eps=1e-5,
    )


def _conv(x: torch.Tensor, sd: State, p: str, stride: int = 1) -> torch.Tensor:
    """Zero-padded convolution of the HRNet (padding k // 2), bias if the file has one."""
    w = sd[f"{p}.weight"]
    return F.conv2d(x, w, sd.get(f"{p}.bias"), stride=stride, padding=w.shape[-1] // 2)


# --- 1. the SOS network ------------------------------------------------------------------------


def sos_input(bgr: np.ndarray) -> torch.Tensor:
    """Section 1 pre-processing: BGR normalised per channel, resized, collapsed to one channel."""
    x = (bgr.astype(np.float32) - BGR_MEAN) / BGR_STD
    x = cv2.resize(x, SOS_SIZE, interpolation=cv2.INTER_LINEAR)
    g = 0.11 * x[..., 0] + 0.59 * x[..., 1] + 0.30 * x[..., 2]
    return torch.from_numpy(np.ascontiguousarray(g, np.float32))[None, None]


def _bottleneck(x: torch.Tensor, sd: State, p: str) -> torch.Tensor:
    out = F.relu(_bn(_conv(x, sd, f"{p}.conv1"), sd, f"{p}.bn1"))
    out = F.relu(_bn(_conv(out, sd, f"{p}.conv2"), sd, f"{p}.bn2"))
    out = _bn(_conv(out, sd, f"{p}.conv3"), sd, f"{p}.bn3")
    if f"{p}.downsample.0.weight" in sd:
        x = _bn(_conv(x, sd, f"{p}.downsample.0"), sd, f"{p}.downsample.1")
    return F.relu(out + x)


def _basic(x: torch.Tensor, sd: State, p: str) -> torch.Tensor:
    out = F.relu(_bn(_conv(x, sd, f"{p}.conv1"), sd, f"{p}.bn1"))
    out = _bn(_conv(out, sd, f"{p}.conv2"), sd, f"{p}.bn2")
    return F.relu(out + x)


def _module(xs: list[torch.Tensor], sd: State, p: str) -> list[torch.Tensor]:
    """One HighResolutionModule: BasicBlocks per branch, then the SUM fuse."""
    branches = []
    for b, x in enumerate(xs):
        k = 0
        while f"{p}.branches.{b}.{k}.conv1.weight" in sd:
            x = _basic(x, sd, f"{p}.branches.{b}.{k}")
            k += 1
        branches.append(x)
    out = []
    for i in range(len(branches)):
        y = branches[i]
        for j, z in enumerate(branches):
            f = f"{p}.fuse_layers.{i}.{j}"
            if j > i:
                z = _bn(_conv(z, sd, f"{f}.0"), sd, f"{f}.1")
                z = F.interpolate(z, scale_factor=2 ** (j - i), mode="nearest")
            elif j < i:
                for k in range(i - j):
                    z = _bn(_conv(z, sd, f"{f}.{k}.0", stride=2), sd, f"{f}.{k}.1")
                    if k < i - j - 1:
                        z = F.relu(z)
            else:
                continue
            y = y + z
        out.append(F.relu(y))
    return out


def sos_logit(sd: State, x: torch.Tensor) -> torch.Tensor:
    """The network on a 1 x 1 x 480 x 640 input: the logit at the input size."""
    size_in = x.shape[-2:]
    t = "layer_thermal_1"
    x = F.relu(_bn(_conv(x, sd, f"{t}.0", stride=2), sd, f"{t}.1"))
    x = F.relu(_bn(_conv(x, sd, f"{t}.3", stride=2), sd, f"{t}.4"))
    for b in range(4):
        x = _bottleneck(x, sd, f"{t}.6.{b}")
    xs = [x]
    for n in (1, 2, 3):
        tr = f"layer_thermal_transition{n}"
        new = []
        for i in range(n + 1):
            if f"{tr}.{i}.0.weight" in sd:  # an existing branch that changes width
                new.append(F.relu(_bn(_conv(xs[i], sd, f"{tr}.{i}.0"), sd, f"{tr}.{i}.1")))
            elif f"{tr}.{i}.0.0.weight" in sd:  # a new branch from the last one
                step = _conv(xs[-1], sd, f"{tr}.{i}.0.0", stride=2)
                new.append(F.relu(_bn(step, sd, f"{tr}.{i}.0.1")))
            else:
                new.append(xs[i])
        xs, m = new, 0
        while f"layer_thermal_stage{n + 1}.{m}.branches.0.0.conv1.weight" in sd:
            xs = _module(xs, sd, f"layer_thermal_stage{n + 1}.{m}")
            m += 1
    size = xs[0].shape[-2:]
    ups = [xs[0]] + [
        F.interpolate(z, size=size, mode="bilinear", align_corners=True) for z in xs[1:]
    ]
    y = torch.cat(ups, 1)
    y = F.relu(_bn(_conv(y, sd, "last_layer.0"), sd, "last_layer.1"))
    y = _conv(y, sd, "last_layer.3")
    return F.interpolate(y, size=size_in, mode="bilinear", align_corners=True)


def sos_probability(sd: State, bgr: np.ndarray) -> np.ndarray:
    """Section 1 end to end: H x W float32 sigmoid of the logit upsampled to the image size."""
    h, w = bgr.shape[:2]
    with torch.no_grad():
        logit = sos_logit(sd, sos_input(bgr))
        logit = F.interpolate(logit, size=(h, w), mode="bilinear", align_corners=True)
        return torch.sigmoid(logit)[0, 0].numpy()


def mask_u8(probability: np.ndarray) -> np.ndarray:
    """What the reference's PNG holds: 255 p rounded to nearest and saturated."""
    return np.clip(np.rint(255.0 * probability.astype(np.float64)), 0, 255).astype(np.uint8)


# --- 2. the IMV-F autoencoder ------------------------------------------------------------------


def luma(bgr: np.ndarray) -> np.ndarray:
    """The fusion inputs: PIL's convert('L') of the image (gray stays gray)."""
    if bgr.ndim == 2:
        return bgr
    return np.array(PIL.Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])).convert("L"))


def _layer(x: torch.Tensor, sd: State, p: str) -> torch.Tensor:
    """ConvLayer: reflection padding k // 2, convolution with bias, ReLU."""
    w = sd[f"{p}.conv2d.weight"]
    pad = w.shape[-1] // 2
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    return F.relu(F.conv2d(x, w, sd[f"{p}.conv2d.bias"]))


def _dense(x: torch.Tensor, sd: State, p: str) -> torch.Tensor:
    return _layer(_layer(x, sd, f"{p}.denseblock.0"), sd, f"{p}.denseblock.1")


def encode(sd: State, x: torch.Tensor) -> list[torch.Tensor]:
    x1 = _dense(_layer(x, sd, "conv0"), sd, "DB1_0")
    x2 = _dense(F.max_pool2d(x1, 2), sd, "DB2_0")
    x3 = _dense(F.max_pool2d(x2, 2), sd, "DB3_0")
    x4 = _dense(F.max_pool2d(x3, 2), sd, "DB4_0")
    return [x1, x2, x3, x4]


def _up(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Upsample b x2 (nearest) and reflection-pad it to a's size, left floor(d / 2)."""
    b = F.interpolate(b, scale_factor=2, mode="nearest")
    dh, dw = a.shape[-2] - b.shape[-2], a.shape[-1] - b.shape[-1]
    if dh or dw:
        b = F.pad(b, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="reflect")
    return b


def decode(sd: State, f: list[torch.Tensor]) -> torch.Tensor:
    f1, f2, f3, f4 = f
    x1_1 = _dense(torch.cat([f1, _up(f1, f2)], 1), sd, "DB1_1")
    x2_1 = _dense(torch.cat([f2, _up(f2, f3)], 1), sd, "DB2_1")
    x1_2 = _dense(torch.cat([f1, x1_1, _up(f1, x2_1)], 1), sd, "DB1_2")
    x3_1 = _dense(torch.cat([f3, _up(f3, f4)], 1), sd, "DB3_1")
    x2_2 = _dense(torch.cat([f2, x2_1, _up(f2, x3_1)], 1), sd, "DB2_2")
    x1_3 = _dense(torch.cat([f1, x1_1, x1_2, _up(f1, x2_2)], 1), sd, "DB1_3")
    return _layer(x1_3, sd, "conv_out")


def imvf(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Section 2's strategy at one level: A, B = masked / unmasked IR, C, D the same of visible."""
    pb, pd = b.mean(dim=(2, 3), keepdim=True), d.mean(dim=(2, 3), keepdim=True)
    f_c = pb / (pb + pd + EPS) * b + pd / (pb + pd + EPS) * d
    eb, ed = torch.exp(b.mean(dim=1, keepdim=True)), torch.exp(d.mean(dim=1, keepdim=True))
    f_s = eb / (eb + ed + EPS) * b + ed / (eb + ed + EPS) * d
    s = (3 * f_c + f_s) / 4
    w = s / (s + d + EPS)
    return (MU * a + (1 - MU) * c) + 0.6 * (w * s + (1 - w) * d) + 0.4 * d


def fuse_raw(sd: State, ir: np.ndarray, vis: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Decoder output (H x W float32) from 8-bit gray ir, vis and the 8-bit mask."""
    t = lambda image: torch.from_numpy(image.astype(np.float32))[None, None]  # noqa: E731
    m = t(mask) / 255.0
    ir_t, vis_t = t(ir), t(vis)
    with torch.no_grad():
        a, b = encode(sd, m * ir_t), encode(sd, (1 - m) * ir_t)
        c, d = encode(sd, m * vis_t), encode(sd, (1 - m) * vis_t)
        out = decode(sd, [imvf(*level) for level in zip(a, b, c, d)])
    return out[0, 0].numpy()


def output_u8(raw: np.ndarray) -> np.ndarray:
    """floor(255 (out - min) / (max - min)), the truncating cast."""
    raw = raw.astype(np.float32)
    return (255 * (raw - raw.min()) / (raw.max() - raw.min())).astype(np.uint8)
