"""Numeric parity with the reference implementation, on its fixture kept in test/fixtures/parity.

The expected outputs were computed by the authors' reference code with synthetic weights; this
test rebuilds those weights (test/parity_recipe.py) in the authors' file layout, runs ours and
compares. It needs nothing outside the repository. The key/shape schema of the authors' files
is ../shared/spec/checkpoint_schemas.json where that exists, else its copy in the fixture
folder (test/test_parity_fixture.py checks that the copies are the same as the originals).
"""

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO
from parity_recipe import SEEDS, authors_schemas, synthetic_state_dict

from sosmaskfuse_core import cli

FIXTURE = REPO / "test" / "fixtures" / "parity"


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory):
    """The authors'-layout checkpoint files with the fixture's synthetic weights."""
    schemas = authors_schemas()
    root = tmp_path_factory.mktemp("weights")
    ae, sos = root / "Epoch_model_1.model", root / "normal_epoch_170.pth"
    torch.save(synthetic_state_dict(schemas["autoencoder"], SEEDS["autoencoder"]), ae)
    torch.save(synthetic_state_dict(schemas["sosnet"], SEEDS["sosnet"]), sos)
    return ae, sos


def test_the_fixture_is_complete():
    cases = sorted(p.stem[len("expected_") :] for p in FIXTURE.glob("expected_*.npz"))
    assert cases == ["c_480x640"]
    for stem in cases:
        for side in ("ir", "vis"):
            assert (FIXTURE / "inputs" / side / f"{stem}.png").is_file()


def test_cli_reproduces_the_reference_outputs(tmp_path, reference_weights):
    ae_path, sos_path = reference_weights
    code = cli.main(
        [
            "fuse",
            "--ir",
            str(FIXTURE / "inputs" / "ir"),
            "--vis",
            str(FIXTURE / "inputs" / "vis"),
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
    for npz in sorted(FIXTURE.glob("expected_*.npz")):
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

    ae_path, sos_path = reference_weights
    pipe = FusionPipeline(load_autoencoder(ae_path)[0], load_sosnet(sos_path)[0], device="cpu")
    expected = np.load(FIXTURE / "expected_c_480x640.npz")
    ir = cv2.imread(str(FIXTURE / "inputs" / "ir" / "c_480x640.png"))
    vis = cv2.imread(str(FIXTURE / "inputs" / "vis" / "c_480x640.png"))
    assert np.abs(pipe.mask(ir) - expected["sos_prob"]).max() < 1e-4
    # With the reference's own 8-bit mask the decoder output agrees to float rounding.
    raw = pipe(ir, vis, mask=expected["mask_u8"]).raw
    assert np.abs(raw - expected["fused_raw"]).max() <= 1e-4 * np.abs(expected["fused_raw"]).max()
