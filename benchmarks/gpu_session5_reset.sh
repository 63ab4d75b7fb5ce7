#!/usr/bin/env bash
# Session 5, one device call: the latency chain of a split-K fix-up. Counter re-armed by a plain
# store (LLMPERF_GEMM_RESET_STORE=1) vs the acq_rel exchange (=0), with and without the peek
# (LLMPERF_GEMM_SPLITK_PEEK), alternated twice; GPU tests of the split paths with the new default.
source "$(dirname "$0")/gpu_env.sh"
timeout 150 python3 -m pytest -m gpu tests/kernels/test_gemm.py -k "splitk or hybrid or fixup" -q -p no:cacheprovider \
  --confcutdir=tests/kernels 2>&1 | tail -2 | tee "$OUT/pytest_gemm.log"
S="128x128x64,256x4096x4096,256x3584x3584,256x4096x14336,256x3584x18944,1024x4608x3584,256x2048x8192"
C="[(128, 128, 64, 8, 8, 4, 'splitk', 2, True), (128, 128, 64, 8, 8, 4, 'hybrid', 1, True),
 (64, 128, 64, 8, 4, 4, 'splitk', 2, True), (64, 128, 64, 8, 4, 4, 'hybrid', 2, True)]"
for rep in 1 2; do for v in "1 1" "0 1" "1 0" "0 0"; do set -- $v
  echo "== RESET_STORE=$1 PEEK=$2 rep $rep"
  LLMPERF_GEMM_RESET_STORE=$1 LLMPERF_GEMM_SPLITK_PEEK=$2 timeout 100 python3 benchmarks/tune_gemm.py --out "$OUT/t" \
    --shapes "$S" --configs "$C" --rep-ms 30 2>&1 | grep "tune gemm"
done; done > "$OUT/ab.log"
