#!/usr/bin/env bash
# One GPU call: end-to-end validation points of the reference decoder, then of the transformers
# model (each model with the host's eager rate measured just before it).
# Usage: OUT=out bash benchmarks/gpu_session_validate.sh
HERE=$(dirname "$0")
IMPL=reference VAL_TIMEOUT=${REF_TIMEOUT:-390} bash "$HERE/gpu_validate.sh" --budget-s "${REF_BUDGET:-360}"
IMPL=hf VAL_TIMEOUT=${HF_TIMEOUT:-170} bash "$HERE/gpu_validate.sh" --budget-s "${HF_BUDGET:-140}"
ls -la "${OUT:-out}"
