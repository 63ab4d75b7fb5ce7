#!/usr/bin/env bash
# Session 13: the persistent Gluon FA3 prefill entries ("ps", kernels/attention_prefill_fa3.py) on the GPU in
# one call: (1) a guarded first launch of ps against the reference (a wrong mbarrier phase hangs, not fails),
# (2) the FA3 GPU tests (every entry, 11 shapes, in 8 processes), (3) tune_prefill.py: TMA / FA3 / FA3-ps side by
# side with SDPA (flash, cuDNN), (4) if (1) and (2) passed: kernels_bench.py's prefill section with the default
# candidates (the FA3 entries among them). Usage: OUT=... [PYTEST_K=ps] [CONFIGS_BASE="[(..), (..)"] [CASES=..]
# [BUDGET_S=560] bash benchmarks/gpu_session13_ps.sh
source "$(dirname "$0")/gpu_env.sh"
START=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/env.txt"
timeout 90 python3 - <<'PY' 2>&1 | tail -8 | tee "$OUT/probe.log"
import torch
from llmperf_kernels import attention_prefill, attention_prefill_ref
ok = True
for (B, Hq, Hkv, S) in [(2, 8, 2, 1000), (2, 32, 8, 1500)]:
    q = torch.randn(B, Hq, S, 128, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(B, Hkv, S, 128, dtype=torch.bfloat16, device="cuda")
    v = torch.randn_like(k)
    for causal in (True, False):
        o = attention_prefill(q, k, v, causal, config=(128, 128, 4, 2, "fa3", "ps")); torch.cuda.synchronize()
        r = attention_prefill_ref(q, k, v, causal)
        e = ((o.float() - r).norm() / r.norm()).item()
        ok &= e < 1e-2 and bool(torch.isfinite(o).all())
        print("probe ps", B, Hq, Hkv, S, "causal", causal, "rel err", e)
raise SystemExit(0 if ok else 1)
PY
PROBE=${PIPESTATUS[0]}; echo "probe exit $PROBE"
timeout ${PYTEST_TIMEOUT:-200} python3 -m pytest -q -p no:cacheprovider -n 8 -m gpu ${PYTEST_K:+-k "$PYTEST_K"} tests/kernels/test_attention_prefill_fa3.py > "$OUT/pytest_fa3.log" 2>&1
PYT=$?; echo "pytest exit $PYT"; tail -3 "$OUT/pytest_fa3.log"
CASES=${CASES:-16x32/8x1024x128c,8x32/8x2048x128c,4x32/8x4096x128c,2x32/8x8192x128c,4x32/8x4096x128f,4x32/8x4096x64c}
CONFIGS=${CONFIGS_BASE:-"[(128, 128, 8, 3, 'tma'), (128, 128, 4, 2, 'fa3'), (128, 128, 4, 3, 'fa3')"}
[ "$PROBE" = 0 ] && CONFIGS="$CONFIGS, (128, 128, 4, 2, 'fa3', 'ps'), (128, 128, 4, 3, 'fa3', 'ps')"
timeout ${TUNE_TIMEOUT:-200} python3 benchmarks/tune_prefill.py --out "$OUT/tp" --cases "$CASES" --configs "$CONFIGS]" --rep-ms 30 > "$OUT/tune_prefill.log" 2>&1
echo "tune exit $?"; grep "tune prefill" "$OUT/tune_prefill.log" | cut -c1-170
LEFT=$(( ${BUDGET_S:-560} - ($(date +%s) - START) ))
if [ "$PROBE" = 0 ] && [ "$PYT" = 0 ] && [ "$LEFT" -gt 60 ]; then
  timeout "$LEFT" python3 benchmarks/kernels_bench.py --out "$OUT/kb" --only prefill > "$OUT/bench_prefill.log" 2>&1
  echo "bench prefill exit $? (limit $LEFT s)"; grep "^\[prefill\]" "$OUT/bench_prefill.log" | cut -c1-150
else
  echo "bench prefill skipped (probe $PROBE, pytest $PYT, $LEFT s left)"
fi
tar czf "$OUT/logs.tgz" -C "$OUT" env.txt probe.log pytest_fa3.log tune_prefill.log bench_prefill.log 2>/dev/null \
  && rm -f "$OUT"/{env.txt,probe.log,pytest_fa3.log,tune_prefill.log,bench_prefill.log}
echo "wall $(( $(date +%s) - START )) s"
