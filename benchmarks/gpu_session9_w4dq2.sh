#!/usr/bin/env bash
# Session 9, last (short) W4 call: is the DQ = 2 "mmah" variant (y^T = W x^T, weight as wgmma's register
# A operand) right (exact codes, bf16 / fp16 at two shapes), and is it faster than the DQ = 1 leaders
# at M = 16 / 4 (same run)? Usage: OUT=... bash benchmarks/gpu_session9_w4dq2.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  -k "exact or dq2" > "$OUT/pytest_w4_dq2.log" 2>&1
tail -3 "$OUT/pytest_w4_dq2.log"
C="[(16, 64, 128, 4, 6, 0, 'mmah', 1), (16, 128, 128, 8, 4, 0, 'mmah', 1), (16, 64, 128, 4, 4, 0, 'mmah', 2),
 (16, 64, 128, 4, 6, 0, 'mmah', 2), (16, 128, 128, 8, 4, 0, 'mmah', 2), (16, 64, 128, 4, 4, 2, 'mmah', 2)]"
timeout 80 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16,4 --configs "$C" --hbm-tbps 3.13 > "$OUT/w4_dq2.log" 2>&1
tail -11 "$OUT/w4_dq2.log"
