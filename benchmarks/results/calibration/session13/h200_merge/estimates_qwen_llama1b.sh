# int4 Qwen2.5-7B / Llama-3.2-1B estimates on the H200 (fused engine, prompt 2048), the H200 file before
# the session-13 merge (commit c4826d5) and after. Usage: bash .../estimates_qwen_llama1b.sh (any cwd)
cd "$(dirname "$0")/../../../../.."  # repo root
B=$(mktemp -d)/h200-sxm-141gb.csv; git show c4826d5:hardware/calibration/h200-sxm-141gb.csv > "$B"
for m in qwen2.5-7b llama-3.2-1b; do for c in "$B" hardware/calibration/h200-sxm-141gb.csv; do for b in 1 16 32 64; do
t=$([ "$c" = "$B" ] && echo before || echo after)
python -m llmperf.cli estimate -m $m -g h200-sxm --weights int4 --batch $b --prompt 2048 --calibration "$c" -f json | python -c "
import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d
print('$m int4 %-6s batch $b: TTFT %.3f s  TPOT %.2f ms [%.2f, %.2f]' % ('$t', d['ttft_s'], d['tpot_s']*1e3, d['tpot_s_low']*1e3, d['tpot_s_high']*1e3))"
done; done; done
