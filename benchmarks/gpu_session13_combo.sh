#!/usr/bin/env bash
# Both of session 13's unfinished device jobs in one call (starts were scarce): (1) the persistent FA3 prefill
# entries -- guarded launch, their GPU tests, tune_prefill against cuDNN (gpu_session13_ps.sh without the
# kernels_bench step); (2) the W4A16 calibration rows still left on the GPU in hand (gpu_session13_cal.sh),
# under $OUT/cal. Usage: OUT=... bash benchmarks/gpu_session13_combo.sh   (timeout 600, carry .whl)
HERE=$(cd "$(dirname "$0")" && pwd)
PYTEST_K=${PYTEST_K-ps} PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-100} TUNE_TIMEOUT=${TUNE_TIMEOUT:-130} BUDGET_S=0 \
  CASES=${CASES:-8x32/8x2048x128c,4x32/8x4096x128c,4x32/8x4096x128f,4x32/8x4096x64c} OUT="$OUT" bash "$HERE/gpu_session13_ps.sh"
mkdir -p "$OUT/cal"
OUT="$OUT/cal" CAL_TIMEOUT=${CAL_TIMEOUT:-220} bash "$HERE/gpu_session13_cal.sh"
