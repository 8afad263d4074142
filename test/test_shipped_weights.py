"""Shipped autoencoder weights: loaded by default, documented, as good as their model card says."""

from __future__ import annotations

import re

import numpy as np
import torch
from conftest import shared_path

from sosmaskfuse_core.formats.image_codec import to_luma
from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.shipped import (
    SHIPPED_AUTOENCODER,
    SHIPPED_AUTOENCODER_LITE,
    resolve_autoencoder,
)
from sosmaskfuse_core.pipeline.builder import build_pipeline, build_stage
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.settings.presets import apply_preset
from sosmaskfuse_core.thermal.agc import ThermalAGC
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene
from sosmaskfuse_core.training.autoencoder import reconstruction_quality
from sosmaskfuse_core.training.data import find_images, load_gray

MODEL_CARD = SHIPPED_AUTOENCODER.parent / "MODEL_CARD.md"


def test_the_shipped_autoencoder_is_the_device_s_default():
    """`auto` (the default) is the full model on a GPU and the lite model on a CPU."""
    assert table.default("autoencoder_weights") == "auto"
    assert resolve_autoencoder("auto", on_gpu=True) == (str(SHIPPED_AUTOENCODER), "full")
    assert resolve_autoencoder("auto", on_gpu=False) == (str(SHIPPED_AUTOENCODER_LITE), "lite")
    assert resolve_autoencoder("", on_gpu=True)[1] == "full"  # earlier versions' "default"
    assert resolve_autoencoder("full", on_gpu=False)[1] == "full"  # a name beats the device
    pipeline, sources = build_pipeline(device="cpu")
    assert sources.autoencoder == f"shipped lite {SHIPPED_AUTOENCODER_LITE}"
    rng = np.random.default_rng(0)
    ir, vis = rng.integers(0, 256, (2, 48, 64), dtype=np.uint8)
    result = pipeline(ir, vis)
    assert result.fused.shape == (48, 64) and result.fused.dtype == np.uint8
    _, sources = build_pipeline("full", device="cpu")
    assert sources.autoencoder == f"shipped full {SHIPPED_AUTOENCODER}"


def test_the_paper_preset_runs_the_full_model_in_fp32():
    values = apply_preset({**table.defaults(), "preset": "paper", "device": "cpu"})
    stage, sources = build_stage(values)
    assert sources.autoencoder == f"shipped full {SHIPPED_AUTOENCODER}"
    assert stage.pipeline.config.precision == "fp32"


def test_shipped_weights_are_a_release_file_with_their_training_record():
    model, meta = load_autoencoder(SHIPPED_AUTOENCODER)
    assert meta["stored_as"] == "float16"
    assert all(p.dtype == torch.float32 for p in model.parameters())  # loaded back as fp32
    assert meta["data"]["held_out_stems"] and meta["steps"] > 0
    # the record says it met the target; the tests below measure it
    assert meta["metrics"]["psnr"] >= 40.0 and meta["metrics"]["ssim"] >= 0.985


def test_the_shipped_weights_reconstruct_to_the_target_in_every_clone():
    """Measured, not read from the file: the synthetic street (thermal and visible) at 320x256.

    These frames exist without ../shared; the held-out photographs are checked below where
    they are present.
    """
    model, _ = load_autoencoder(SHIPPED_AUTOENCODER)
    frame = SyntheticScene(320, 256, seed=0).render(1.0)
    thermal = ThermalAGC(mode="minmax").apply(frame.thermal)
    visible = to_luma(frame.visible, "rgb8")
    for image in (thermal, visible):
        assert image.std() > 10  # a real picture, not a flat field
        quality = reconstruction_quality(model, [image], torch.device("cpu"))
        assert quality["psnr"] >= 40.0 and quality["ssim"] >= 0.985, quality


def test_model_card_states_the_shipped_files_figures():
    _, meta = load_autoencoder(SHIPPED_AUTOENCODER)
    card = MODEL_CARD.read_text()
    assert f"{meta['steps']} steps" in card
    assert "sosmaskfuse eval-autoencoder" in card and "--held-out" in card
    assert re.search(r"PSNR \*\*\d+\.\d+ dB\*\*", card)


def test_held_out_reconstruction_meets_the_target():
    """Two held-out images (one RoadScene, one TNO) at full resolution.

    They are scored as eval-autoencoder scores them.
    """
    model, meta = load_autoencoder(SHIPPED_AUTOENCODER)
    held = set(meta["data"]["held_out_stems"])
    folders = [
        str(shared_path("data", "roadscene", "ir")),
        str(shared_path("data", "tno_masks", "ir")),
    ]
    paths = [p for p in find_images(folders) if p.stem in held]
    picked = [
        next(p for p in paths if "roadscene" in str(p)),
        next(p for p in paths if "tno_masks" in str(p)),
    ]
    images, skipped = load_gray(picked, min_size=16)
    assert not skipped
    quality = reconstruction_quality(model, images, torch.device("cpu"))
    assert quality["psnr"] >= 40.0 and quality["ssim"] >= 0.985, quality
