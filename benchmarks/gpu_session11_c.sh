#!/usr/bin/env bash
# Session 11, call C: the scale-folded "mmah" variants (DQ = 3: two chained K = 64 dots; DQ = 4: one K = 128
# dot; W4_FOLD_TRIAL) and the dequantization launch variants of the "dq" path (W4_DQ_TRIAL): GPU tests
# (every config at layer shapes, exact codes), then tune_w4a16 A/Bs against call A's winners at
# M = 16 / 64 / 256 / 1024 / 4096 (cuBLAS bf16 in the same run). Usage: OUT=... bash benchmarks/gpu_session11_c.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
timeout 170 python3 -m pytest -q -m gpu -p no:cacheprovider --confcutdir=tests/kernels tests/kernels/test_w4a16_mid.py \
  tests/kernels/test_w4a16_mmah.py -k "mid or prefill or exact" > "$OUT/pytest_w4.log" 2>&1
echo "pytest exit $?"; tail -3 "$OUT/pytest_w4.log"
G=128
run() {  # M, configs
  timeout 120 python3 benchmarks/tune_w4a16.py --out "$OUT/m$1" --m "$1" --configs "$2" --hbm-tbps 3.13 > "$OUT/tune_m$1.log" 2>&1
  echo "tune m$1 exit $?"; grep -A5 "best per case" "$OUT/tune_m$1.log" | tail -4
}
run 16 "[(16,128,$G,4,3,0,'mmah',2),(16,128,$G,4,4,0,'mmah',2),(16,128,$G,4,3,0,'mmah',3),(16,128,$G,4,4,0,'mmah',3),(16,128,$G,4,4,0,'mmah',4)]"
run 64 "[(64,128,$G,4,4,0,'mmah',2),(64,128,$G,8,4,0,'mmah',2),(32,128,$G,4,4,0,'mmah',2),(32,128,$G,4,4,0,'mmah',3),(64,128,$G,4,4,0,'mmah',3),(64,128,$G,8,4,0,'mmah',3),(64,128,$G,4,4,0,'mmah',4)]"
M256="[(64,128,$G,4,4,0,'mmah',2),(64,128,$G,4,4,0,'mmah',3),(64,128,$G,8,4,0,'mmah',3),(64,128,$G,4,4,0,'mmah',4),(128,128,$G,8,3,0,'mmah',3),(128,128,$G,8,4,0,'mmah',3),(128,128,$G,8,3,0,'mmah',4)"
run 256 "$M256]"
run 1024 "$M256,(0,32,256,4,1,0,'dq')]"
run 4096 "[(0,32,256,4,1,0,'dq'),(0,64,256,8,1,0,'dq'),(0,16,512,4,1,0,'dq'),(0,32,512,8,1,0,'dq'),(128,128,$G,8,3,0,'mmah',3),(128,128,$G,8,3,0,'mmah',4)]"
cat "$OUT"/m*/tune_w4a16.csv > "$OUT/tune_all.csv" 2>/dev/null; rm -rf "$OUT"/m16 "$OUT"/m64 "$OUT"/m256 "$OUT"/m1024 "$OUT"/m4096
tar czf "$OUT/logs.tgz" -C "$OUT" env.txt pytest_w4.log tune_m16.log tune_m64.log tune_m256.log tune_m1024.log tune_m4096.log 2>/dev/null \
  && rm -f "$OUT"/*.log "$OUT/env.txt"
