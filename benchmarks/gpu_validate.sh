#!/usr/bin/env bash
# The one script a GPU call runs to measure end-to-end VALIDATION data (never used for fitting):
# prefill and decode-step latencies of the reference decoder (kernels/reference_model.py, IMPL=
# reference) or of the Hugging Face transformers model of the same config (IMPL=hf), for the
# models in kernels/measure_e2e.py, each with the host's eager launch rate measured just before.
# Writes to $OUT: <prefix><hardware id>.csv, kernels_<prefix><hardware id>.txt, validate<_hf>.log,
# env.txt (prefix "hf_" for IMPL=hf).
# Usage: OUT=out IMPL=reference|hf bash benchmarks/gpu_validate.sh [extra args for llmperf_kernels.measure_e2e]
IMPL=${IMPL:-reference}
source "$(dirname "$0")/gpu_env.sh"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw,memory.total --format=csv;
  python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee -a "$OUT/env.txt"
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
PREFIX=$([ "$IMPL" = hf ] && echo hf_ || echo "")
echo "hardware: $HW, implementation: $IMPL"
timeout "${VAL_TIMEOUT:-510}" python3 -m llmperf_kernels.measure_e2e --impl "$IMPL" --out "$OUT/$PREFIX$HW.csv" "$@" 2>&1 \
  | grep --line-buffered -v -e 'SyncActivityProfilerHandler' -e 'ActivityProfilerController' | tee "$OUT/validate${PREFIX:+_hf}.log"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$OUT/env.txt"
