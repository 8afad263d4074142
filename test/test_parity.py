"""Numeric parity with the reference implementation, on its fixture kept in test/fixtures/parity.

The expected outputs were computed by the authors' reference code with synthetic weights; this
test rebuilds those weights (test/parity_recipe.py) in the authors' file layout, runs ours and
compares. It needs nothing outside the repository. The key/shape schema of the authors' files
is ../shared/spec/checkpoint_schemas.json where that exists, else its copy in the fixture
folder (test/test_parity_fixture.py checks that the copies are the same as the originals).

The fixture has one gray 480x640 pair. For an odd-size colour pair the expected outputs come
from test/reference_sosmaskfuse.py, a second implementation written from ALGORITHM.md alone
(functional torch on the authors' keys, OpenCV and PIL as the reference uses them), which is
first checked against the fixture here.
"""

import cv2
import numpy as np
import pytest
import reference_sosmaskfuse as spec
import torch
from conftest import REPO
from parity_recipe import SEEDS, authors_schemas, synthetic_state_dict

from sosmaskfuse_core import cli
from sosmaskfuse_core.tools.synthetic_scene import SyntheticScene

FIXTURE = REPO / "test" / "fixtures" / "parity"


@pytest.fixture(scope="module")
def state_dicts():
    """The fixture's synthetic weights: (autoencoder, SOS network) in the authors' key layout."""
    schemas = authors_schemas()
    return (
        synthetic_state_dict(schemas["autoencoder"], SEEDS["autoencoder"]),
        synthetic_state_dict(schemas["sosnet"], SEEDS["sosnet"]),
    )


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory, state_dicts):
    """The authors'-layout checkpoint files with the fixture's synthetic weights."""
    root = tmp_path_factory.mktemp("weights")
    ae, sos = root / "Epoch_model_1.model", root / "normal_epoch_170.pth"
    torch.save(state_dicts[0], ae)
    torch.save(state_dicts[1], sos)
    return ae, sos


