"""Packaging: one distribution for `colcon build` (ament_python) and plain `pip install`."""

import glob

from setuptools import find_packages, setup

PACKAGE = "sosmaskfuse_ros"
EXECUTABLES = {
    "sosmaskfuse": "sosmaskfuse_core.cli:main",
    "sosmaskfuse_node": "sosmaskfuse_ros.fusion_node:main",
    "synthetic_cameras": "sosmaskfuse_ros.synthetic_cameras:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(
        include=["sosmaskfuse_core", "sosmaskfuse_core.*", "sosmaskfuse_ros", "sosmaskfuse_ros.*"]
    ),
    # The shipped default weights and their model card live inside the package.
    package_data={"sosmaskfuse_core.models": ["weights/*.pt", "weights/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob.glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob.glob("config/*")),
        # Executables where `ros2 run` and launch_ros look for them after a pip install
        # (see scripts/).
        (f"lib/{PACKAGE}", [f"scripts/{name}" for name in EXECUTABLES]),
    ],
    python_requires=">=3.10",
    # rosbags 0.11: MCAP writing with the statistics record rosbag2's MCAP plugin needs,
    # bare .mcap/.db3 reading
    install_requires=[
        "torch>=2.1",
        "numpy",
        "opencv-python",
        "scipy",
        "scikit-image",
        "rosbags>=0.11,<0.12",  # formats/rosbag_io subclasses its storage plugins
        # the node's parameter files (--params-file of the offline tools)
        "PyYAML",
    ],
    extras_require={
        "ros": [
            "ros-jazzy-rclpy[fastrtps]",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-std-msgs",
            "ros-jazzy-diagnostic-msgs",
            "ros-jazzy-rosgraph-msgs",
            "ros-jazzy-ament-index-python",
        ],
        # the onnxruntime backend and `sosmaskfuse export-onnx` (docs/performance.md)
        "onnx": ["onnx", "onnxruntime"],
        # `sosmaskfuse fleet`: many bags on a Ray cluster (a local one by default); the client
        # extra (grpcio) lets it join a cluster by a ray://HOST:10001 address as well
        "fleet": ["ray[client]>=2.40"],
        # the fleet tests run on a real local Ray; the ONNX tests on onnxruntime; `make lint`
        # runs ruff and mypy; test/test_colcon_build.py builds the package with colcon as a
        # native ROS 2 install does (colcon and ament_package are on PyPI)
        "test": [
            "pytest",
            "pillow",
            "ruff",
            "mypy",
            "ray>=2.40",
            "onnx",
            "onnxruntime",
            "colcon-core",
            "colcon-ros",
            "ros-jazzy-ament-package",
        ],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in EXECUTABLES.items()],
        # sub-commands of `sosmaskfuse` that need ROS, registered from the ROS side
        # (see sosmaskfuse_core/cli.py)
        "sosmaskfuse.commands": [
            "play = sosmaskfuse_ros.commands:add_play_parser",
            "demo = sosmaskfuse_ros.commands:add_demo_parser",
        ],
    },
)
