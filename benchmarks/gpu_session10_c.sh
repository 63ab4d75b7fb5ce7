#!/usr/bin/env bash
# Session 10, last short call (device time nearly spent): GPU tests of the W4A16 DQ = 2 sweep configs
# (every DQ = 2 config at four shapes) and their A/B at M = 16 against the adopted DQ = 2 leader
# and the best DQ = 1 config, cuBLAS in the same run. Usage: OUT=... bash benchmarks/gpu_session10_c.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  -k "dq2" > "$OUT/pytest_w4_sweep.log" 2>&1
tail -2 "$OUT/pytest_w4_sweep.log"
C=$(python3 -c "
import importlib; w = importlib.import_module('llmperf_kernels.gemm_w4a16')
print(repr(w.W4_MMAH_DQ2_SWEEP + w.W4_MMAH_DQ2[:1] + w._W4_MMAH[:1]))")
timeout 70 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16 --configs "$C" --hbm-tbps 3.13 > "$OUT/w4_sweep.log" 2>&1
grep -A6 "best per case" "$OUT/w4_sweep.log"
if grep -q " passed" "$OUT/pytest_w4_sweep.log" && ! grep -q "failed" "$OUT/pytest_w4_sweep.log"; then
  LLMPERF_W4_DQ2=1 timeout 90 python3 benchmarks/kernels_bench.py --out "$OUT/wq" --only ceiling,wq > "$OUT/bench_wq.log" 2>&1
  echo "bench wq exit $?"; cut -d, -f1-2 "$OUT/wq/kernels_summary.csv" | tail -3
fi
