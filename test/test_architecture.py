"""The package's shape: a ROS-free core, few top-level modules, small modules, documented packages.

The core never imports ROS; every subpackage of the core states its job and exports its API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "sosmaskfuse_core"
ROS = REPO / "sosmaskfuse_ros"
#: Top-level names that mean "needs ROS": our ROS package, rclpy and every ROS message/launch
#: package.
ROS_MODULES = {
    "sosmaskfuse_ros",
    "rclpy",
    "rcl_interfaces",
    "sensor_msgs",
    "std_msgs",
    "diagnostic_msgs",
    "rosgraph_msgs",
    "lifecycle_msgs",
    "builtin_interfaces",
    "message_filters",
    "cv_bridge",
    "launch",
    "launch_ros",
    "ament_index_python",
    "rosidl_runtime_py",
}
MAX_LINES = 450


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(path: Path) -> set[str]:
    """Every module an import statement anywhere in the file names.

    Imports inside functions and branches are included.
    """
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


@pytest.mark.parametrize("path", _modules(CORE), ids=lambda p: str(p.relative_to(REPO)))
def test_core_never_imports_ros(path):
    ros = {name for name in _imported(path) if name.split(".")[0] in ROS_MODULES}
    assert not ros, (
        f"{path.relative_to(REPO)} imports {sorted(ros)}: the dependency must point ros -> core"
    )


def test_the_scan_sees_lazy_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import rclpy.node\n    from sensor_msgs.msg import Image\n")
    assert {"rclpy.node", "sensor_msgs.msg"} <= _imported(sample)


def test_few_plain_modules_at_the_top_of_core():
    top = sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 4, top


@pytest.mark.parametrize(
    "path", _modules(CORE) + _modules(ROS), ids=lambda p: str(p.relative_to(REPO))
)
def test_no_module_is_too_long(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize(
    "package",
    sorted(p.parent for p in CORE.rglob("__init__.py")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_subpackage_states_its_job_and_exports_its_api(package):
    tree = ast.parse((package / "__init__.py").read_text())
    doc = ast.get_docstring(tree)
    assert doc and doc.splitlines()[0].strip(), (
        f"{package.name}/__init__.py has no one-line docstring"
    )
    if package == CORE:
        return
    exported = [
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "__all__"
    ]
    assert exported, f"{package.name}/__init__.py has no __all__"
