#!/usr/bin/env bash
# Session 5, one device call: split-K partials stored through a TMA descriptor (LLMPERF_GEMM_WS_TMA=1)
# vs pointer stores with a shared-memory layout round trip (=0), alternated twice, at a trivial
# shape (the fixed cost of a split launch) and M = 256 / 1024 layer shapes; GPU tests of both fix-ups.
source "$(dirname "$0")/gpu_env.sh"
for v in 1 0; do LLMPERF_GEMM_WS_TMA=$v timeout 150 python3 -m pytest -m gpu tests/kernels/test_gemm.py -k "splitk or hybrid or fixup" \
  -q -p no:cacheprovider --confcutdir=tests/kernels 2>&1 | tail -2; done | tee "$OUT/pytest_gemm.log"
S="128x128x64,256x4096x4096,256x3584x3584,256x4096x14336,256x3584x18944,1024x4608x3584,256x2048x8192"
C="[(128, 128, 64, 8, 8, 4, 'splitk', 2, True), (128, 128, 64, 8, 8, 4, 'splitk', 4, True),
 (128, 128, 64, 8, 8, 4, 'hybrid', 1, True), (64, 128, 64, 8, 4, 4, 'splitk', 2, True)]"
for rep in 1 2; do for v in 1 0; do
  echo "== WS_TMA=$v rep $rep"
  LLMPERF_GEMM_WS_TMA=$v timeout 100 python3 benchmarks/tune_gemm.py --out "$OUT/ws${v}_r$rep" --shapes "$S" --configs "$C" --rep-ms 30 2>&1 | grep "tune gemm"
done; done > "$OUT/ab.log"
