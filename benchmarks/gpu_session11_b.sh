#!/usr/bin/env bash
# Session 11, call B: the W4A16 calibration rows of the GPU in hand (`python -m llmperf_kernels.calibrate
# --mode w4`: the quick grid's 12 int4 shapes x M = 1 .. 16384, the Triton kernels compiled first in 8
# processes), to replace the bundled file's W4A16 rows (benchmarks/merge_calibration.py); then
# kernels_bench's ceiling + weight-only sections (W4A16 at M = 1 / 16 against the targets, M = 64 / 256 /
# 4096 as information). Usage: OUT=... [SKIP_BENCH=1] [MODELS=llama-3.1-8b] bash benchmarks/gpu_session11_b.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
START=$(date +%s)
timeout "${CAL_TIMEOUT:-360}" python3 -m llmperf_kernels.calibrate -g "$HW" --mode w4 --compile-jobs 8 \
  ${MODELS:+--models "$MODELS"} --out "$OUT/${HW}_w4.csv" > "$OUT/cal_w4.log" 2>&1
echo "calibrate w4 exit $?, wall $(( $(date +%s) - START )) s" | tee -a "$OUT/cal_w4.log"; tail -4 "$OUT/cal_w4.log"
if [ -z "$SKIP_BENCH" ]; then  # SKIP_BENCH=1: the calibration rows only
  timeout 170 python3 benchmarks/kernels_bench.py --out "$OUT/wq" --only ceiling,wq > "$OUT/bench_wq.log" 2>&1
  echo "bench wq exit $?"; grep "weight-only" "$OUT/bench_wq.log"; cut -d, -f1-4 "$OUT/wq/kernels_summary.csv"
fi
tar czf "$OUT/logs.tgz" -C "$OUT" env.txt bench_wq.log cal_w4.log wq/kernels_tuning.csv 2>/dev/null \
  && rm -f "$OUT"/{env.txt,bench_wq.log,cal_w4.log} "$OUT/wq/kernels_tuning.csv"
