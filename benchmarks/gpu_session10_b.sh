#!/usr/bin/env bash
# The W4A16 "mmah" DQ = 2 sweep (W4_MMAH_DQ2_SWEEP: pipeline depth, fixed split-K, 256-row tiles) --
# GPU tests of every DQ = 2 config, an A/B at M = 16 / 4 against the adopted DQ = 2 configs and the DQ = 1
# leaders (cuBLAS in the same run), then kernels_bench's ceiling + weight-only sections with the sweep
# listed first (LLMPERF_W4_DQ2=1). Written in session 10; not run yet (no device could be started for it).
# Usage: OUT=... bash benchmarks/gpu_session10_b.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
timeout 75 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  -k "dq2" > "$OUT/pytest_w4_dq2.log" 2>&1
RC=$?; tail -2 "$OUT/pytest_w4_dq2.log"
C=$(python3 -c "
import importlib; w = importlib.import_module('llmperf_kernels.gemm_w4a16')
print(repr(w.W4_MMAH_DQ2_SWEEP + w.W4_MMAH_DQ2 + w._W4_MMAH[:2]))")
timeout 120 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16,4 --configs "$C" --hbm-tbps 3.13 > "$OUT/w4_sweep.log" 2>&1
grep -A10 "best per case" "$OUT/w4_sweep.log"
if [ $RC -eq 0 ]; then
  LLMPERF_W4_DQ2=1 timeout 130 python3 benchmarks/kernels_bench.py --out "$OUT/wq" --only ceiling,wq > "$OUT/bench_wq.log" 2>&1
  echo "bench wq exit $?"; cut -d, -f1-4 "$OUT/wq/kernels_summary.csv"
fi
# at most 8 files come back: the logs travel as one archive
tar czf "$OUT/logs.tgz" -C "$OUT" env.txt pytest_w4_dq2.log w4_sweep.log bench_wq.log 2>/dev/null \
  && rm -f "$OUT"/{env.txt,pytest_w4_dq2.log,w4_sweep.log,bench_wq.log}
