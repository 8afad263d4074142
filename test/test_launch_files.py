"""The launch files: static checks of arguments and parameters, and that they build.

The static checks always run; the build checks where launch_ros is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import load_module

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


def _name_lists(tree) -> dict[str, tuple]:
    """The module's tuples of argument names: launch_arguments' and the file's own."""
    from sosmaskfuse_ros import launch_arguments

    names = {"OVERRIDES": launch_arguments.OVERRIDES, "ROS_BOOLS": launch_arguments.ROS_BOOLS}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").endswith("S"):
            expression = ast.Expression(node.value)
            try:
                names[node.targets[0].id] = eval(compile(expression, "<launch>", "eval"), names)
            except Exception:  # not a tuple of names
                continue
    return names


def _listed(tree, expression: ast.AST) -> list[str]:
    """The names an expression like `OVERRIDES + ROS_BOOLS` stands for."""
    return list(eval(compile(ast.Expression(expression), "<launch>", "eval"), _name_lists(tree)))


def _declared(tree) -> list[str]:
    """Every argument declared, by a constant name or in a comprehension over a name list."""
    names = []
    for call in _calls(tree, "DeclareLaunchArgument"):
        first = call.args[0] if call.args else None
        if isinstance(first, ast.Constant):
            names.append(first.value)
    for comp in ast.walk(tree):
        if isinstance(comp, (ast.ListComp, ast.GeneratorExp)) and _calls(
            comp.elt, "DeclareLaunchArgument"
        ):
            names += _listed(tree, comp.generators[0].iter)
    return names


def _used(tree) -> set[str]:
    """Arguments read by LaunchConfiguration or handed to given_overrides."""
    used = {_first_string(c) for c in _calls(tree, "LaunchConfiguration")}
    for call in _calls(tree, "given_overrides"):
        used |= set(_listed(tree, call.args[1]))
    return used


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _our_nodes(tree) -> list[tuple[str, ast.Call]]:
    nodes = []
    for call in _calls(tree, "Node") + _calls(tree, "LifecycleNode"):
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
    pytest.importorskip("rclpy", reason="the argument lists come from sosmaskfuse_ros")
    tree = _tree(path)
    declared = _declared(tree)
    used = _used(tree)
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
                if key is None:
                    continue  # **given: the given arguments, named after their settings
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
    pytest.importorskip("rclpy", reason="the argument lists come from sosmaskfuse_ros")
    declared = set(_declared(_tree(REPO / "launch" / "sosmaskfuse.launch.py")))
    assert declared >= {
        "thermal_topic",
        "visible_topic",
        "params_file",
        "namespace",
        "use_sim_time",
        "preset",
        "device",
        "mask_source",
        "autoencoder_weights",
        "sosnet_weights",
        "autostart",
        "respawn",
        "fastdds_profile",
    }


def test_the_fusion_node_is_a_lifecycle_node_that_can_respawn():
    tree = _tree(REPO / "launch" / "sosmaskfuse.launch.py")
    ((executable, call),) = _our_nodes(tree)
    assert executable == "sosmaskfuse_node" and getattr(call.func, "id", "") == "LifecycleNode"
    respawn = _keyword(call, "respawn")
    assert _first_string(respawn) == "respawn"  # LaunchConfiguration("respawn")
    demo = dict(_our_nodes(_tree(REPO / "launch" / "demo.launch.py")))
    assert getattr(demo["sosmaskfuse_node"].func, "id", "") == "LifecycleNode"


def test_launch_arguments_override_the_parameter_file_only_when_given():
    pytest.importorskip("rclpy", reason="the argument lists come from sosmaskfuse_ros")
    from sosmaskfuse_ros.launch_arguments import (
        OVERRIDES,
        ROS_BOOLS,
        given_overrides,
        setting_argument,
    )

    for name in OVERRIDES:  # not given unless given: empty by default, and empty is allowed
        argument = setting_argument(name)
        assert argument["default_value"] == ""
        assert "" in argument.get("choices", [""])
        assert "params_file's value" in argument["description"]
    configurations = {
        "device": "",
        "mask_source": "",
        "preset": "paper",
        "autostart": "false",
        "use_sim_time": "true",
        "sosnet_weights": "/w/sos.pt",
    }
    assert given_overrides(configurations, OVERRIDES + ROS_BOOLS) == {
        "preset": "paper",
        "autostart": False,
        "use_sim_time": True,
        "sosnet_weights": "/w/sos.pt",
    }
    with pytest.raises(ValueError, match="device: 'gpu0' is not auto, cpu, cuda or cuda:N"):
        given_overrides({"device": "gpu0"}, OVERRIDES)
    with pytest.raises(ValueError, match="expected true or false"):
        given_overrides({"autostart": "yes"}, OVERRIDES)
    assert setting_argument("device", default="cpu")["default_value"] == "cpu"  # the demo's


def _load(path: Path):
    return load_module(path, path.name.replace(".", "_"))


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
    assert LaunchIntrospector().format_launch_description(description)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=IDS)
def test_a_fast_dds_profile_goes_to_the_nodes_own_environment(path):
    tree = _tree(path)
    assert "fastdds_profile" in _declared(tree) or "fastdds_profile" in path.read_text()
    assert _calls(tree, "SetEnvironmentVariable") == []  # would leak into including files
    for executable, call in _our_nodes(tree):
        assert _keyword(call, "additional_env") is not None, executable
    assert (REPO / "config" / "fastdds_large_images.xml").is_file()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=IDS)
def test_the_launched_node_gets_only_the_given_arguments_and_its_own_environment(path):
    """Launch's own machinery: the declared defaults, the opaque function, the node it makes."""
    pytest.importorskip(
        "launch_ros",
        reason="launch and launch_ros are not on PyPI: this check needs a ROS 2 "
        "install (apt or source build) and is skipped, not passed, without one",
    )
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.utilities import perform_substitutions
    from launch_ros.actions import LifecycleNode
    from launch_ros.utilities import evaluate_parameters

    from launch import LaunchContext

    description = _load(path).generate_launch_description()
    context = LaunchContext()
    given = {"preset": "paper", "fastdds_profile": "/p.xml", "params_file": "/x.yaml"}
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            value = given.get(entity.name)  # (params_file's default needs an ament index)
            if value is None:
                value = perform_substitutions(context, entity.default_value or [])
            context.launch_configurations[entity.name] = value
    made = [
        node
        for entity in description.entities
        if isinstance(entity, OpaqueFunction) and entity.condition is None
        for node in entity.execute(context) or []
    ]
    (fusion,) = [n for n in made if isinstance(n, LifecycleNode)]
    evaluated = evaluate_parameters(context, fusion._Node__parameters)  # (kept privately)
    parameters = {k: v for entry in evaluated if isinstance(entry, dict) for k, v in entry.items()}
    assert parameters["preset"] == "paper"
    assert "mask_source" not in parameters and "sosnet_weights" not in parameters  # not given
    env = {
        perform_substitutions(context, key): perform_substitutions(context, value)
        for key, value in fusion.additional_env
    }
    assert env == {"FASTRTPS_DEFAULT_PROFILES_FILE": "/p.xml"}  # this process only


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
