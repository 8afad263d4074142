"""package.xml: rosdep keys that exist, the ROS packages the code imports, the licence file.

The keys are checked against a list kept here (test/rosdep_keys.txt) with the date and the
ros/rosdistro commit it was checked against: the tests cannot reach the network.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEYS_FILE = Path(__file__).with_name("rosdep_keys.txt")
DEPEND_TAGS = ("depend", "exec_depend", "build_depend", "test_depend", "buildtool_depend")


def _package() -> ET.Element:
    return ET.parse(REPO / "package.xml").getroot()


def _depends() -> list[str]:
    root = _package()
    return [e.text.strip() for tag in DEPEND_TAGS for e in root.findall(tag)]


def _known_keys() -> dict[str, str]:
    keys = {}
    for line in KEYS_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, where = line.split(None, 1)
            keys[key] = where
    return keys


def test_the_key_list_says_when_and_against_what_it_was_checked():
    text = KEYS_FILE.read_text()
    found = re.search(
        r"^# checked: (\d{4}-\d{2}-\d{2}) against ros/rosdistro commit [0-9a-f]{7,}", text, re.M
    )
    assert found, "the list needs the date and the rosdistro commit it was checked against"
    assert date.fromisoformat(found.group(1)) <= date.today()


def test_every_rosdep_key_in_package_xml_is_a_known_key():
    known = _known_keys()
    unknown = [key for key in _depends() if key not in known]
    assert unknown == [], f"not in {KEYS_FILE.name} (check them in ros/rosdistro): {unknown}"
    assert "python3-torch-pip" not in known  # what the README once told rosdep to install


def _imported_roots(folder: Path) -> set[str]:
    roots = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
    return roots


def test_the_ros_packages_the_nodes_import_are_declared():
    ros_packages = {k for k, where in _known_keys().items() if "distribution.yaml" in where}
    imported = _imported_roots(REPO / "sosmaskfuse_ros") | _imported_roots(REPO / "launch")
    needed = {p for p in ros_packages if p in imported}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs"} <= needed
    assert needed <= set(_depends()), needed - set(_depends())
    source = (REPO / "sosmaskfuse_ros" / "fusion_node.py").read_text()
    if "rclpy.lifecycle" in source:  # which imports lifecycle_msgs
        assert "lifecycle_msgs" in _depends()


def test_the_licence_file_is_the_licence_package_xml_declares():
    declared = _package().findtext("license").strip()
    assert declared == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
