#!/usr/bin/env bash
# Session 5, one device call: where the time of a one-round M = 256 split-K launch goes. Shapes:
# 128x128x64 (one tile, one K step: the fixed cost of a launch in this timing), 256x4096x2048 (64
# 128 x 128 tiles x 32 K tiles: one round on 64 SMs), 256x8192x2048 (128 such tiles: one round on
# 128 SMs, no fix-up), 256x4096x4096 (64 tiles x SPLIT 2 = 128 pieces of 32 K tiles: the same
# per-program work as 256x8192x2048 plus the partial store and fix-up). Results under $OUT.
source "$(dirname "$0")/gpu_env.sh"
S="128x128x64,256x4096x2048,256x8192x2048,256x4096x4096"
C="[(128, 128, 64, 8, 8, 4, 'tma', False, False), (128, 128, 64, 8, 8, 4, 'splitk', 1, True),
 (128, 128, 64, 8, 8, 4, 'splitk', 2, True, 'acc'), (128, 128, 64, 8, 8, 4, 'splitk', 2, True, 'rows'),
 (64, 128, 64, 8, 4, 4, 'tma', False, False), (64, 128, 64, 8, 4, 4, 'splitk', 2, True, 'acc')]"
for rep in 1 2; do
  timeout 120 python3 benchmarks/tune_gemm.py --out "$OUT/decomp_r$rep" --shapes "$S" --configs "$C" --rep-ms 30 2>&1 | tail -30
done > "$OUT/decomp.log"
