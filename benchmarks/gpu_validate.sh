#!/usr/bin/env bash
# The one script a GPU call runs to measure end-to-end VALIDATION data (never used for fitting):
# prefill and decode-step latencies of the reference decoder (kernels/reference_model.py) for the
# models in kernels/measure_e2e.py. Writes to $OUT: <hardware id>.csv, kernels_<hardware id>.txt,
# validate.log, env.txt.
# Usage: OUT=out bash benchmarks/gpu_validate.sh [extra args for llmperf_kernels.measure_e2e]
source "$(dirname "$0")/gpu_env.sh"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw,memory.total --format=csv;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/env.txt"
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
echo "hardware: $HW"
timeout "${VAL_TIMEOUT:-510}" python3 -m llmperf_kernels.measure_e2e --out "$OUT/$HW.csv" "$@" 2>&1 \
  | grep --line-buffered -v -e 'SyncActivityProfilerHandler' -e 'ActivityProfilerController' | tee "$OUT/validate.log"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$OUT/env.txt"
