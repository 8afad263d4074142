"""benchmarks/device_check.sh on a machine without a GPU: it says so and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.sh"


def test_without_a_gpu_the_device_check_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "LOG_DIR": str(tmp_path)}
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU, even on a machine that has one
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA GPU is visible" in done.stdout
    assert not (tmp_path / "tests.log").exists()  # nothing was run


def test_bench_gpu_without_a_gpu_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(SCRIPT.parent / "bench_gpu.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout
