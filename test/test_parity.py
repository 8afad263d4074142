"""Numeric parity with the reference implementation on the shared fixture (synthetic weights)."""

import importlib.util
import json

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from sosmaskfuse_core import cli


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory):
    """The authors'-layout checkpoint files built by the fixture's recipe."""
    fixture = shared_path("fixtures", "parity")
    spec = importlib.util.spec_from_file_location("weights_recipe", fixture / "weights_recipe.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    schemas = json.loads(shared_path("spec", "checkpoint_schemas.json").read_text())
    root = tmp_path_factory.mktemp("weights")
    torch.save(recipe.fill_state_dict(schemas["autoencoder"], 1000), root / "Epoch_model_1.model")
    torch.save(recipe.fill_state_dict(schemas["sosnet"], 2000), root / "normal_epoch_170.pth")
    return root / "Epoch_model_1.model", root / "normal_epoch_170.pth", fixture


def test_cli_reproduces_the_reference_outputs(tmp_path, reference_weights):
    ae_path, sos_path, fixture = reference_weights
    code = cli.main(
        [
            "fuse",
            "--ir",
            str(fixture / "inputs" / "ir"),
            "--vis",
            str(fixture / "inputs" / "vis"),
            "--out",
            str(tmp_path),
            "--autoencoder",
            str(ae_path),
            "--sosnet",
            str(sos_path),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    for npz in sorted(fixture.glob("expected_*.npz")):
        stem = npz.stem[len("expected_") :]
        expected = np.load(npz)
        mask = cv2.imread(str(tmp_path / "mask" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        fused = cv2.imread(str(tmp_path / "fused" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        for ours, theirs in ((mask, expected["mask_u8"]), (fused, expected["fused_u8"])):
            close = np.abs(ours.astype(int) - theirs.astype(int)) <= 1
            assert close.mean() >= 0.999, f"{stem}: only {close.mean():.4%} within 1 gray level"


def test_sos_probability_and_raw_output_match(reference_weights):
    from sosmaskfuse_core.models.checkpoints import load_autoencoder, load_sosnet
    from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline

    ae_path, sos_path, fixture = reference_weights
    pipe = FusionPipeline(load_autoencoder(ae_path)[0], load_sosnet(sos_path)[0], device="cpu")
    expected = np.load(fixture / "expected_c_480x640.npz")
    ir = cv2.imread(str(fixture / "inputs" / "ir" / "c_480x640.png"))
    vis = cv2.imread(str(fixture / "inputs" / "vis" / "c_480x640.png"))
    assert np.abs(pipe.mask(ir) - expected["sos_prob"]).max() < 1e-4
    # With the reference's own 8-bit mask the decoder output agrees to float rounding.
    raw = pipe(ir, vis, mask=expected["mask_u8"]).raw
    assert np.abs(raw - expected["fused_raw"]).max() <= 1e-4 * np.abs(expected["fused_raw"]).max()
