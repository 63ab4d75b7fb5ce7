#!/usr/bin/env bash
# The one script the GPU call runs: GPU correctness tests of the bundled kernels, then the
# side-by-side benchmark. Logs and CSVs go to $OUT (default ./out). Usage: bash benchmarks/gpu_kernels.sh [bench args]
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Import llmperf_kernels (= kernels/) and llmperf without building (no network on the GPU machine).
SHIM=$(mktemp -d)
ln -sfn "$ROOT/kernels" "$SHIM/llmperf_kernels"
export PYTHONPATH="$SHIM:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Wheels carried along (e.g. pydantic, which llmperf needs and the GPU image lacks): .whl/*.whl
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/env.txt"
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -m gpu tests/kernels ${PYTEST_X--x} -q -p no:cacheprovider --confcutdir=tests/kernels 2>&1 | tee "$OUT/pytest_gpu.log"
echo "pytest exit: $?"
timeout "${BENCH_TIMEOUT:-300}" python3 benchmarks/kernels_bench.py --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log"
echo "bench exit: $?"
