#!/usr/bin/env bash
# Session 12, one device call for two jobs (device starts were scarce): (1) the W4A16 calibration rows of the
# shapes session 11 left (gpu_session11_b.sh with SKIP_BENCH, output under $OUT/cal), (2) the Gluon FA3
# prefill kernel: guarded first launch, GPU tests, tune_prefill side by side with cuDNN (gpu_session12_fa3.sh,
# shorter case list). Usage: OUT=... bash benchmarks/gpu_session12_combo.sh
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/cal"
OUT="$OUT/cal" SKIP_BENCH=1 MODELS=${MODELS:-qwen2.5-7b,llama-3.2-1b} CAL_TIMEOUT=${CAL_TIMEOUT:-200} bash "$HERE/gpu_session11_b.sh"
CASES=${CASES:-8x32/8x2048x128c,4x32/8x4096x128c,4x32/8x4096x128f,4x32/8x4096x64c} PYTEST_TIMEOUT=150 TUNE_TIMEOUT=170 OUT="$OUT" bash "$HERE/gpu_session12_fa3.sh"
