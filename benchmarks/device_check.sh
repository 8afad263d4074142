#!/usr/bin/env bash
# One-shot GPU check: the CUDA tests and the GPU benchmarks, one table at the end, in 8 minutes.
#
#   bash benchmarks/device_check.sh          # on a machine with an NVIDIA GPU; exits 0 without one
#
# For a machine whose python3 already has torch with CUDA (plus numpy, OpenCV, SciPy,
# scikit-image, pytest; onnx/onnxruntime for the ONNX tests) and no network. What the package
# imports beyond that (rosbags and its compiled dependencies) travels as wheels in .wheels/,
# downloaded beforehand where PyPI is reachable with `bash benchmarks/fetch_device_wheels.sh`
# (git-ignored; give it to the device tool as carry: [".wheels"]). Nothing is installed into
# the machine's Python: the wheels go to a scratch folder on PYTHONPATH.
#
# Prints the GPU, the pytest summary of test/test_pipeline_cuda.py (+ the backend and ONNX
# tests) and the table of benchmarks/bench_gpu.py: SOS network + fusion per pair at
# 320x256, 640x480 and 1280x1024, fp32/fp16/bf16, eager vs CUDA graphs, the lite model, with
# pairs/s and peak memory. Logs go to $OUT (the device tool's folder) or $LOG_DIR.
# Environment: PYTHON (default python3), TESTS_TIMEOUT (180 s), BENCH_BUDGET (200 s).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG_DIR=${LOG_DIR:-${OUT:-/tmp/sosmaskfuse_device_check}}
mkdir -p "$LOG_DIR"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null
then
    echo "device_check: no CUDA GPU is visible to $PY (torch.cuda.is_available() is false" \
        "or torch is missing): nothing to check here."
    exit 0
fi

SITE=/tmp/sosmaskfuse_device_site
if compgen -G ".wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .wheels/*.whl || { echo "device_check: installing .wheels failed"; exit 1; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! "$PY" -c 'import sosmaskfuse_core.pipeline' 2>"$LOG_DIR/import.log"; then
    echo "device_check: the package does not import here (missing wheels?):"
    tail -3 "$LOG_DIR/import.log"
    exit 1
fi

GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
    || "$PY" -c 'import torch; print(torch.cuda.get_device_name())')
TORCH=$("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')
START=$(date +%s)

timeout "${TESTS_TIMEOUT:-180}" "$PY" -m pytest -p no:cacheprovider -q -rs \
    test/test_pipeline_cuda.py test/test_backends.py test/test_onnx_export.py \
    >"$LOG_DIR/tests.log" 2>&1
TESTS_RC=$?
TESTS=$(grep -E "(passed|failed|error|skipped|no tests ran)" "$LOG_DIR/tests.log" | tail -1)
[ $TESTS_RC -eq 124 ] && TESTS="timed out after ${TESTS_TIMEOUT:-180} s; $TESTS"

timeout 300 "$PY" benchmarks/bench_gpu.py --budget "${BENCH_BUDGET:-200}" \
    --csv "$LOG_DIR/bench_gpu.csv" >"$LOG_DIR/bench_gpu.log" 2>&1
BENCH_RC=$?

echo "== device check, $(date -u +%Y-%m-%d) =="
echo "GPU: $GPU; torch $TORCH; $(( $(date +%s) - START )) s"
echo "CUDA tests (rc $TESTS_RC): $TESTS"
if [ $TESTS_RC -ne 0 ]; then
    grep -E "^(FAILED|ERROR)" "$LOG_DIR/tests.log" | head -20
fi
echo "benchmark (rc $BENCH_RC):"
sed -n '/^| size/,$p' "$LOG_DIR/bench_gpu.log"
[ $BENCH_RC -ne 0 ] && tail -15 "$LOG_DIR/bench_gpu.log"
[ $TESTS_RC -eq 0 ] && [ $BENCH_RC -eq 0 ]
