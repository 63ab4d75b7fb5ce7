#!/usr/bin/env bash
# Session 9, second W4 call: (1) the mmah GPU tests (every listed config incl. the DQ = 2 wgmma
# variant, exact codes for DQ 0 / 1 / 2), (2) the DQ = 1 leaders against DQ = 2 (y^T = W x^T, the
# weight as wgmma's register A operand) and a few pipeline / split variants at M = 16 / 4, (3)
# kernels_bench's weight-only section with the tuner's full lists. Usage: OUT=... bash benchmarks/gpu_session9_w4sweep.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  > "$OUT/pytest_w4_mmah.log" 2>&1
tail -3 "$OUT/pytest_w4_mmah.log"
C="[(16, 64, 128, 4, 6, 0, 'mmah', 1), (16, 64, 128, 4, 4, 0, 'mmah', 1), (16, 128, 128, 8, 4, 0, 'mmah', 1),
 (16, 64, 128, 4, 4, 0, 'mmah', 2), (16, 64, 128, 4, 6, 0, 'mmah', 2), (16, 128, 128, 8, 4, 0, 'mmah', 2),
 (16, 128, 128, 4, 4, 0, 'mmah', 2), (16, 64, 128, 4, 4, 2, 'mmah', 2), (16, 64, 128, 4, 8, 0, 'mmah', 2),
 (16, 64, 128, 4, 4, 2, 'mmah', 1), (16, 64, 128, 8, 4, 0, 'mmah', 1)]"
timeout 100 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16,4 --configs "$C" --hbm-tbps 3.13 > "$OUT/w4_sweep.log" 2>&1
tail -11 "$OUT/w4_sweep.log"
timeout 110 python3 benchmarks/kernels_bench.py --out "$OUT/wq" --only ceiling,wq > "$OUT/bench_wq.log" 2>&1
grep "weight-only\|W4A16" "$OUT/bench_wq.log"
