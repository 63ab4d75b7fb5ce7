#!/usr/bin/env bash
# Session 5, one device call: the split-K fix-up A/B ("rows": the last arriver sums every partial in
# row chunks; "acc": it adds the others' partials into its register accumulator, after a peek) at
# the M = 256 layer shapes, the hybrid candidates at the M >= 1024 shapes that are just past whole
# waves, then the GEMM section of the bench with the new defaults. Results under $OUT (8 files).
source "$(dirname "$0")/gpu_env.sh"
timeout 150 python3 -m pytest -m gpu tests/kernels/test_gemm.py -k "splitk or hybrid or fixup" -q -p no:cacheprovider \
  --confcutdir=tests/kernels 2>&1 | tail -4 | tee "$OUT/pytest_gemm.log"
S256="256x4096x4096,256x3584x3584,256x4608x3584,256x6144x4096,256x3072x2048,256x2048x2048,256x4096x14336,256x28672x4096"
C256="[(64, 128, 64, 8, 4, 4, 'tma', False, False), (64, 128, 64, 8, 4, 4, 'hybrid', 2, True, 'rows'),
 (64, 128, 64, 8, 4, 4, 'hybrid', 2, True, 'acc'), (128, 128, 64, 8, 8, 4, 'splitk', 2, True, 'rows'),
 (128, 128, 64, 8, 8, 4, 'splitk', 2, True, 'acc'), (128, 128, 64, 8, 8, 4, 'splitk', 3, True, 'acc'),
 (128, 128, 64, 8, 8, 3, 'splitk', 2, True, 'rows'), (64, 128, 64, 8, 4, 3, 'splitk', 3, True, 'acc'),
 (64, 128, 64, 8, 4, 4, 'splitk', 2, True, 'acc'), (128, 128, 64, 8, 8, 4, 'hybrid', 1, True, 'acc'),
 (128, 256, 64, 8, 8, 3, 'hybrid', 1, True, 'rows')]"
S1K="1024x4608x3584,1024x3072x2048,1024x3584x3584,4096x4608x3584,1024x6144x4096,4096x3584x3584"
C1K="[(128, 128, 64, 8, 8, 4, 'tma', True, True), (128, 256, 64, 8, 8, 3, 'tma', True, True),
 (128, 256, 64, 8, 8, 3, 'tma', False, False), (128, 256, 64, 8, 8, 3, 'hybrid', 1, True, 'rows'),
 (128, 128, 64, 8, 8, 4, 'hybrid', 1, True, 'rows'), (128, 128, 64, 8, 8, 4, 'hybrid', 1, True, 'acc')]"
{ timeout 200 python3 benchmarks/tune_gemm.py --out "$OUT/ab256" --shapes "$S256" --configs "$C256" --rep-ms 30
  timeout 120 python3 benchmarks/tune_gemm.py --out "$OUT/ab1k" --shapes "$S1K" --configs "$C1K" --rep-ms 30; } 2>&1 | tee "$OUT/ab.log"
timeout 200 python3 benchmarks/kernels_bench.py --out "$OUT/gemm" --only gemm 2>&1 | tee "$OUT/bench.log"
