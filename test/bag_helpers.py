"""Helpers for the bag tests: tiny checkpoints and pipelines, hand-made bags, reading bags back."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from rosbags.rosbag2 import Reader
from rosbags.serde import SerdeError

from sosmaskfuse_core.formats.image_codec import array_to_compressed, array_to_image_fields
from sosmaskfuse_core.formats.rosbag_io import (
    COMPRESSED_IMAGE,
    IMAGE,
    closing_writer,
    make_header,
    qos_profile,
    typestore,
)
from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.models.imvf_autoencoder import AutoencoderConfig, IMVFAutoencoder
from sosmaskfuse_core.models.sos_hrnet import HRNetConfig, SOSNet
from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig

SEC = 1_000_000_000
H, W = 48, 64
THERMAL, VISIBLE = "/cam/thermal/image_raw", "/cam/visible/image_raw"


@contextmanager
def one_torch_thread():
    """Tiny networks gain nothing from intra-op threads, and on a shared CPU the threads thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_models() -> tuple[IMVFAutoencoder, SOSNet]:
    """The real architectures, narrow and with random weights: fast enough for a loaded CPU."""
    torch.manual_seed(0)
    ae = IMVFAutoencoder(AutoencoderConfig(widths=(8, 8, 8, 8), stem_channels=4)).eval()
    with torch.no_grad():
        ae.encoder.stem.conv.weight.mul_(1 / 255.0)
        ae.decoder.head.conv.bias.fill_(1.0)
        # an output that varies by more than bf16's step near 1 (the `auto` precision of a
        # CPU with native bf16): else the load-time probe rightly calls it constant
        ae.decoder.head.conv.weight.mul_(10.0)
    sos = SOSNet(
        HRNetConfig(
            stem_channels=8,
            layer1_blocks=1,
            stage_channels=((4, 8), (4, 8, 16), (4, 8, 16, 32)),
            stage_modules=(1, 1, 1),
            blocks_per_branch=1,
        )
    ).eval()
    return ae, sos


def save_tiny_checkpoints(folder: Path) -> tuple[str, str]:
    ae, sos = tiny_models()
    checkpoints.save_checkpoint(folder / "ae.pt", ae)
    checkpoints.save_checkpoint(folder / "sos.pt", sos)
    return str(folder / "ae.pt"), str(folder / "sos.pt")


def tiny_pipeline(**config) -> FusionPipeline:
    """SOS network at the frame size (not the paper's 640x480), to keep tests quick.

    The paper's fusion mode: imvf-contrast assumes an autoencoder that reconstructs gray
    levels, which these random networks do not.
    """
    ae, sos = tiny_models()
    return FusionPipeline(
        ae, sos, config=PipelineConfig.paper(sos_size=None, **config), device="cpu"
    )


def image_msg(array: np.ndarray, encoding: str, stamp: int, frame_id: str = "cam"):
    fields = array_to_image_fields(array, encoding)
    return typestore().types[IMAGE](header=make_header(stamp, frame_id), **fields._asdict())


def compressed_msg(array: np.ndarray, fmt: str, stamp: int, frame_id: str = "cam"):
    fields = array_to_compressed(array, fmt)
    return typestore().types[COMPRESSED_IMAGE](
        header=make_header(stamp, frame_id), **fields._asdict()
    )


def serialize(msg) -> bytes:
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def frames(seed: int, size: tuple[int, int] = (H, W)):
    rng = np.random.default_rng(seed)
    ir = rng.integers(0, 256, size, dtype=np.uint8)
    vis = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    return ir, vis


def write_bag(path: Path, storage: str, entries, qos=None) -> None:
    """Write a bag of `entries`: (topic, log_time, message or raw bytes[, msgtype]).

    Connections are made on first use.
    """
    store = typestore()
    with closing_writer(path, storage) as writer:
        conns = {}
        for entry in entries:
            topic, log_time, msg = entry[:3]
            msgtype = entry[3] if len(entry) > 3 else msg.__msgtype__
            if topic not in conns:
                profile = (qos or {}).get(topic, qos_profile())
                conns[topic] = writer.add_connection(
                    topic, msgtype, typestore=store, offered_qos_profiles=[profile]
                )
            raw = msg if isinstance(msg, (bytes, bytearray)) else store.serialize_cdr(msg, msgtype)
            writer.write(conns[topic], log_time, raw)


def pair_entries(
    n: int,
    t0: int = 100 * SEC,
    period: int = SEC // 10,
    thermal_encoding="mono8",
    visible_encoding="rgb8",
):
    """N thermal + visible pairs with equal stamps, thermal logged first."""
    out = []
    for i in range(n):
        stamp = t0 + i * period
        ir, vis = frames(i)
        if thermal_encoding == "mono16":
            ir = (7000 + 16 * ir.astype(np.uint16)).astype(np.uint16)
        out.append((THERMAL, stamp, image_msg(ir, thermal_encoding, stamp, "thermal_frame")))
        out.append(
            (VISIBLE, stamp + 1000, image_msg(vis, visible_encoding, stamp, "visible_frame"))
        )
    return out


def read_bag(path: Path):
    """A bag read back: its messages by topic, its connections by topic, the Reader's facts.

    The messages are {topic: [(log_time, deserialized message or None, raw bytes)]}.
    """
    store = typestore()
    out, conns = {}, {}
    with Reader(path) as reader:
        for conn in reader.connections:
            conns[conn.topic] = conn
            out.setdefault(conn.topic, [])
        for conn, log_time, raw in reader.messages():
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
            except SerdeError:  # a corrupt message, copied as it was
                msg = None
            out[conn.topic].append((log_time, msg, bytes(raw)))
    return out, conns


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * SEC + msg.header.stamp.nanosec
