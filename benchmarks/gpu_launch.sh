#!/usr/bin/env bash
# GPU call: re-measure only the launch floors and torch's eager host time per kernel
# (llmperf_kernels.calibrate --mode launch) for the GPU in hand; writes $OUT/<hw>_launch.csv.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SHIM=$(mktemp -d)
ln -sfn "$ROOT/kernels" "$SHIM/llmperf_kernels"
export PYTHONPATH="$SHIM:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
python3 -m llmperf_kernels.calibrate -g "$HW" --mode launch --out "$OUT/${HW}_launch.csv" 2>&1 | tee "$OUT/launch.log"
