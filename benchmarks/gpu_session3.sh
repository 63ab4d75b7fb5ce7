#!/usr/bin/env bash
# One GPU call of session 3: GPU tests of the reference decoder / host probe / routing paths, the
# MoE routing calibration rows (`calibrate --mode routing`, added to the bundled calibration), a
# per-kernel breakdown of measured steps (diagnostic), then end-to-end validation points with the
# host rate sampled between the repetitions of every point, for the reference decoder and the
# transformers model. Each part writes under $OUT/<part>/; logs come back in $OUT/logs.tgz.
# Usage: OUT=out PARTS="tests routing breakdown validate validate_hf" BUDGET=300 HF_BUDGET=140 bash benchmarks/gpu_session3.sh
source "$(dirname "$0")/gpu_env.sh"
PARTS=${PARTS:-tests routing breakdown validate}
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
echo "hardware: $HW; parts: $PARTS"
for part in $PARTS; do
  mkdir -p "$OUT/$part"; START=$(date +%s)
  case $part in
    tests) timeout 90 python3 -m pytest -m gpu tests/kernels -q -p no:cacheprovider --confcutdir=tests/kernels \
             -k "reference or hf or measure or host or routing" 2>&1 | tail -15 | tee "$OUT/tests/pytest.log" ;;
    routing) timeout 120 python3 -m llmperf_kernels.calibrate -g "$HW" --mode routing --out "$OUT/routing/$HW.csv" 2>&1 \
             | tail -8 | tee "$OUT/routing/log.txt" ;;
    breakdown) timeout 150 python3 benchmarks/step_breakdown.py --out "$OUT/breakdown/$HW.csv" 2>&1 \
             | grep -v -e SyncActivityProfilerHandler -e ActivityProfilerController | tee "$OUT/breakdown/log.txt" ;;
    validate) OUT="$OUT/validate" IMPL=reference VAL_TIMEOUT=$(( ${BUDGET:-300} + 40 )) \
             bash "$(dirname "$0")/gpu_validate.sh" --budget-s "${BUDGET:-300}" >/dev/null 2>&1
             tail -25 "$OUT"/validate/validate*.log ;;
    validate_hf) OUT="$OUT/validate_hf" IMPL=hf VAL_TIMEOUT=$(( ${HF_BUDGET:-140} + 40 )) \
             bash "$(dirname "$0")/gpu_validate.sh" --budget-s "${HF_BUDGET:-140}" >/dev/null 2>&1
             tail -25 "$OUT"/validate_hf/validate*.log ;;
  esac
  echo "== $part: $(( $(date +%s) - START )) s"
done
# at most 8 files come back: the CSVs as they are, every log and kernel list in one archive
(cd "$OUT" && find . -type f ! -name '*.csv' | tar czf logs.tgz -T - && find . -type f ! -name '*.csv' ! -name logs.tgz -delete)
find "$OUT" -type f
