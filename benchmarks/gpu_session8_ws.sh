#!/usr/bin/env bash
# Session 8, A/B of the warp-specialized (Triton 3.6 Hopper autoWS) candidates in one device call:
# (1) GPU tests of every forced "ws" config (GEMM and prefill), (2) prefill: every candidate of
# tune_prefill.py's default list vs SDPA flash/cuDNN on kernels_bench's cases, (3) bf16 GEMM: the
# four WS_BF16 configs vs session 7's winners on the M = 256 layer shapes and some M = 1024 / 4096
# ones. Logs go into one archive. Usage: OUT=... bash benchmarks/gpu_session8_ws.sh
source "$(dirname "$0")/gpu_env.sh"
L=$(mktemp -d)
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv;
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"; date -u; } > "$L/env.txt" 2>&1
cat "$L/env.txt"
timeout 170 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_gemm.py \
  tests/kernels/test_attention_prefill.py -k "ws" > "$L/pytest_ws.log" 2>&1
tail -5 "$L/pytest_ws.log"
timeout 170 python3 benchmarks/tune_prefill.py --out "$OUT/prefill" --rep-ms 30 > "$L/prefill.log" 2>&1
grep "tune prefill\|rror" "$L/prefill.log" | tail -40
S="256x6144x4096,256x4096x4096,256x28672x4096,256x4096x14336,256x4608x3584,256x3584x3584,256x37888x3584,256x3584x18944"
S="$S,256x3072x2048,256x2048x2048,256x16384x2048,256x2048x8192,1024x4608x3584,1024x3072x2048,1024x2048x8192,4096x4608x3584,4096x4096x4096"
C="[(64, 128, 64, 8, 4, 4, 'tma', False, False), (128, 128, 64, 8, 8, 4, 'hybrid', 1, True),
 (128, 256, 64, 8, 8, 3, 'tma', True, True), (128, 128, 64, 8, 8, 4, 'splitk', 2, True),
 (128, 128, 64, 8, 4, 3, 'tma', False, False, 'ws'), (128, 128, 64, 8, 4, 4, 'tma', False, False, 'ws'),
 (128, 256, 64, 8, 4, 3, 'tma', False, False, 'ws'), (256, 128, 64, 8, 4, 3, 'tma', False, False, 'ws')]"
timeout 200 python3 benchmarks/tune_gemm.py --out "$OUT/gemm" --shapes "$S" --configs "$C" --rep-ms 25 > "$L/gemm.log" 2>&1
grep "tune gemm\|rror" "$L/gemm.log" | tail -140 | cut -c1-150
tar -czf "$OUT/logs.tgz" -C "$L" .
