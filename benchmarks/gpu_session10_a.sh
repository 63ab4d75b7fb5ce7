#!/usr/bin/env bash
# Session 10, call A: (1) W4A16 "mmah" DQ = 2 (y^T = W x^T, the weight as wgmma's register A operand):
# its GPU tests (exact codes, bf16 / fp16) and an A/B against the DQ = 1 leaders at M = 16 / 4 (same run);
# (2) the five-stage paged decode candidates' GPU tests; (3) Nsight Compute on the paged-16 fp8 decode
# launch the tuner picked on the H100 in session 9 (B32 L8192, (128, 4, 3), cvt 1: 76% of copy BW,
# single-buffered K/V per the offline TTGIR) and the same tile at 5 stages (double-buffered).
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
timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_attention_decode_gpu.py \
  -k "paged_deep" > "$OUT/pytest_paged_deep.log" 2>&1
tail -2 "$OUT/pytest_paged_deep.log"
for case in "3 fp8 ns3" "5 fp8 ns5"; do
  set -- $case
  timeout 80 ncu --clock-control none -k regex:_decode_kernel --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats \
    --section Occupancy --section LaunchStats -o "$OUT/ncu_dec_$3" \
    python3 benchmarks/profile_decode.py 32 8192 16 "$2" "128,4,$1,1,0,1" > "$OUT/ncu_dec_$3.log" 2>&1
  echo "ncu $3 exit $?"
  timeout 30 ncu -i "$OUT/ncu_dec_$3.ncu-rep" --page details > "$OUT/ncu_dec_$3.txt" 2>&1
  grep -E "Duration|Memory Throughput|DRAM Throughput|Stall|Warp Cycles Per Issued|Issued Warp|Eligible|rel_err" "$OUT/ncu_dec_$3.txt" "$OUT/ncu_dec_$3.log" | head -16
done
