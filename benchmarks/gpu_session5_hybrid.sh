#!/usr/bin/env bash
# Session 5, one device call: hybrid launches with one-trip vs persistent (flattened) data-parallel
# programs (LLMPERF_GEMM_HYBRID_PERSISTENT=0/1, alternated twice to separate clocks from code) at
# the M >= 1024 shapes just past whole waves, then the GEMM section of the bench. Results under $OUT.
source "$(dirname "$0")/gpu_env.sh"
timeout 150 python3 -m pytest -m gpu tests/kernels/test_gemm.py -k "hybrid or fixup" -q -p no:cacheprovider \
  --confcutdir=tests/kernels 2>&1 | tail -4 | tee "$OUT/pytest_gemm.log"
S="1024x4608x3584,1024x3072x2048,1024x3584x3584,4096x4608x3584,4096x3584x3584,1024x6144x4096"
C="[(128, 128, 64, 8, 8, 4, 'tma', True, True), (128, 128, 64, 8, 8, 4, 'tma', False, False),
 (128, 128, 64, 8, 8, 4, 'hybrid', 1, True), (128, 256, 64, 8, 8, 3, 'hybrid', 1, True),
 (128, 256, 64, 8, 8, 3, 'tma', True, True), (64, 128, 64, 8, 4, 4, 'hybrid', 2, True)]"
for rep in 1 2; do for p in 0 1; do
  LLMPERF_GEMM_HYBRID_PERSISTENT=$p timeout 120 python3 benchmarks/tune_gemm.py --out "$OUT/p${p}_r${rep}" --shapes "$S" \
    --configs "$C" --rep-ms 30 2>&1 | tail -40
done; done > "$OUT/ab.log"
timeout 200 python3 benchmarks/kernels_bench.py --out "$OUT/gemm" --only gemm > "$OUT/bench.log" 2>&1
tail -6 "$OUT/bench.log"
