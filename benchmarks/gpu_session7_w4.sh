#!/usr/bin/env bash
# Session 7, W4A16 (kernels/NOTES.md "v7e", "v8"): one device call. (1) M = 1: the v7e
# data-parallel KS-group configs against the tuner's leaders, v7d and the FIX = 2 controls, two
# tuner runs back to back (run-to-run spread); (2) M = 4 / 16: the v8 "mmah" tensor-core kernel
# against the v4 paths; (3) the GPU tests of v8 and of the tile-aligned / KS gemv7 configs.
# Usage: OUT=... bash benchmarks/gpu_session7_w4.sh
source "$(dirname "$0")/gpu_env.sh"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv; git log -1 --format=%H 2>/dev/null;
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"; date -u; } > "$OUT/env.txt" 2>&1
timeout 170 python3 benchmarks/tune_w4a16.py --out "$OUT/a1" --m 1 --paths gemv7 --aligned > "$OUT/a1.log" 2>&1
tail -6 "$OUT/a1.log"
timeout 120 python3 benchmarks/tune_w4a16.py --out "$OUT/a2" --m 1 --paths gemv7 --aligned > "$OUT/a2.log" 2>&1
tail -6 "$OUT/a2.log"
timeout 150 python3 benchmarks/tune_w4a16.py --out "$OUT/m16" --m 1,4,16 --paths mmah,mmat,mma2 > "$OUT/m16.log" 2>&1
tail -16 "$OUT/m16.log"
timeout 130 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  tests/kernels/test_w4a16_gemv7.py -k "mmah or tile_aligned or v7d or graph_replay" > "$OUT/pytest_w4.log" 2>&1
tail -5 "$OUT/pytest_w4.log"
