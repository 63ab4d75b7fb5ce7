#!/usr/bin/env bash
# One GPU call: calibrate through the CLI (quick grid), then the transformers validation points.
# Usage: OUT=out bash benchmarks/gpu_session_cal_hf.sh
HERE=$(dirname "$0")
CAL_TIMEOUT=${CAL_TIMEOUT:-330} bash "$HERE/gpu_calibrate.sh" quick
IMPL=hf VAL_TIMEOUT=${VAL_TIMEOUT:-200} bash "$HERE/gpu_validate.sh" --budget-s "${HF_BUDGET:-170}"
ls -la "${OUT:-out}"
