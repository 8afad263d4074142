"""config/sosmaskfuse.yaml: generated from the settings table, it lists the node's parameters.

Each parameter comes with its default, type and live-ness.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip(
    "yaml", reason="PyYAML is not installed (it comes with the ROS 2 wheels)"
)
pytest.importorskip(
    "rclpy",
    reason="the parameter table needs rcl_interfaces (ROS 2 Jazzy wheels or a native install)",
)

from sosmaskfuse_core.settings import render_yaml  # noqa: E402
from sosmaskfuse_ros.params import node_settings, parameter_default  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "sosmaskfuse.yaml"
PARAMETERS = node_settings()
UNSET = {p.name for p in PARAMETERS if p.kind == "floats" and p.default is None}


def _values() -> dict:
    doc = yaml.safe_load(CONFIG.read_text())
    assert list(doc) == ["/**"] and list(doc["/**"]) == ["ros__parameters"]
    return doc["/**"]["ros__parameters"]


def test_lists_every_declared_parameter_with_its_default_and_type():
    values = _values()
    declared = {p.name: [] if p.name in UNSET else parameter_default(p) for p in PARAMETERS}
    assert set(values) == set(declared), set(values) ^ set(declared)
    for name, default in declared.items():
        assert values[name] == default and type(values[name]) is type(default), (
            name,
            values[name],
            default,
        )


def test_the_file_is_what_the_settings_table_generates():
    assert CONFIG.read_text() == render_yaml(), (
        "regenerate it: python -m sosmaskfuse_core.settings > " + str(CONFIG)
    )


def test_every_parameter_is_listed_with_a_comment_an_unset_list_as_empty():
    text = CONFIG.read_text()
    for name in UNSET:  # rcl reads [] as unset; the node then holds an empty DOUBLE_ARRAY
        assert re.search(rf"^\s*{name}: \[\] +# \[\] or double\[9\]", text, re.M), name
    for p in PARAMETERS:
        line = re.search(rf"^\s*{re.escape(p.name)}: .*$", text, re.M).group(0)
        assert "#" in line.split(":", 1)[1], f"{p.name} has no comment"


def test_sections_say_which_parameters_are_live():
    live = None
    seen = set()
    for line in CONFIG.read_text().splitlines():
        section = re.match(r"\s*# --- .*\((live|start-up)\) ---", line)
        if section:
            live = section.group(1) == "live"
            continue
        entry = re.match(r"\s*([\w.]+): ", line)
        if entry and live is not None and entry.group(1) in {p.name for p in PARAMETERS}:
            param = next(p for p in PARAMETERS if p.name == entry.group(1))
            assert live == param.live, f"{param.name} is under the wrong section"
            seen.add(param.name)
    assert seen == {p.name for p in PARAMETERS}


def test_the_node_loads_the_file_whatever_its_namespace(tmp_path):
    """Rcl's own YAML parser and the declared types accept the file.

    An int for a double would be refused.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from sosmaskfuse_ros.params import declare_all

    edited = tmp_path / "edited.yaml"  # one value changed, to see that the file's values arrive
    edited.write_text(CONFIG.read_text().replace("log_period: 10.0 ", "log_period: 3.0  "))
    context = Context()
    rclpy.init(context=context)
    try:
        for path, log_period in ((CONFIG, 10.0), (edited, 3.0)):
            node = Node(
                "sosmaskfuse",
                namespace="/vehicle1",
                context=context,
                cli_args=["--ros-args", "--params-file", str(path), "-p", "mu:=0.25"],
            )
            values = declare_all(node)
            node.destroy_node()
            assert values["log_period"] == log_period
            assert values["mu"] == 0.25  # the command line still wins over the file
            assert values["homography"] is None
            rest = {
                p.name: p.default for p in PARAMETERS if p.name not in UNSET | {"mu", "log_period"}
            }
            assert {k: values[k] for k in rest} == rest
    finally:
        rclpy.try_shutdown(context=context)


def test_rviz_config_shows_the_four_images_with_matching_qos():
    from sosmaskfuse_ros import synthetic_cameras

    rviz = yaml.safe_load((CONFIG.parent / "sosmaskfuse.rviz").read_text())
    manager = rviz["Visualization Manager"]
    images = {
        d["Topic"]["Value"]: d
        for d in manager["Displays"]
        if d["Class"] == "rviz_default_plugins/Image"
    }
    assert set(images) == {"/thermal/image_raw", "/visible/image_raw", "/sos_mask", "/fused_image"}
    from rclpy.qos import ReliabilityPolicy

    from sosmaskfuse_ros.fusion_node import INPUT_QOS, OUTPUT_QOS

    wording = {
        ReliabilityPolicy.BEST_EFFORT: "Best Effort",
        ReliabilityPolicy.RELIABLE: "Reliable",
    }
    camera_qos = wording[INPUT_QOS.reliability]
    output_qos = wording[OUTPUT_QOS.reliability]
    for topic, display in images.items():
        qos = display["Topic"]
        assert qos["Reliability Policy"] == (camera_qos if "image_raw" in topic else output_qos), (
            topic
        )
        assert (qos["Durability Policy"], qos["History Policy"], display["Enabled"]) == (
            "Volatile",
            "Keep Last",
            True,
        )
    visible_frame = next(
        p.default for p in synthetic_cameras.PARAMETERS if p.name == "visible_frame_id"
    )
    assert manager["Global Options"]["Fixed Frame"] == visible_frame
