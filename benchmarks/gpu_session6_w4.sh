#!/usr/bin/env bash
# Session 6/7, W4A16 M = 1 (kernels/NOTES.md "v7c", "v7d", "v7e"): v7d sentinel-polling fix-up (FIX = 3),
# v7e data-parallel KS-group programs (KS > 1, gemm_w4a16_gemv7k.py) and tile-aligned gemv7 grids (SPLIT = s: no program
# spans two tiles; s = 1 no fix-up at all) against the tuner's stream-K leaders and the FIX = 2
# controls, two tuner runs back to back (clock drift shows as run-to-run spread), then the GPU tests
# of every tile-aligned config. One device call: bash benchmarks/gpu_session6_w4.sh (OUT=...).
source "$(dirname "$0")/gpu_env.sh"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv; git log -1 --format=%H 2>/dev/null;
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"; date -u; } > "$OUT/env.txt" 2>&1
timeout 200 python3 benchmarks/tune_w4a16.py --out "$OUT/a1" --m 1 --paths gemv7 --aligned > "$OUT/a1.log" 2>&1
tail -40 "$OUT/a1.log"
timeout 120 python3 benchmarks/tune_w4a16.py --out "$OUT/a2" --m 1 --paths gemv7 --aligned > "$OUT/a2.log" 2>&1
tail -12 "$OUT/a2.log"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels \
  tests/kernels/test_w4a16_gemv7.py -k "tile_aligned or v7d or graph_replay" > "$OUT/pytest_gemv7_aligned.log" 2>&1
tail -5 "$OUT/pytest_gemv7_aligned.log"
