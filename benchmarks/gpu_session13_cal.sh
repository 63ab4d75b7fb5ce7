#!/usr/bin/env bash
# Session 13: the W4A16 calibration rows still left at M <= 16 from 2026-11-22, on whichever Hopper
# GPU the call gets. Session 13's first call (an H200) re-measured Qwen2.5-7B's four shapes and two of
# Llama-3.2-1B's before its 200-s limit (benchmarks/results/calibration/session13/); this one measures
# what is left: on an H200 Llama-3.1-8B + Llama-3.2-1B, on an H100 Qwen2.5-7B + Llama-3.2-1B (session 11
# re-measured Llama-3.1-8B there). Usage: OUT=... bash benchmarks/gpu_session13_cal.sh
HERE=$(cd "$(dirname "$0")" && pwd)
case "$(nvidia-smi --query-gpu=name --format=csv,noheader)" in
  *H200*) M=llama-3.1-8b,llama-3.2-1b ;;
  *) M=qwen2.5-7b,llama-3.2-1b ;;
esac
OUT="$OUT" SKIP_BENCH=1 MODELS=${MODELS:-$M} CAL_TIMEOUT=${CAL_TIMEOUT:-330} bash "$HERE/gpu_session11_b.sh"
