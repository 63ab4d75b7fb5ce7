#!/usr/bin/env bash
# Session 10, call A: (1) W4A16 "mmah" DQ = 2 (y^T = W x^T, the weight as wgmma's register A operand):
# its GPU tests (exact codes, bf16 / fp16) and an A/B against the DQ = 1 leaders at M = 16 / 4 (same run);
# (2) Nsight Compute on the paged-16 fp8 decode launch the tuner picked on the H100 (B32 L8192,
# (128, 4, 3), cvt 1) and the same launch on contiguous KV (76% vs 95% of copy BW in session 9).
# Usage: OUT=... bash benchmarks/gpu_session10_a.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
timeout 70 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  -k "exact or dq2" > "$OUT/pytest_w4_dq2.log" 2>&1
tail -3 "$OUT/pytest_w4_dq2.log"
C="[(16, 64, 128, 4, 6, 0, 'mmah', 1), (16, 128, 128, 8, 4, 0, 'mmah', 1), (16, 64, 128, 4, 4, 0, 'mmah', 2),
 (16, 64, 128, 4, 6, 0, 'mmah', 2), (16, 128, 128, 8, 4, 0, 'mmah', 2), (16, 64, 128, 4, 4, 2, 'mmah', 2)]"
timeout 90 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16,4 --configs "$C" --hbm-tbps 3.13 > "$OUT/w4_dq2.log" 2>&1
tail -11 "$OUT/w4_dq2.log"
for case in "16 fp8 paged16" "0 fp8 contig"; do
  set -- $case
  timeout 80 ncu --clock-control none -k regex:_decode_kernel --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats \
    --section Occupancy --section LaunchStats --section SourceCounters -o "$OUT/ncu_dec_$3" \
    python3 benchmarks/profile_decode.py 32 8192 "$1" "$2" "128,4,3,1,0,1" > "$OUT/ncu_dec_$3.log" 2>&1
  echo "ncu $3 exit $?"
  timeout 30 ncu -i "$OUT/ncu_dec_$3.ncu-rep" --page details > "$OUT/ncu_dec_$3.txt" 2>&1
  timeout 30 ncu -i "$OUT/ncu_dec_$3.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_dec_$3_sass.csv" 2>&1
  grep -E "Duration|Memory Throughput|DRAM Throughput|Stall|Warp Cycles Per Issued|Issued Warp|Eligible|rel_err" "$OUT/ncu_dec_$3.txt" "$OUT/ncu_dec_$3.log" | head -16
done
