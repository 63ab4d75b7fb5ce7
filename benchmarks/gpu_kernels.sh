#!/usr/bin/env bash
# The one script the GPU call runs: GPU correctness tests of the bundled kernels, then the
# side-by-side benchmark. Logs and CSVs go to $OUT (default ./out). Usage: bash benchmarks/gpu_kernels.sh [bench args]
source "$(dirname "$0")/gpu_env.sh"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/env.txt"
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -m gpu tests/kernels ${PYTEST_X--x} -q -p no:cacheprovider --confcutdir=tests/kernels 2>&1 | tee "$OUT/pytest_gpu.log"
echo "pytest exit: $?"
timeout "${BENCH_TIMEOUT:-300}" python3 benchmarks/kernels_bench.py --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log"
echo "bench exit: $?"
