#!/usr/bin/env bash
# Session 12: the Gluon FA3-style prefill kernel (kernels/attention_prefill_fa3.py) on the GPU, in one call:
# (1) a 60-s guarded first launch (a wrong mbarrier phase would hang, not fail), (2) its GPU tests, (3)
# tune_prefill.py side by side with the Triton TMA / autoWS kernels and SDPA (flash, cuDNN) in the same run.
# Usage: OUT=... [CASES=...] [CONFIGS=...] bash benchmarks/gpu_session12_fa3.sh
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/env.txt"
timeout 60 python3 - <<'PY' 2>&1 | tail -5 | tee "$OUT/probe.log"
import torch, time
from llmperf_kernels import attention_prefill, attention_prefill_ref
q = torch.randn(2, 8, 1000, 128, dtype=torch.bfloat16, device="cuda")
k = torch.randn(2, 2, 1000, 128, dtype=torch.bfloat16, device="cuda")
v = torch.randn_like(k)
for causal in (True, False):
    o = attention_prefill(q, k, v, causal, config=(128, 128, 4, 2, "fa3")); torch.cuda.synchronize()
    r = attention_prefill_ref(q, k, v, causal)
    print("probe causal", causal, "rel err", ((o.float() - r).norm() / r.norm()).item(), "finite", torch.isfinite(o).all().item())
PY
echo "probe exit ${PIPESTATUS[0]}"
timeout ${PYTEST_TIMEOUT:-200} python3 -m pytest -q -p no:cacheprovider -m gpu tests/kernels/test_attention_prefill_fa3.py -x > "$OUT/pytest_fa3.log" 2>&1
echo "pytest exit $?"; tail -3 "$OUT/pytest_fa3.log"
CASES=${CASES:-8x32/8x2048x128c,4x32/8x4096x128c,1x32/8x16384x128c,4x32/8x4096x128f,4x32/8x4096x64c}
CONFIGS=${CONFIGS:-"[(128, 128, 8, 3, 'tma'), (128, 128, 4, 2, 'ws'), (128, 128, 4, 2, 'fa3'), (128, 128, 4, 3, 'fa3'), (128, 64, 4, 3, 'fa3'), (128, 128, 4, 2, 'fa3', 'pp'), (128, 128, 4, 3, 'fa3', 'pp'), (128, 128, 4, 2, 'fa3', 'pp', 'u2')]"}
timeout ${TUNE_TIMEOUT:-260} python3 benchmarks/tune_prefill.py --out "$OUT/tp" --cases "$CASES" --configs "$CONFIGS" --rep-ms 30 > "$OUT/tune_prefill.log" 2>&1
echo "tune exit $?"; grep "tune prefill" "$OUT/tune_prefill.log" | cut -c1-170
tar czf "$OUT/logs.tgz" -C "$OUT" env.txt probe.log pytest_fa3.log tune_prefill.log 2>/dev/null \
  && rm -f "$OUT"/{env.txt,probe.log,pytest_fa3.log,tune_prefill.log}
