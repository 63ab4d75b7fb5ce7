#!/usr/bin/env bash
# Session 16's last device call: the W4A16 section of kernels_bench.py (the 2.5x target at M <= 16) with
# today's kernels, plus the prefill section on an H200 (which has not run the persistent FA3 entries;
# its guarded probe first). Usage: OUT=... bash benchmarks/gpu_session16_wq.sh   (timeout ~300)
source "$(dirname "$0")/gpu_env.sh"
START=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
SECTIONS=wq
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  timeout 60 python3 -c "
import torch
from llmperf_kernels import attention_prefill, attention_prefill_ref
q = torch.randn(2, 32, 1500, 128, dtype=torch.bfloat16, device='cuda'); k = torch.randn(2, 8, 1500, 128, dtype=torch.bfloat16, device='cuda'); v = torch.randn_like(k)
for causal in (True, False):
    o = attention_prefill(q, k, v, causal, config=(128, 128, 4, 2, 'fa3', 'ps')); torch.cuda.synchronize()
    r = attention_prefill_ref(q, k, v, causal); e = ((o.float() - r).norm() / r.norm()).item(); print('probe ps causal', causal, 'rel err', e)
    assert e < 1e-2
" > "$OUT/probe.log" 2>&1 && SECTIONS=wq,prefill
  cat "$OUT/probe.log"
fi
timeout ${BENCH_TIMEOUT:-240} python3 benchmarks/kernels_bench.py --out "$OUT/kb" --only "$SECTIONS" > "$OUT/bench.log" 2>&1
echo "bench ($SECTIONS) exit $?"; grep -E "^\[(weight-only|prefill)\]|MET|MISS" "$OUT/bench.log" | cut -c1-170
echo "wall $(( $(date +%s) - START )) s"
