#!/usr/bin/env bash
# GPU call: re-measure only the launch floors and torch's eager host time per kernel
# (llmperf_kernels.calibrate --mode launch) for the GPU in hand; writes $OUT/<hw>_launch.csv.
source "$(dirname "$0")/gpu_env.sh"
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
python3 -m llmperf_kernels.calibrate -g "$HW" --mode launch --out "$OUT/${HW}_launch.csv" 2>&1 | tee "$OUT/launch.log"
