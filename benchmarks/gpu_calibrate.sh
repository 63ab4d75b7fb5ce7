#!/usr/bin/env bash
# The one script a GPU call runs to calibrate the GPU in hand through the user-facing CLI
# (`llmperf calibrate`: kernel checks, the timing sweep with its progress bar, the CSV), then the
# 5-fold held-out fit error per op kind (`llmperf calibrate --report`). Writes to $OUT:
#   <hardware id>.csv (the calibration), calibrate.log (with the wall time), report.txt, env.txt
# Usage: OUT=out bash benchmarks/gpu_calibrate.sh [quick|full]
MODE=${1:-quick}
source "$(dirname "$0")/gpu_env.sh"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv;
  python3 -c "import torch, triton, typer, rich; print('torch', torch.__version__, 'triton', triton.__version__, 'typer', typer.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/env.txt"
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
echo "hardware: $HW"
START=$(date +%s)
timeout "${CAL_TIMEOUT:-420}" python3 -m llmperf.cli calibrate -g "$HW" --"$MODE" --out "$OUT/$HW.csv" 2>&1 | tee "$OUT/calibrate.log"
echo "llmperf calibrate --$MODE: exit ${PIPESTATUS[0]}, wall $(( $(date +%s) - START )) s" | tee -a "$OUT/calibrate.log"
COLUMNS=160 python3 -m llmperf.cli calibrate -g "$HW" --report "$OUT/$HW.csv" 2>&1 | tee "$OUT/report.txt"
