#!/usr/bin/env bash
# Session 9, second W4 call: configs around the DQ = 1 (packed-PTX) "mmah" leaders at M = 16 / 4 --
# more K slices (SK 2: 2x the CTAs), deeper / shallower pipelines, 8 warps on 64 rows, 32-row tiles --
# with the two leaders of the first call re-timed as the baseline. Usage: OUT=... bash benchmarks/gpu_session9_w4sweep.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
C="[(16, 64, 128, 4, 6, 0, 'mmah', 1), (16, 64, 128, 4, 4, 0, 'mmah', 1), (16, 128, 128, 8, 4, 0, 'mmah', 1),
 (16, 64, 128, 4, 4, 2, 'mmah', 1), (16, 64, 128, 4, 6, 2, 'mmah', 1), (16, 64, 128, 4, 8, 0, 'mmah', 1),
 (16, 64, 128, 4, 3, 0, 'mmah', 1), (16, 64, 128, 8, 4, 0, 'mmah', 1), (16, 64, 128, 8, 6, 0, 'mmah', 1),
 (16, 128, 128, 8, 6, 0, 'mmah', 1), (16, 128, 128, 8, 4, 2, 'mmah', 1), (16, 32, 128, 2, 6, 0, 'mmah', 1),
 (16, 32, 128, 2, 8, 2, 'mmah', 1), (16, 64, 128, 2, 4, 2, 'mmah', 1)]"
timeout 200 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16,4 --configs "$C" --hbm-tbps 3.13 > "$OUT/w4_sweep.log" 2>&1
tail -12 "$OUT/w4_sweep.log"
grep -A15 "^== " "$OUT/w4_sweep.log" | cut -c1-100
