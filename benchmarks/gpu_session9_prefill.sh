#!/usr/bin/env bash
# Session 9, first kernel call. (1) The prefill GPU tests with the warp-specialized candidates on
# (LLMPERF_PREFILL_WS=1: every _WS_CONFIGS entry, ragged / window / GQA / D64 / D256; never run on a
# GPU before), (2) tune_prefill.py on kernels_bench's prefill cases (TMA leaders vs the WS configs
# with session 8's cheaper causal mask, vs SDPA flash / cuDNN), (3) W4A16 mmah DQ = 1 tests + tuner (below). Logs in one archive.
# Usage: OUT=... bash benchmarks/gpu_session9_prefill.sh
source "$(dirname "$0")/gpu_env.sh"
L=$(mktemp -d)
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv;
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"; date -u; } > "$L/env.txt" 2>&1
cat "$L/env.txt"
LLMPERF_PREFILL_WS=1 timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels \
  tests/kernels/test_attention_prefill.py > "$L/pytest_prefill_ws.log" 2>&1
WS_RC=$?
tail -4 "$L/pytest_prefill_ws.log"
timeout 140 python3 benchmarks/tune_prefill.py --out "$OUT" --rep-ms 25 \
  --cases 8x32/8x2048x128c,4x32/8x4096x128c,1x32/8x16384x128c,4x32/8x4096x128f > "$L/tune_prefill.log" 2>&1
grep -v "^$" "$L/tune_prefill.log" | tail -32 | cut -c1-150
# (3) W4A16 M = 16 "mmah" with the packed-PTX dequantization (DQ = 1) next to DQ = 0 twins: GPU tests
# (exact codes, every listed config at the layer shapes), then the tuner's M = 4 / 16 lists timed.
timeout 120 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  > "$L/pytest_w4_mmah.log" 2>&1
tail -4 "$L/pytest_w4_mmah.log"
timeout 150 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16,4 --paths mmah --hbm-tbps 3.13 > "$L/tune_w4.log" 2>&1
grep -A16 "^== " "$L/tune_w4.log" | cut -c1-110; tail -12 "$L/tune_w4.log"
tar -czf "$OUT/logs.tgz" -C "$L" .
