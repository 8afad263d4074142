"""`sosmaskfuse fuse` end to end on small generated folders, including bad files in the batch."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from sosmaskfuse_core import cli
from sosmaskfuse_core.models import checkpoints


@pytest.fixture
def weights(tmp_path, tiny_autoencoder, tiny_sosnet):
    ae_path, sos_path = tmp_path / "ae.pt", tmp_path / "sos.pt"
    checkpoints.save_checkpoint(ae_path, tiny_autoencoder)
    checkpoints.save_checkpoint(sos_path, tiny_sosnet)
    return ae_path, sos_path


def _write_pairs(root, names, size=(40, 56)):
    rng = np.random.default_rng(1)
    for sub in ("ir", "vis"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(root / "ir" / f"{name}.png"), rng.integers(0, 256, size, dtype=np.uint8))
        cv2.imwrite(
            str(root / "vis" / f"{name}.jpg"), rng.integers(0, 256, size + (3,), dtype=np.uint8)
        )


def _run(tmp_path, weights, *extra):
    return cli.main(
        [
            "fuse",
            "--ir",
            str(tmp_path / "ir"),
            "--vis",
            str(tmp_path / "vis"),
            "--out",
            str(tmp_path / "out"),
            "--autoencoder",
            str(weights[0]),
            "--sosnet",
            str(weights[1]),
            "--device",
            "cpu",
            *extra,
        ]
    )


def test_fuses_every_pair_and_writes_mask_and_fused(tmp_path, weights, capsys):
    _write_pairs(tmp_path, ["a", "b"])
    assert _run(tmp_path, weights) == 0
    for stem in ("a", "b"):
        fused = cv2.imread(str(tmp_path / "out" / "fused" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(tmp_path / "out" / "mask" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert fused.shape == (40, 56) and fused.dtype == np.uint8
        assert mask.shape == (40, 56) and mask.dtype == np.uint8
    assert "fused 2 of 2 pairs" in capsys.readouterr().err


def test_bad_files_are_reported_and_the_rest_still_written(tmp_path, weights, capsys):
    _write_pairs(tmp_path, ["good", "broken", "sizes"])
    (tmp_path / "ir" / "broken.png").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "vis" / "sizes.jpg"), np.zeros((30, 56, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "ir" / "lonely.png"), np.zeros((40, 56), np.uint8))
    assert _run(tmp_path, weights) == 1
    err = capsys.readouterr().err
    assert (tmp_path / "out" / "fused" / "good.png").is_file()
    assert not (tmp_path / "out" / "fused" / "broken.png").exists()
    assert "broken.png: not an image OpenCV can read" in err
    assert "sizes: thermal sizes.png is 56x40, visible sizes.jpg is 56x30" in err
    assert "lonely.png: no partner in --vis" in err
    assert "fused 1 of 3 pairs" in err and "3 failed" in err


def test_two_files_of_one_stem_are_reported_not_guessed(tmp_path, weights, capsys):
    _write_pairs(tmp_path, ["a", "b"])
    cv2.imwrite(str(tmp_path / "ir" / "b.bmp"), np.zeros((40, 56), np.uint8))
    assert _run(tmp_path, weights) == 1
    err = capsys.readouterr().err
    assert "several files named 'b'" in err
    assert (tmp_path / "out" / "fused" / "a.png").is_file()
    assert not (tmp_path / "out" / "fused" / "b.png").exists()


def test_mask_dir_replaces_the_network(tmp_path, weights):
    _write_pairs(tmp_path, ["a"])
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), np.full((40, 56), 200, np.uint8))
    assert _run(tmp_path, weights, "--mask-dir", str(tmp_path / "masks")) == 0
    mask = cv2.imread(str(tmp_path / "out" / "mask" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert (mask == 200).all()


def test_missing_folder_and_bad_checkpoint_fail_clearly(tmp_path, weights, capsys):
    assert (
        cli.main(
            [
                "fuse",
                "--ir",
                str(tmp_path / "nope"),
                "--vis",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--autoencoder",
                str(weights[0]),
            ]
        )
        == 2
    )
    assert "nope: not a folder" in capsys.readouterr().err
    _write_pairs(tmp_path, ["a"])
    assert (
        cli.main(
            [
                "fuse",
                "--ir",
                str(tmp_path / "ir"),
                "--vis",
                str(tmp_path / "vis"),
                "--out",
                str(tmp_path / "o"),
                "--autoencoder",
                str(weights[1]),
            ]
        )
        == 2
    )
    assert "not an IMV-F autoencoder checkpoint" in capsys.readouterr().err


def test_module_entry_point_runs_in_a_fresh_process(tmp_path, weights):
    _write_pairs(tmp_path, ["a"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sosmaskfuse_core.cli",
            "fuse",
            "--ir",
            str(tmp_path / "ir"),
            "--vis",
            str(tmp_path / "vis"),
            "--out",
            str(tmp_path / "out"),
            "--autoencoder",
            str(weights[0]),
            "--sosnet",
            str(weights[1]),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "fused" / "a.png").is_file()
