#!/usr/bin/env bash
# Session 7, final kernel call: (1) the W4 GPU tests (v8 "mmah", every tile-aligned / v7e KS /
# v7d gemv7 config, graph replays), (2) one M = 1 A/B tuner run of the gemv7 leaders (v7e now
# passes the wrapper's check), (3) the full side-by-side benchmark (README table) with the final
# code. Small logs go into one archive (the device returns few files). Usage: OUT=... bash benchmarks/gpu_session7_final.sh
source "$(dirname "$0")/gpu_env.sh"
L=$(mktemp -d)
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv;
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"; date -u; } > "$L/env.txt" 2>&1
timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mmah.py \
  tests/kernels/test_w4a16_gemv7.py -k "mmah or tile_aligned or v7d or graph_replay" > "$L/pytest_w4.log" 2>&1
tail -3 "$L/pytest_w4.log"
timeout 100 python3 benchmarks/tune_w4a16.py --out "$L/a3" --m 1 --paths gemv7 --aligned > "$L/a3.log" 2>&1
tail -6 "$L/a3.log"
timeout 330 python3 benchmarks/kernels_bench.py --out "$OUT" > "$L/bench.log" 2>&1
tail -25 "$L/bench.log"
tar -czf "$OUT/logs.tgz" -C "$L" .