def within_one_level(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float((np.abs(ours.astype(int) - theirs.astype(int)) <= 1).mean())


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
            "--preset",
            "paper",
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
    from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig

    ae_path, sos_path = reference_weights
    pipe = FusionPipeline(
        load_autoencoder(ae_path)[0],
        load_sosnet(sos_path)[0],
        device="cpu",
        config=PipelineConfig.paper(),
    )
    expected = np.load(FIXTURE / "expected_c_480x640.npz")
    ir = cv2.imread(str(FIXTURE / "inputs" / "ir" / "c_480x640.png"))
    vis = cv2.imread(str(FIXTURE / "inputs" / "vis" / "c_480x640.png"))
    assert np.abs(pipe.mask(ir) - expected["sos_prob"]).max() < 1e-4
    # With the reference's own 8-bit mask the decoder output agrees to float rounding.
    raw = pipe(ir, vis, mask=expected["mask_u8"]).raw
    assert np.abs(raw - expected["fused_raw"]).max() <= 1e-4 * np.abs(expected["fused_raw"]).max()


def test_the_spec_reference_reproduces_the_fixture(state_dicts):
    """The second implementation agrees with the authors' numbers as closely as ours must."""
    ae, sos = state_dicts
    expected = np.load(FIXTURE / "expected_c_480x640.npz")
    ir = cv2.imread(str(FIXTURE / "inputs" / "ir" / "c_480x640.png"))
    vis = cv2.imread(str(FIXTURE / "inputs" / "vis" / "c_480x640.png"))
    probability = spec.sos_probability(sos, ir)
    assert np.abs(probability - expected["sos_prob"]).max() < 1e-4
    assert within_one_level(spec.mask_u8(probability), expected["mask_u8"]) >= 0.999
    raw = spec.fuse_raw(ae, spec.luma(ir), spec.luma(vis), expected["mask_u8"])
    assert np.abs(raw - expected["fused_raw"]).max() <= 1e-4 * np.abs(expected["fused_raw"]).max()
    assert within_one_level(spec.output_u8(raw), expected["fused_u8"]) >= 0.999


def odd_colour_pair() -> tuple[np.ndarray, np.ndarray]:
    """97 x 131 BGR images: a false-colour thermal crop of the fixture, the synthetic street."""
    ir = cv2.imread(str(FIXTURE / "inputs" / "ir" / "c_480x640.png"), cv2.IMREAD_GRAYSCALE)
    crop = cv2.normalize(np.ascontiguousarray(ir[150:247, 250:381]), None, 0, 255, cv2.NORM_MINMAX)
    thermal = cv2.applyColorMap(crop, cv2.COLORMAP_INFERNO)
    visible = SyntheticScene(131, 97, seed=1).render(0.7).visible[..., ::-1]
    return thermal, np.ascontiguousarray(visible)


def test_an_odd_size_colour_pair_matches_the_spec_reference(
    tmp_path, state_dicts, reference_weights
):
    """An odd-size colour pair against the spec reference.

    Odd sizes exercise the pooling floors and the reflection-padded upsampling; 3-channel
    inputs the BGR normalisation of the SOS input and PIL's luma for the fusion.
    """
    from sosmaskfuse_core.models.checkpoints import load_autoencoder, load_sosnet
    from sosmaskfuse_core.pipeline.fusion_pipeline import FusionPipeline, PipelineConfig

    ae, sos = state_dicts
    thermal, visible = odd_colour_pair()
    assert thermal.shape == visible.shape == (97, 131, 3)
    for image in (thermal, visible):  # really colour: the channels differ
        assert np.abs(image[..., 0].astype(int) - image[..., 2]).mean() > 10
    for side, image in (("ir", thermal), ("vis", visible)):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "odd.png"), image)
    probability = spec.sos_probability(sos, thermal)
    mask = spec.mask_u8(probability)
    raw = spec.fuse_raw(ae, spec.luma(thermal), spec.luma(visible), mask)
    fused = spec.output_u8(raw)
    assert mask.std() > 1 and fused.std() > 10  # neither output is degenerate

    ae_path, sos_path = reference_weights
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
            str(ae_path),
            "--sosnet",
            str(sos_path),
            "--device",
            "cpu",
            "--preset",
            "paper",
        ]
    )
    assert code == 0
    ours_mask = cv2.imread(str(tmp_path / "out" / "mask" / "odd.png"), cv2.IMREAD_UNCHANGED)
    ours_fused = cv2.imread(str(tmp_path / "out" / "fused" / "odd.png"), cv2.IMREAD_UNCHANGED)
    assert ours_mask.shape == ours_fused.shape == (97, 131)
    assert within_one_level(ours_mask, mask) >= 0.999
    assert within_one_level(ours_fused, fused) >= 0.999
    pipe = FusionPipeline(
        load_autoencoder(ae_path)[0],
        load_sosnet(sos_path)[0],
        device="cpu",
        config=PipelineConfig.paper(),
    )
    ours_raw = pipe(thermal, visible, mask=mask).raw
    assert np.abs(ours_raw - raw).max() <= 1e-4 * np.abs(raw).max()


def test_the_default_mode_guards_the_contrast_and_imvf_is_the_papers(tmp_path, reference_weights):
    """`fuse` without --fusion-mode runs imvf-contrast; --fusion-mode imvf is the reference's.

    The contrast mode is the paper's decoder pass with the contrast guard on top: the same mask,
    other targets, and with the guard's floor at 0 the paper's image bit for bit.
    """
    from sosmaskfuse_core.settings import table

    assert table.default("fusion_mode", table.FUSE) == "imvf-contrast"
    thermal, visible = odd_colour_pair()
    for side, image in (("ir", thermal), ("vis", visible)):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "odd.png"), image)
    ae_path, sos_path = reference_weights
    out = {}
    # all with the paper's SOS input, so that the masks can be compared (the default's
    # stretch of that input is tested in test_shipped_sosnet.py)
    for label, mode in (
        ("default", ["--no-mask-input-stretch"]),
        ("unguarded", ["--no-mask-input-stretch", "--target-contrast", "0"]),
        ("paper", ["--fusion-mode", "imvf", "--no-mask-input-stretch"]),
    ):
        args = ["fuse", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis")]
        args += ["--out", str(tmp_path / label), "--autoencoder", str(ae_path)]
        args += ["--mask-threshold", "0.5"]
        assert cli.main(args + ["--sosnet", str(sos_path), "--device", "cpu"] + mode) == 0
        out[label] = {
            kind: cv2.imread(str(tmp_path / label / kind / "odd.png"), cv2.IMREAD_UNCHANGED)
            for kind in ("mask", "fused")
        }
    assert np.array_equal(out["default"]["mask"], out["paper"]["mask"])  # the mode keeps the mask
    inside = out["paper"]["mask"] == 255
    assert inside.sum() > 100
    assert not np.array_equal(out["default"]["fused"][inside], out["paper"]["fused"][inside])
    assert np.array_equal(out["unguarded"]["fused"], out["paper"]["fused"])
