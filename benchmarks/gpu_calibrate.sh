#!/usr/bin/env bash
# The one script a GPU call runs to calibrate the GPU in hand: kernel checks, the timing sweep
# (llmperf_kernels.calibrate), then the 5-fold held-out fit error per op kind. Writes to $OUT:
#   <hardware id>.csv (the calibration), calibrate.log, report.txt, env.txt
# Usage: OUT=out bash benchmarks/gpu_calibrate.sh [quick|full]
MODE=${1:-quick}
source "$(dirname "$0")/gpu_env.sh"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/env.txt"
HW=$(python3 -c "import torch; from llmperf_kernels.calibrate import detect_hardware; print(detect_hardware(torch.cuda.get_device_name()))") || exit 1
echo "hardware: $HW"
timeout "${CAL_TIMEOUT:-420}" python3 -m llmperf_kernels.calibrate -g "$HW" --mode "$MODE" --out "$OUT/$HW.csv" 2>&1 | tee "$OUT/calibrate.log"
python3 - "$OUT/$HW.csv" "$HW" <<'PY' 2>&1 | tee "$OUT/report.txt"
import sys
from llmperf import load_hardware
from llmperf.calibration_fit import held_out_errors, MeasuredCalibration
from llmperf.calibration_report import error_summary
from llmperf.calibration_table import load_calibration_csv
hw = load_hardware(sys.argv[2])
frame = load_calibration_csv(sys.argv[1], hw.name)
print(error_summary(held_out_errors(frame, hw)).to_string(index=False))
cal = MeasuredCalibration(frame, hw, "report")
print("launch floor (graph) s:", cal.overhead_s)
rows = cal.rows
for (kind, dtype, src), g in rows.groupby(["op_kind", "dtype", "kernel_source"]):
    print(f"{kind:18s} {dtype:6s} {src:17s} n={len(g):4d} max eff={g['efficiency'].max():.3f} median eff={g['efficiency'].median():.3f}")
PY
