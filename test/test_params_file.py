"""`--params-file` of fuse, bag and fleet: the node's ROS 2 parameter file, read as the node does.

The sections that apply to a node called `sosmaskfuse` are merged, every value is checked against
the settings table, options given on the command line win over the file, and the file
`sosmaskfuse calibrate` writes registers a fuse run's pairs of different sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from sosmaskfuse_core import cli
from sosmaskfuse_core.commands.options import setting_values
from sosmaskfuse_core.models import checkpoints
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.settings.params_file import (
    ParamsFileError,
    node_parameters,
    settings_from_file,
)

REPO = Path(__file__).resolve().parents[1]
H = [1.25, 0.01, -3.5, -0.02, 1.24, 7.0, 1e-5, -2e-5, 1.0]


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def _bag_args(*extra: str):
    return cli.build_parser().parse_args(
        ["bag", "--in", "a", "--out", "b", "--thermal-topic", "t", "--visible-topic", "v", *extra]
    )


@pytest.mark.parametrize(
    "text",
    [
        "/**:\n  ros__parameters:\n    mu: 0.5\n",
        "sosmaskfuse:\n  ros__parameters:\n    mu: 0.5\n",
        "/vehicle1/sosmaskfuse:\n  ros__parameters:\n    mu: 0.5\n",
        "vehicle1:\n  sosmaskfuse:\n    ros__parameters:\n      mu: 0.5\n",
        "/**/sosmaskfuse:\n  ros__parameters:\n    mu: 0.5\n",
    ],
)
def test_every_way_of_naming_the_node_applies(tmp_path, text):
    assert node_parameters(_file(tmp_path, text)) == {"mu": 0.5}


def test_sections_merge_in_file_order_and_other_nodes_are_ignored(tmp_path):
    path = _file(
        tmp_path,
        "/**:\n  ros__parameters:\n    mu: 0.5\n    use_sim_time: true\n"
        "synthetic_cameras:\n  ros__parameters:\n    rate: 5.0\n"
        "/cam/sosmaskfuse:\n  ros__parameters:\n    mu: 0.25\n",
    )
    values, unused = settings_from_file(path, table.BAG)
    assert values == {"mu": 0.25} and unused == []


def test_values_are_checked_against_the_table(tmp_path):
    cases = {
        "mu: 2.0": "mu: 2.0 is outside [0, 1]",
        "homography: [1.0, 0.0, 0.0]": "homography: expected 9 numbers, got 3",
        "fusion_mode: fancy": "fusion_mode: 'fancy' is not one of",
        "halo_gain_typo: 1.0": "unknown parameter 'halo_gain_typo'",
    }
    for line, message in cases.items():
        path = _file(tmp_path, f"/**:\n  ros__parameters:\n    {line}\n")
        with pytest.raises(ParamsFileError, match=re.escape(message)):
            settings_from_file(path, table.BAG)
    with pytest.raises(ParamsFileError, match="no ros__parameters"):
        settings_from_file(_file(tmp_path, "mu: 0.5\n"), table.BAG)
    with pytest.raises(ParamsFileError, match="not YAML"):
        settings_from_file(_file(tmp_path, "/**: [\n"), table.BAG)
    with pytest.raises(ParamsFileError, match="several sosmaskfuse nodes"):
        settings_from_file(
            _file(
                tmp_path,
                "/a/sosmaskfuse:\n  ros__parameters: {mu: 0.1}\n"
                "/b/sosmaskfuse:\n  ros__parameters: {mu: 0.2}\n",
            ),
            table.BAG,
        )


def test_numbers_are_read_as_ros_reads_them(tmp_path):
    """Doubles as rcl reads them: 1e-05 is one (text to YAML 1.1); 1 is an int, refused."""
    text = "/**:\n  ros__parameters:\n    mu: 1.0\n"
    text += "    homography: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1e-05, 0.0, 1.0]\n"
    values, _ = settings_from_file(_file(tmp_path, text), table.BAG)
    assert values["homography"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1e-05, 0.0, 1.0]
    with pytest.raises(ParamsFileError, match="homography: expected a number, got 'x'"):
        settings_from_file(_file(tmp_path, text.replace("1e-05", "x")), table.BAG)
    with pytest.raises(ParamsFileError, match="mu: 1 is an integer; the node takes a double"):
        settings_from_file(_file(tmp_path, text.replace("mu: 1.0", "mu: 1")), table.BAG)


def test_the_shipped_config_reads_back_as_the_defaults():
    """config/sosmaskfuse.yaml (the node's defaults) changes nothing offline."""
    for scope in (table.BAG, table.FUSE):
        values, unused = settings_from_file(REPO / "config" / "sosmaskfuse.yaml", scope)
        for name, value in values.items():
            assert value == table.by_name(name).default, name  # the node's defaults
        node_only = {s.name for s in table.for_scope(table.NODE)} - {
            s.name for s in table.for_scope(scope)
        }
        assert set(unused) == node_only & set(unused) and "diagnostic_updater.period" in unused


def test_the_command_line_wins_over_the_file_which_wins_over_the_defaults(tmp_path):
    path = _file(
        tmp_path,
        "/**:\n  ros__parameters:\n    mu: 0.5\n    color_output: true\n"
        f"    sync_slop: 0.02\n    homography: {H}\n",
    )
    values = setting_values(_bag_args("--params-file", str(path)), table.BAG)
    assert (values["mu"], values["color_output"], values["sync_slop"]) == (0.5, True, 0.02)
    assert values["homography"] == H
    values = setting_values(
        _bag_args("--params-file", str(path), "--mu", "0.3", "--sync-slop", "0.05"), table.BAG
    )
    assert (values["mu"], values["sync_slop"], values["color_output"]) == (0.3, 0.05, True)
    # an option given on the command line at its default value still wins
    values = setting_values(_bag_args("--mu", "0.8", "--params-file", str(path)), table.BAG)
    assert values["mu"] == 0.8
    # without the file: the defaults
    assert setting_values(_bag_args(), table.BAG)["mu"] == table.default("mu")


def test_fleet_and_fuse_take_the_same_file(tmp_path):
    path = _file(tmp_path, f"/**:\n  ros__parameters:\n    mu: 0.4\n    homography: {H}\n")
    parser = cli.build_parser()
    fleet = parser.parse_args(
        ["fleet", "--in", "a", "--out", "b", "--thermal-topic", "t", "--visible-topic", "v"]
        + ["--params-file", str(path)]
    )
    fuse = parser.parse_args(
        ["fuse", "--ir", "a", "--vis", "b", "--out", "c", "--params-file", str(path)]
    )
    assert setting_values(fleet, table.BAG)["homography"] == H
    assert setting_values(fuse, table.FUSE)["mu"] == 0.4
    assert setting_values(fuse, table.FUSE)["homography"] == H


def test_a_bad_file_stops_the_command_with_its_name(tmp_path, capsys):
    path = _file(tmp_path, "/**:\n  ros__parameters:\n    mu: 7.0\n")
    code = cli.main(
        ["fuse", "--ir", str(tmp_path), "--vis", str(tmp_path), "--out", str(tmp_path / "o")]
        + ["--params-file", str(path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"--params-file {path}: mu: 7.0 is outside [0, 1]" in err


def test_fuse_registers_pairs_of_different_sizes_with_the_calibrated_file(
    tmp_path, tiny_autoencoder, tiny_sosnet
):
    """The thermal image (40x32) goes onto the visible grid (56x48) by the file's homography."""
    from sosmaskfuse_core.calibration.report import params_text
    from sosmaskfuse_core.calibration.result import Calibration

    h = np.array([[1.4, 0.0, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 1.0]])
    calibration = Calibration("target", h, (40, 32), (56, 48), [], {"rms_px": 0.1}, {}, 0.1)
    params = tmp_path / "rig.yaml"
    params.write_text(params_text(calibration))
    for sub in ("ir", "vis"):
        (tmp_path / sub).mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "ir" / "a.png"), rng.integers(0, 256, (32, 40), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "vis" / "a.png"), rng.integers(0, 256, (48, 56, 3), np.uint8))
    ae, sos = tmp_path / "ae.pt", tmp_path / "sos.pt"
    checkpoints.save_checkpoint(ae, tiny_autoencoder)
    checkpoints.save_checkpoint(sos, tiny_sosnet)
    argv = ["fuse", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis")]
    argv += ["--autoencoder", str(ae), "--sosnet", str(sos), "--device", "cpu"]
    assert cli.main(argv + ["--out", str(tmp_path / "plain")]) == 1  # sizes differ: skipped
    assert cli.main(argv + ["--out", str(tmp_path / "out"), "--params-file", str(params)]) == 0
    fused = cv2.imread(str(tmp_path / "out" / "fused" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert fused.shape == (48, 56)
