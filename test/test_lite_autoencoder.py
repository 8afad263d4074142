"""The lite autoencoder: selected by the name `lite` everywhere, and what it is.

The tests that need the shipped file skip only when it is absent from this checkout.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from sosmaskfuse_core import cli
from sosmaskfuse_core.models import shipped
from sosmaskfuse_core.models.checkpoints import load_autoencoder
from sosmaskfuse_core.models.flops import fused_pair_gflop
from sosmaskfuse_core.models.imvf_autoencoder import IMVFAutoencoder
from sosmaskfuse_core.pipeline.builder import build_pipeline, build_stage
from sosmaskfuse_core.settings import table

LITE = shipped.SHIPPED_AUTOENCODER_LITE
needs_lite = pytest.mark.skipif(not LITE.is_file(), reason=f"{LITE} is not in this checkout")


def test_a_missing_lite_file_is_an_error_naming_it(monkeypatch, tmp_path):
    missing = tmp_path / "imvf_autoencoder_lite.pt"
    monkeypatch.setitem(shipped.SHIPPED_AUTOENCODERS, "lite", missing)
    with pytest.raises(FileNotFoundError, match="shipped lite autoencoder.*" + missing.name):
        build_pipeline("lite", device="cpu")


def test_other_names_are_paths():
    assert shipped.resolve_autoencoder("my_lite.pt") == ("my_lite.pt", None)
    assert shipped.resolve_autoencoder("./lite") == ("./lite", None)


@needs_lite
def test_lite_selects_the_shipped_lite_file_and_says_so(caplog):
    with caplog.at_level(logging.INFO):
        pipeline, sources = build_pipeline("lite", device="cpu")
    assert sources.autoencoder == f"shipped lite {LITE}"
    assert f"autoencoder: shipped lite {LITE}" in caplog.text
    rng = np.random.default_rng(0)
    ir, vis = rng.integers(0, 256, (2, 48, 64), dtype=np.uint8)
    result = pipeline(ir, vis)
    assert result.fused.shape == (48, 64) and result.fused.dtype == np.uint8


@needs_lite
def test_the_node_parameter_selects_it_too():
    stage, sources = build_stage(
        {**table.defaults(), "autoencoder_weights": "lite", "device": "cpu"}
    )
    assert sources.autoencoder.startswith("shipped lite")
    assert stage.pipeline.autoencoder.config.widths == (8, 16, 32, 48)


@needs_lite
def test_the_lite_file_is_the_paper_architecture_narrowed():
    model, meta = load_autoencoder(LITE)
    assert model.config.widths == (8, 16, 32, 48) and model.config.stem_channels == 8
    assert meta["stored_as"] == "float16" and meta["steps"] > 0
    assert meta["data"]["held_out_stems"]
    full = fused_pair_gflop(IMVFAutoencoder(), 64, 80)
    lite = fused_pair_gflop(model, 64, 80)
    assert sum(lite.values()) < sum(full.values()) / 20  # ~45x less arithmetic per pair


@needs_lite
def test_fuse_runs_the_lite_model(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for sub in ("ir", "vis"):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "a.png"), rng.integers(0, 256, (40, 56), dtype=np.uint8))
    code = cli.main(
        [
            "fuse",
            "--ir",
            str(tmp_path / "ir"),
            "--vis",
            str(tmp_path / "vis"),
            "--out",
            str(tmp_path / "out"),
            "--autoencoder",
            "lite",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert f"autoencoder: shipped lite {LITE}" in capsys.readouterr().err
    assert cv2.imread(str(tmp_path / "out" / "fused" / "a.png")).shape[:2] == (40, 56)
