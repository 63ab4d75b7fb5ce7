#!/usr/bin/env bash
# Session 7: Nsight Compute on one v8 "mmah" launch (M = 16, 14336 x 4096; speed of light, warp
# states, memory, occupancy; clocks left alone) and the skip-fixed tile-aligned GPU tests.
# Usage: OUT=... bash benchmarks/gpu_session7_profile.sh
source "$(dirname "$0")/gpu_env.sh"
timeout 150 ncu --clock-control none -k regex:_w4_mmah_kernel --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section Occupancy \
  --section LaunchStats --section SchedulerStats python3 benchmarks/profile_w4_mmah.py > "$OUT/ncu_mmah.txt" 2>&1
echo "ncu exit $?"; grep -E "Duration|Throughput|Stall|Warp Cycles|Achieved Occupancy|Issued|Eligible|rel_err|ERR" "$OUT/ncu_mmah.txt" | head -30
timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_gemv7.py \
  -k "tile_aligned and 3584" > "$OUT/pytest_aligned.log" 2>&1
tail -2 "$OUT/pytest_aligned.log"
