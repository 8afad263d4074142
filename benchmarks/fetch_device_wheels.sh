#!/usr/bin/env bash
# Download, here (where PyPI is reachable), the wheels device_check.sh installs on a GPU machine
# that has no network: what the package imports beyond that machine's torch/numpy/OpenCV/SciPy/
# scikit-image image (rosbags and its compiled dependencies), for its Python (default 3.12).
#
#   bash benchmarks/fetch_device_wheels.sh [PYTHON_VERSION]      # -> .wheels/ (git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${1:-3.12}
PIP=${PIP:-$( [ -x .venv/bin/pip ] && echo .venv/bin/pip || echo "python3 -m pip" )}
# rosbags' own requirements, one version each (typing_extensions and numpy are on that machine)
PACKAGES=(rosbags apsw backports.zstd lz4 ruamel.yaml)
mkdir -p .wheels
$PIP download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .wheels "${PACKAGES[@]}"
ls -la .wheels
