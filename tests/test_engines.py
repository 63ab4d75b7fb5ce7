"""Engine profiles: kernel counts, fusion traffic, CUDA graphs vs eager, kernel sources."""

import numpy as np
import pytest

from llmperf import ConstantCalibration, Step, Workload, load_hardware, load_model
from llmperf.cost import cost_ops
from llmperf.engines import ENGINES, apply_engine, get_engine
from llmperf.errors import LlmperfError
from llmperf.estimators.latency import engine_ops, step_cost
from llmperf.ops.builder import build_step_ops

M = load_model("llama-3.1-8b")
HW = load_hardware("h100-sxm")


def by_name(ops):
    return {(o.group, o.name): o for o in ops}


def test_fused_engine_folds_residual_adds_into_the_norms():
    raw = by_name(build_step_ops(M, Workload(), Step.decode(4, 100)))
    fused = by_name(apply_engine(list(raw.values()), get_engine("fused")))
    g = "layers.full.dense"
    assert fused[(g, "attn_residual_add")].kernels == 0
    assert fused[(g, "attn_residual_add")].memory_bytes == 0
    norm_raw, norm = raw[(g, "post_attention_layernorm")], fused[(g, "post_attention_layernorm")]
    assert norm.kernels == 1
    assert norm.act_in_bytes + norm.act_out_bytes == 2 * (norm_raw.act_in_bytes + norm_raw.act_out_bytes)


def test_torch_rmsnorm_is_eight_kernels_and_nine_times_the_traffic():
    ops, _, _ = engine_ops(M, Workload(engine="reference"), Step.prefill(1, 128), ConstantCalibration(1, 1))
    norm = by_name(ops)[("layers.full.dense", "input_layernorm")]
    # x.float, pow, mean, +eps, rsqrt, *, .to, w* ; bytes per element 36 instead of 4
    assert norm.kernels == 8
    assert norm.act_in_bytes + norm.act_out_bytes == pytest.approx(9 * 2 * 128 * 4096 * 2)


def test_hf_engine_runs_separate_projections_eagerly():
    ops, _, host = engine_ops(M, Workload(engine="hf-transformers"), Step.decode(1, 10),
                              ConstantCalibration(1, 1))
    names = {o.name for o in ops}
    assert {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"} <= names
    assert "qkv_proj" not in names
    assert host == (0.0, 0.0)  # ConstantCalibration has no eager launch floor


def test_eager_step_is_bounded_by_host_launches():
    ops = build_step_ops(load_model("llama-3.2-1b"), Workload(), Step.decode(1, 10))
    kernels = sum(o.count * o.kernels for o in ops)
    slow_host = cost_ops(ops, HW, host_launch_s=1e-3)
    assert slow_host.step_time_s == pytest.approx(kernels * 1e-3)
    assert slow_host.step_bound == "overhead"
    fast_host = cost_ops(ops, HW, host_launch_s=1e-12)
    assert fast_host.step_time_s == pytest.approx(cost_ops(ops, HW).step_time_s)


def test_engine_changes_time_in_the_expected_direction():
    cal = ConstantCalibration(0.8, 0.8, overhead_s=2e-6)
    t = {e: float(step_cost(M, HW, Workload(engine=e), Step.decode(1, 2048), cal).step_time_s)
         for e in ("fused", "reference")}
    assert t["reference"] > t["fused"]  # 38 vs 14 kernels per layer, more bytes


def test_unknown_engine():
    with pytest.raises(LlmperfError, match="unknown engine 'vllm'.*fused"):
        Workload(engine="vllm")
    assert set(ENGINES) >= {"fused", "reference", "hf-transformers"}


def test_engine_routes_calibration_sources():
    from llmperf.calibration_io import resolve_calibration

    cal = resolve_calibration("auto", HW)
    cublas = step_cost(M, HW, Workload(engine="fused"), Step.prefill(1, 2048), cal)
    triton = step_cost(M, HW, Workload(engine="triton"), Step.prefill(1, 2048), cal)
    assert np.isfinite(cublas.step_time_s) and np.isfinite(triton.step_time_s)
    assert cublas.step_time_s != triton.step_time_s


def test_hf_dynamic_cache_copies_the_whole_cache_every_step():
    """transformers' DynamicCache appends with torch.cat: a decode step over C cached tokens reads
    C and writes C + 1 tokens of K/V per layer (closed form per token: 2 x Hkv x D x 2 bytes)."""
    batch, context = 4, 1000
    token_bytes = 2 * M.num_kv_heads * M.head_dim * 2
    hf, _, _ = engine_ops(M, Workload(engine="hf-transformers"), Step.decode(batch, context),
                          ConstantCalibration(1, 1))
    ref, _, _ = engine_ops(M, Workload(engine="reference"), Step.decode(batch, context),
                           ConstantCalibration(1, 1))
    write_hf = [o for o in hf if o.name == "kv_cache_write"][0]
    write_ref = [o for o in ref if o.name == "kv_cache_write"][0]
    assert float(write_ref.kv_read_bytes) == 0.0
    assert float(write_ref.kv_write_bytes) == pytest.approx(batch * token_bytes)
    assert float(write_hf.kv_read_bytes) == pytest.approx(batch * context * token_bytes)
    assert float(write_hf.kv_write_bytes) == pytest.approx(batch * (context + 1) * token_bytes)
    # a prefill into an empty cache copies nothing extra
    pre, _, _ = engine_ops(M, Workload(engine="hf-transformers"), Step.prefill(2, 64),
                           ConstantCalibration(1, 1))
    write_pre = [o for o in pre if o.name == "kv_cache_write"][0]
    assert float(write_pre.kv_read_bytes) == 0.0
    assert float(write_pre.kv_write_bytes) == pytest.approx(2 * 64 * token_bytes)


def test_hf_kernel_count_matches_the_profiled_layer():
    """Read off a profiled transformers 5 Llama prefill (benchmarks/results/validation/
    kernels_hf_*.txt): per layer 2 x 8 RMSNorm kernels, 7 GEMMs, 10 RoPE, 2 cache cats, 1 SDPA,
    2 residual adds, SiLU and mul = 40."""
    ops, _, _ = engine_ops(M, Workload(engine="hf-transformers"), Step.prefill(1, 128),
                           ConstantCalibration(1, 1))
    per_layer = sum(o.kernels for o in ops if o.count == M.num_layers)
    assert per_layer == 40
