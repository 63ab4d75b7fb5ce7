#!/usr/bin/env bash
# Session 8, second kernel call. (1) Does the warp-specialized prefill on device-side descriptors
# finish and compute the right thing (probe_ws.py, one subprocess per form, 60 s timeout)? Only if
# the whole-tile form does: every tune_prefill.py candidate vs SDPA on kernels_bench's causal D128 /
# full / D64 cases; only if the ragged form does too: the prefill GPU tests with WS candidates on.
# (2) only when (1) stops early (device time): W4A16 v8 "mmah" at M = 16 with explicit split-K (SK = 1..8; session 7's ncu: 224 CTAs = 0.34
# waves, 10% occupancy) on the four 4096x14336-class shapes. Usage: OUT=... bash benchmarks/gpu_session8_ws2.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
python3 benchmarks/probe_ws.py --forms lib_prefill_even,lib_prefill --timeout 60 2>&1 | tee "$OUT/probe_ws2.log"
if grep -q "lib_prefill_even nw 4: ok" "$OUT/probe_ws2.log"; then
  timeout 110 python3 benchmarks/tune_prefill.py --out "$OUT" --rep-ms 25 \
    --cases 8x32/8x2048x128c,4x32/8x4096x128c,1x32/8x16384x128c,4x32/8x4096x128f \
    2>&1 | grep "tune prefill\|rror" | tee "$OUT/tune_prefill.log"
fi
if grep -q "lib_prefill nw 4: ok" "$OUT/probe_ws2.log"; then
  LLMPERF_PREFILL_WS=1 timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels \
    tests/kernels/test_attention_prefill.py -k "ws and 128" 2>&1 | tail -4 | tee "$OUT/pytest_prefill.log"
fi
if grep -q "lib_prefill_even nw 4: ok" "$OUT/probe_ws2.log"; then exit 0; fi  # device time: the W4 sweep only if WS failed
C="[(16, 64, 128, 4, 6, 1, 'mmah'), (16, 64, 128, 4, 6, 2, 'mmah'), (16, 64, 128, 4, 6, 3, 'mmah'),
 (16, 64, 128, 4, 6, 4, 'mmah'), (16, 64, 128, 4, 4, 8, 'mmah'), (16, 32, 128, 2, 6, 4, 'mmah')]"
timeout 90 python3 benchmarks/tune_w4a16.py --out "$OUT" --m 16 --configs "$C" --hbm-tbps 3.13 > "$OUT/w4_sk.log" 2>&1
grep -A12 "^== " "$OUT/w4_sk.log" | cut -c1-120
