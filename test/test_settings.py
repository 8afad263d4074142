"""The one table of settings: its checks, and that the rest comes from it.

Node parameters, CLI options and the YAML file all come from the table.
"""

from __future__ import annotations

import dataclasses

import pytest

from sosmaskfuse_core import cli
from sosmaskfuse_core.pipeline import PipelineConfig
from sosmaskfuse_core.settings import render_yaml, table
from sosmaskfuse_core.thermal import ThermalAGC

NEW = table.Setting(
    "halo_gain",
    "float",
    0.25,
    "a setting added for this test",
    "fusion",
    range=(0.0, 2.0),
    live=True,
)


@pytest.fixture
def extra_setting(monkeypatch):
    """The table with one more setting, added in that one place only."""
    monkeypatch.setattr(table, "SETTINGS", table.SETTINGS + (NEW,))
    return NEW


def test_a_setting_added_to_the_table_reaches_the_cli_and_the_yaml(extra_setting):
    for command in ("fuse", "bag"):
        base = (
            ["--ir", "a", "--vis", "b", "--out", "c"]
            if command == "fuse"
            else ["--in", "a", "--out", "b", "--thermal-topic", "t", "--visible-topic", "v"]
        )
        args = cli.build_parser().parse_args([command, *base, "--halo-gain", "0.5"])
        assert args.halo_gain == 0.5
        assert cli.build_parser().parse_args([command, *base]).halo_gain == 0.25
    text = render_yaml()
    fusion_section = text.split("# --- fusion (live) ---")[1].split("# ---")[0]
    assert (
        "halo_gain: 0.25" in fusion_section
        and "double in [0, 2]: a setting added for this test" in fusion_section
    )


def test_a_setting_added_to_the_table_becomes_a_node_parameter(extra_setting):
    rclpy = pytest.importorskip(
        "rclpy", reason="the node parameters need rclpy (ROS 2 Jazzy wheels)"
    )
    from rclpy.context import Context
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from sosmaskfuse_ros.params import declare_all

    context = Context()
    rclpy.init(context=context)
    try:
        node = Node(
            "settings_test", context=context, cli_args=["--ros-args", "-p", "halo_gain:=0.75"]
        )
        values = declare_all(node)
        assert values["halo_gain"] == 0.75
        described = node.describe_parameter("halo_gain")
        assert not described.read_only and described.floating_point_range[0].to_value == 2.0
        refused = node.set_parameters([Parameter("halo_gain", value=3.0)])[0]
        assert not refused.successful  # the range from the table is enforced by rclpy
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_every_front_end_uses_the_same_names_and_defaults():
    parser = cli.build_parser()
    fuse = parser.parse_args(["fuse", "--ir", "a", "--vis", "b", "--out", "c"])
    bag = parser.parse_args(
        ["bag", "--in", "a", "--out", "b", "--thermal-topic", "t", "--visible-topic", "v"]
    )
    for setting in table.for_scope(table.FUSE):
        assert getattr(fuse, setting.name) == setting.default_in(table.FUSE), setting.name
    for setting in table.for_scope(table.BAG):
        assert getattr(bag, setting.name) == setting.default_in(table.BAG), setting.name
    # the declared differences: a folder of stills is not a video, so fuse neither smooths the
    # mask over time nor gives up the paper's per-frame stretch (video clips: no flicker)
    differ = [s.name for s in table.SETTINGS if s.default_in(table.FUSE) != s.default]
    assert differ == ["mask_smoothing", "output_scaling"]
    assert fuse.mask_smoothing == 0.0 and bag.mask_smoothing == table.default("mask_smoothing") > 0
    assert (fuse.output_scaling, bag.output_scaling) == ("minmax", "clip")
    # the library's own config classes take their defaults from the table too
    config, agc = PipelineConfig(), ThermalAGC()
    for name in (
        "fusion_mode",
        "mu",
        "mask_threshold",
        "output_scaling",
        "precision",
        "color_output",
    ):
        assert getattr(config, name) == table.default(name), name
    assert dataclasses.asdict(agc) == {
        "mode": "percentile",
        "low_percent": 1.0,
        "high_percent": 99.0,
        "fixed_min": 0.0,
        "fixed_max": 65535.0,
    }
    assert agc.mode == table.default("thermal_agc") and agc.fixed_max == table.default("agc_max")


