"""CI's colcon step: the package built by colcon (plain and --symlink-install), its node run.

A copy of the checkout (the files git tracks, plus new ones it does not ignore: what a clean
clone holds) is built in a fresh workspace with `colcon build`, as a native ROS 2 install
builds it; the node is then started from the install space with nothing but
`install/setup.sh` (the repository is not on its path) and must come up active, reading its
shipped weights from the install space. colcon-core, colcon-ros and ament_package come with
the `test` extra (they are on PyPI); without them the test is skipped, not passed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("colcon_core", reason="colcon-core is not installed (pip extra 'test')")
pytest.importorskip("colcon_ros", reason="colcon-ros is not installed (pip extra 'test')")
pytest.importorskip("ament_package", reason="ament_package is not installed (pip extra 'test')")
rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)


REPO = Path(__file__).resolve().parents[1]
PACKAGE = "sosmaskfuse_ros"
SKIP_DIRS = {".git", ".venv", "build", "install", "log", "__pycache__", ".pytest_cache"}


def _checkout_files() -> list[Path]:
    """What a clean clone holds: git's tracked and unignored files, else the tree minus builds."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        return [Path(p) for p in listed.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        return [
            p.relative_to(REPO)
            for p in REPO.rglob("*")
            if p.is_file() and not SKIP_DIRS & set(p.relative_to(REPO).parts)
        ]


def _colcon() -> str:
    beside = Path(sys.executable).with_name("colcon")
    found = str(beside) if beside.exists() else shutil.which("colcon")
    if found is None:
        pytest.skip("colcon_core is importable but no colcon command was found")
    return found


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("colcon_src") / "sosmaskfuse"
    for relative in _checkout_files():
        if (REPO / relative).is_file():
            (src / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, src / relative)
    return src


def _clean_env() -> dict:
    """The environment without this checkout on the Python path (the install space only)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    env.pop("COLCON_PREFIX_PATH", None)
    return env


@pytest.mark.parametrize("symlink", [False, True], ids=["plain", "symlink-install"])
def test_colcon_builds_the_package_and_the_installed_node_comes_up(
    session, source, tmp_path, symlink
):
    ws = tmp_path / "ws"
    shutil.copytree(source, ws / "src" / "sosmaskfuse", symlinks=True)
    command = [_colcon(), "build"]
    built = subprocess.run(
        command + (["--symlink-install"] if symlink else []),
        cwd=ws,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    install = ws / "install" / PACKAGE
    for path in (
        "share/ament_index/resource_index/packages/sosmaskfuse_ros",
        "share/sosmaskfuse_ros/package.xml",
        "share/sosmaskfuse_ros/launch/sosmaskfuse.launch.py",
        "share/sosmaskfuse_ros/config/sosmaskfuse.yaml",
        "lib/sosmaskfuse_ros/sosmaskfuse_node",
    ):
        assert (install / path).exists(), path

    ns = f"/colcon_{'symlink' if symlink else 'plain'}"
    node_args = f"--ros-args -r __ns:={ns} -p device:=cpu -p mask_source:=thermal"
    script = (
        f". {ws / 'install' / 'setup.sh'} && cd {tmp_path} && exec "
        f"{install / 'lib' / PACKAGE / 'sosmaskfuse_node'} {node_args} -p log_period:=0.0"
    )
    proc = subprocess.Popen(
        ["bash", "-c", script],
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert session.wait_active(f"{ns}/sosmaskfuse", proc, 90), proc.poll()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    line = next((t for t in output.splitlines() if "fusing on cpu" in t), "")
    # the shipped weights came from the workspace (the install space, or symlinked to its
    # source folder with --symlink-install), not from this checkout
    assert "shipped lite" in line and str(ws) in line and str(REPO) not in line, output
    assert "Traceback" not in output, output
