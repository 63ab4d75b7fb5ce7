#!/usr/bin/env bash
# Session 9, first kernel call. (1) The prefill GPU tests with the warp-specialized candidates on
# (LLMPERF_PREFILL_WS=1: every _WS_CONFIGS entry, ragged / window / GQA / D64 / D256; never run on a
# GPU before), (2) tune_prefill.py on kernels_bench's prefill cases (TMA leaders vs the WS configs
# with session 8's cheaper causal mask, vs SDPA flash / cuDNN), (3) kernels_bench's prefill section
# with the WS candidates in the tuner if and only if (1) passed (BENCH=0 skips it). Logs in one archive.
# Usage: OUT=... bash benchmarks/gpu_session9_prefill.sh
source "$(dirname "$0")/gpu_env.sh"
L=$(mktemp -d)
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv;
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"; date -u; } > "$L/env.txt" 2>&1
cat "$L/env.txt"
LLMPERF_PREFILL_WS=1 timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels \
  tests/kernels/test_attention_prefill.py > "$L/pytest_prefill_ws.log" 2>&1
WS_RC=$?
tail -4 "$L/pytest_prefill_ws.log"
timeout 170 python3 benchmarks/tune_prefill.py --out "$OUT" --rep-ms 25 > "$L/tune_prefill.log" 2>&1
grep -v "^$" "$L/tune_prefill.log" | tail -32 | cut -c1-150
if [ "$WS_RC" = 0 ] && [ "${BENCH:-1}" = 1 ]; then
  export LLMPERF_PREFILL_WS=1; echo "bench (prefill only) with WS candidates"
  timeout 200 python3 benchmarks/kernels_bench.py --out "$OUT" --only ceiling,prefill > "$L/bench.log" 2>&1
  tail -12 "$L/bench.log"
fi
tar -czf "$OUT/logs.tgz" -C "$L" .