def test_one_vocabulary_for_mask_sources():
    assert table.MASK_SOURCES == ("auto", "ensemble", "sosnet", "thermal", "topic")
    from sosmaskfuse_core.pipeline import MASK_SOURCES

    assert MASK_SOURCES == ("ensemble", "sosnet", "thermal", "topic")


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("mu", 1.5, r"mu: 1.5 is outside \[0, 1\]"),
        ("mu", "0.5", "mu: expected a number"),
        ("mu", float("nan"), "not a finite number"),
        ("mask_threshold", 0.0, r"mask_threshold: 0.0 is outside \(0, 1\)"),
        (
            "fusion_mode",
            "maximum",
            "fusion_mode: 'maximum' is not one of imvf, imvf-contrast, sca, addition",
        ),
        ("color_output", 1, "color_output: expected true or false"),
        ("sync_queue_size", 2.0, "sync_queue_size: expected an integer"),
        ("homography", [1.0] * 8, "homography: expected 9 numbers, got 8"),
    ],
)
def test_check_names_the_setting_and_the_rule(name, value, message):
    with pytest.raises(ValueError, match=message):
        table.by_name(name).check(value)


def test_parse_reads_unset_and_numeric_text_for_optional_numbers():
    threshold = table.by_name("mask_threshold")
    assert threshold.parse("") is None and threshold.parse(None) is None
    assert threshold.parse("0.4") == 0.4 and threshold.parse(0.4) == 0.4
    with pytest.raises(ValueError, match="not a number"):
        threshold.parse("half")
    with pytest.raises(ValueError, match="go together"):
        table.check_values({"process_width": 320, "process_height": 0})


# --- presets ---------------------------------------------------------------------------------

BAG_ARGS = ["--in", "a", "--out", "b", "--thermal-topic", "t", "--visible-topic", "v"]
FUSE_ARGS = ["--ir", "a", "--vis", "b", "--out", "c"]


@pytest.mark.parametrize("command,base", [("fuse", FUSE_ARGS), ("bag", BAG_ARGS)])
def test_preset_paper_sets_the_papers_settings_on_the_command_line(command, base):
    from sosmaskfuse_core.commands.options import setting_values

    scope = table.FUSE if command == "fuse" else table.BAG
    args = cli.build_parser().parse_args([command, *base, "--preset", "paper"])
    values = setting_values(args, scope)
    assert {k: values[k] for k in table.PRESETS["paper"]} == {
        "autoencoder_weights": "full",
        "precision": "fp32",
        "fusion_mode": "imvf",
        "mask_input_stretch": False,
        "output_scaling": "minmax",
        "mask_smoothing": 0.0,
    }
    assert values["mu"] == table.default("mu")  # what the preset does not name is untouched
    # an option given on the command line wins, even when it is the front end's default
    given = [command, *base, "--preset", "paper", "--fusion-mode", "imvf-contrast"]
    given += ["--output-scaling", "clip"]
    values = setting_values(cli.build_parser().parse_args(given), scope)
    assert (values["fusion_mode"], values["output_scaling"]) == ("imvf-contrast", "clip")
    assert values["mask_input_stretch"] is False  # not given: the preset's


def test_the_preset_is_defined_once_and_checked_against_the_table(monkeypatch):
    from sosmaskfuse_core.settings.presets import check_presets

    assert PipelineConfig.paper().fusion_mode == table.PRESETS["paper"]["fusion_mode"]
    monkeypatch.setitem(table.PRESETS, "paper", {**table.PRESETS["paper"], "mu": 2.0})
    with pytest.raises(ValueError, match=r"preset 'paper': mu: 2.0 is outside \[0, 1\]"):
        check_presets(table.by_name)
    assert "fusion_mode imvf" in table.by_name("preset").description  # said where it is set


def test_fleet_takes_the_preset_and_refuses_cpu_threads(tmp_path):
    import io

    from sosmaskfuse_core.commands import fleet
    from sosmaskfuse_core.commands.options import setting_values

    base = ["fleet", "--in", str(tmp_path), "--out", str(tmp_path / "out")]
    base += ["--thermal-topic", "t", "--visible-topic", "v"]
    args = cli.build_parser().parse_args([*base, "--preset", "paper"])
    assert setting_values(args, table.BAG)["fusion_mode"] == "imvf"
    args = cli.build_parser().parse_args([*base, "--cpu-threads", "2"])
    stream = io.StringIO()
    if fleet.importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed: fleet stops before reading its options")
    assert fleet.run(args, stream=stream) == 2
    assert "--cpu-threads: a fleet worker uses --cpus-per-worker" in stream.getvalue()


def test_cpu_threads_reaches_torch_from_fuse(tmp_path, tiny_checkpoint_files):
    import cv2
    import numpy as np
    import torch

    for side in ("ir", "vis"):
        (tmp_path / side).mkdir()
        cv2.imwrite(str(tmp_path / side / "a.png"), np.full((32, 32), 100, np.uint8))
    before = torch.get_num_threads()
    try:
        args = ["fuse", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis")]
        args += ["--out", str(tmp_path / "out"), "--device", "cpu", "--cpu-threads", "1"]
        args += ["--autoencoder", tiny_checkpoint_files[0], "--mask-source", "thermal"]
        assert cli.main(args) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
