"""The launch files: static checks of arguments and parameters, and that they build.

The static checks always run; the build checks where launch_ros is.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
IDS = [p.name for p in LAUNCH_FILES]
NODE_NAMES = {"sosmaskfuse_node": "sosmaskfuse", "synthetic_cameras": "synthetic_cameras"}
NODE_MODULES = {"sosmaskfuse_node": "fusion_node.py", "synthetic_cameras": "synthetic_cameras.py"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)
    ]


def _first_string(call: ast.Call) -> str:
    arg = (
        call.args[0]
        if call.args
        else next(k.value for k in call.keywords if k.arg in ("name", "variable_name"))
    )
    assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), ast.dump(call)
    return arg.value


def _declared(tree) -> list[str]:
    return [_first_string(c) for c in _calls(tree, "DeclareLaunchArgument")]


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _our_nodes(tree) -> list[tuple[str, ast.Call]]:
    nodes = []
    for call in _calls(tree, "Node"):
        package = _keyword(call, "package")
        if isinstance(package, ast.Constant) and package.value == "sosmaskfuse_ros":
            nodes.append((ast.literal_eval(_keyword(call, "executable")), call))
    return nodes


def _setup_executables() -> set[str]:
    for node in ast.walk(_tree(REPO / "setup.py")):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXECUTABLES":
            return set(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no EXECUTABLES table")


def _parameter_tables():
    pytest.importorskip(
        "rclpy", reason="the parameter tables need rclpy (ROS 2 Jazzy wheels or a native install)"
    )
    from sosmaskfuse_ros import params, synthetic_cameras

    return {
        "sosmaskfuse_node": {s.name: s for s in params.node_settings()},
        "synthetic_cameras": {p.name: p for p in synthetic_cameras.PARAMETERS},
    }


def test_both_launch_files_are_there():
    assert {"sosmaskfuse.launch.py", "demo.launch.py"} <= set(IDS)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=IDS)
def test_every_launch_configuration_is_declared_once_and_used(path):
    tree = _tree(path)
    declared = _declared(tree)
    used = {_first_string(c) for c in _calls(tree, "LaunchConfiguration")}
    assert len(declared) == len(set(declared)), declared
    assert used - set(declared) == set(), f"used but not declared: {used - set(declared)}"
    assert set(declared) - used == set(), f"declared but never used: {set(declared) - used}"
    assert ast.get_docstring(tree), "a launch file starts with a docstring saying what it starts"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=IDS)
def test_our_nodes_exist_with_their_names_parameters_and_topics(path):
    tables = _parameter_tables()
    executables = _setup_executables()
    nodes = _our_nodes(_tree(path))
    assert nodes, "starts none of our nodes"
    for executable, call in nodes:
        assert executable in executables and (REPO / "scripts" / executable).is_file(), executable
        assert ast.literal_eval(_keyword(call, "name")) == NODE_NAMES[executable]
        table = tables[executable]
        for entry in getattr(_keyword(call, "parameters"), "elts", []):
            if not isinstance(entry, ast.Dict):
                continue  # a parameter file
            for key, value in zip(entry.keys, entry.values):
                name = ast.literal_eval(key)
                assert name in table or name == "use_sim_time", (
                    f"{path.name}: {executable} has no parameter {name!r}"
                )
                if isinstance(value, ast.Constant) and name in table:
                    spec = table[name]
                    assert type(value.value) is type(spec.default), (name, value.value)
                    assert not spec.choices or value.value in spec.choices, (name, value.value)
                    rng = spec.range
                    assert not rng or rng[0] <= value.value <= rng[1], (name, value.value)
        source = (REPO / "sosmaskfuse_ros" / NODE_MODULES[executable]).read_text()
        for pair in getattr(_keyword(call, "remappings"), "elts", []):
            topic = ast.literal_eval(pair.elts[0]).removesuffix("/compressed")
            assert f'"{topic}"' in source, f"{executable} has no topic {topic!r} to remap"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=IDS)
def test_the_config_files_named_exist(path):
    for name in re.findall(r'"([\w.]+\.(?:yaml|rviz))"', path.read_text()):
        assert (REPO / "config" / name).is_file(), name


def test_sosmaskfuse_launch_arguments():
    declared = set(_declared(_tree(REPO / "launch" / "sosmaskfuse.launch.py")))
    assert declared >= {
        "thermal_topic",
        "visible_topic",
        "params_file",
        "namespace",
        "use_sim_time",
        "device",
        "autoencoder_weights",
        "sosnet_weights",
    }


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=IDS)
def test_launch_descriptions_build(path):
    pytest.importorskip(
        "launch_ros",
        reason="launch and launch_ros are not on PyPI: this check needs a ROS 2 "
        "install (apt or source build) and is skipped, not passed, without one",
    )
    from launch import LaunchDescription, LaunchIntrospector

    description = _load(path).generate_launch_description()
    assert isinstance(description, LaunchDescription)
    assert {a.name for a in description.get_launch_arguments()} == set(_declared(_tree(path)))
    assert "sosmaskfuse_ros" in LaunchIntrospector().format_launch_description(description)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=IDS)
def test_a_fast_dds_profile_can_be_given_to_the_nodes(path):
    tree = _tree(path)
    assert "fastdds_profile" in _declared(tree)
    (env,) = _calls(tree, "SetEnvironmentVariable")
    assert _first_string(env) == "FASTRTPS_DEFAULT_PROFILES_FILE"
    assert _keyword(env, "condition") is not None  # an empty argument leaves the environment
    assert (REPO / "config" / "fastdds_large_images.xml").is_file()


def _remapping(tree, name: str) -> ast.AST:
    for _, call in _our_nodes(tree):
        for pair in getattr(_keyword(call, "remappings"), "elts", []):
            if ast.literal_eval(pair.elts[0]) == name:
                return pair.elts[1]
    raise AssertionError(f"no remapping of {name}")


@pytest.mark.parametrize(
    "topic,expected",
    [
        ("/rgb/image_raw", "/rgb/camera_info"),
        ("/visible/image_raw", "/visible/camera_info"),
        ("/a/b/image_color", "/a/b/camera_info"),
        ("image_raw", "camera_info"),
    ],
)
def test_the_visible_camera_info_is_read_beside_the_visible_topic(topic, expected):
    """The remapping's PythonExpression, evaluated as launch would with the topic filled in."""
    expression = _remapping(
        _tree(REPO / "launch" / "sosmaskfuse.launch.py"), "visible/camera_info"
    )
    assert getattr(expression.func, "id", None) == "PythonExpression"
    parts = expression.args[0].elts
    text = "".join(
        p.value if isinstance(p, ast.Constant) else topic  # the one LaunchConfiguration
        for p in parts
    )
    assert eval(text) == expected  # noqa: S307 (our own launch file's expression)
