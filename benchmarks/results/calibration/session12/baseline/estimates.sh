cd "$(dirname "$0")/../../../../.."  # repo root
for g in h100-sxm h200-sxm; do for w in int4 bf16; do for b in 1 32 64; do
python -m llmperf.cli estimate -m llama-3.1-8b -g $g --weights $w --batch $b --prompt 2048 -f json | python -c "
import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d
print('$g $w batch $b: TTFT %.3f s  TPOT %.2f ms [%.2f, %.2f]  cal %s' % (d['ttft_s'], d['tpot_s']*1e3, d['tpot_s_low']*1e3, d['tpot_s_high']*1e3, d['calibration']))"
done; done; done
