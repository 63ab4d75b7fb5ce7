#!/usr/bin/env bash
# Session 11, call A: W4A16 beyond decode (M > 16) and the M = 16 DQ = 2 sweep.
# (1) GPU tests: every M > 16 config (DQ = 2 token blocks of 32 / 64 / 128, dequantize-then-GEMM) at layer
#     shapes, exact codes, the tuner's own pick at M = 4096; the DQ = 2 sweep's configs (W4_MMAH_DQ2_SWEEP).
# (2) tune_w4a16 at M = 16 over the sweep + the adopted DQ = 2 list + the two DQ = 1 leaders.
# (3) tune_w4a16 at M = 32 / 64 / 256 / 4096 over the tuner's lists (cuBLAS bf16 in the same run).
# Usage: OUT=... bash benchmarks/gpu_session11_a.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mid.py \
  tests/kernels/test_w4a16_mmah.py -k "mid or prefill or dq2" > "$OUT/pytest_w4.log" 2>&1
echo "pytest exit $?"; tail -3 "$OUT/pytest_w4.log"
C=$(python3 -c "
import importlib; w = importlib.import_module('llmperf_kernels.gemm_w4a16')
print(repr(w.W4_MMAH_DQ2_SWEEP + w.W4_MMAH_DQ2 + w._W4_MMAH[:2]))")
timeout 100 python3 benchmarks/tune_w4a16.py --out "$OUT/m16" --m 16 --configs "$C" --hbm-tbps 3.13 > "$OUT/tune_m16.log" 2>&1
echo "tune m16 exit $?"; grep -A6 "best per case" "$OUT/tune_m16.log"
timeout 230 python3 benchmarks/tune_w4a16.py --out "$OUT/mid" --m 32,64,256,4096 --hbm-tbps 3.13 > "$OUT/tune_mid.log" 2>&1
echo "tune mid exit $?"; grep -A18 "best per case" "$OUT/tune_mid.log"
# at most 8 files come back: the logs travel as one archive
tar czf "$OUT/logs.tgz" -C "$OUT" env.txt pytest_w4.log tune_m16.log tune_mid.log 2>/dev/null \
  && rm -f "$OUT"/{env.txt,pytest_w4.log,tune_m16.log,tune_mid.log}
