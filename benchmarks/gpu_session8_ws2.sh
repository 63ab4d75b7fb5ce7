#!/usr/bin/env bash
# Session 8, second device call: does the warp-specialized prefill with device-side descriptors
# finish and compute the right thing (probe_ws.py, one subprocess per form, 60 s timeout)? Only if
# the whole-tile form does: every tune_prefill.py candidate vs SDPA on kernels_bench's cases and the
# forced-WS GPU tests. Usage: OUT=... bash benchmarks/gpu_session8_ws2.sh
source "$(dirname "$0")/gpu_env.sh"
python3 benchmarks/probe_ws.py --forms lib_prefill_even,lib_prefill --timeout 60 2>&1 | tee "$OUT/probe_ws2.log"
if grep -q "lib_prefill_even nw 4: ok" "$OUT/probe_ws2.log"; then
  timeout 200 python3 benchmarks/tune_prefill.py --out "$OUT" --rep-ms 25 \
    --cases 8x32/8x2048x128c,4x32/8x4096x128c,2x32/8x8192x128c,1x32/8x16384x128c,4x32/8x4096x128f,4x32/8x4096x64c \
    2>&1 | grep "tune prefill\|rror" | tee "$OUT/tune_prefill.log"
fi
if grep -q "lib_prefill nw 4: ok" "$OUT/probe_ws2.log"; then
  LLMPERF_PREFILL_WS=1 timeout 120 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels \
    tests/kernels/test_attention_prefill.py 2>&1 | tail -4 | tee "$OUT/pytest_prefill.log"
fi
