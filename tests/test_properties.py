"""Properties that must hold for every model, grid point and calibration (hypothesis)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from llmperf import (ConstantCalibration, Step, Workload, build_step_ops, bundled_model_names,
                     load_hardware, load_model)
from llmperf.cost import cost_ops

MODELS = bundled_model_names()
DENSE = [n for n in MODELS if not load_model(n).is_moe]
HARDWARE = ["h100-sxm5-80gb", "a100-sxm4-80gb", "mi300x", "tpu-v5e", "l4"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def total(ops, field):
    return sum(getattr(o, field) * o.count for o in ops)


@SETTINGS
@given(st.sampled_from(MODELS), st.integers(1, 64), st.integers(1, 512), st.integers(0, 4096),
       st.integers(2, 5))
def test_flops_linear_in_batch(name, batch, q_len, past, k):
    m = load_model(name)
    one = total(build_step_ops(m, Workload(), Step.of(batch, q_len, past)), "flops")
    many = total(build_step_ops(m, Workload(), Step.of(k * batch, q_len, past)), "flops")
    # lm_head, attention and GEMMs all scale with the number of sequences
    assert many == pytest.approx(k * one, rel=1e-9)


@SETTINGS
@given(st.sampled_from(DENSE), st.integers(1, 256), st.integers(0, 8192))
def test_decode_weight_bytes_independent_of_batch_for_dense(name, batch, ctx):
    m = load_model(name)
    w1 = total(build_step_ops(m, Workload(), Step.decode(1, ctx)), "weight_bytes")
    wb = total(build_step_ops(m, Workload(), Step.decode(batch, ctx)), "weight_bytes")
    # the only batch-dependent weight traffic is the embedding rows gathered (one per token)
    m_rows = (batch - 1) * m.hidden_size * 2 * (2 if m.learned_position_embeddings else 1)
    assert wb - w1 == pytest.approx(m_rows, rel=1e-9)


@SETTINGS
@given(st.sampled_from(MODELS), st.sampled_from(HARDWARE), st.integers(1, 512),
       st.integers(1, 4096), st.integers(0, 32768),
       st.floats(0.05, 1.0), st.floats(0.05, 1.0), st.floats(0, 1e-4), st.sampled_from(["max", "sum"]))
def test_times_finite_nonnegative_and_at_least_the_roofline(name, hw_name, batch, q_len, past,
                                                              e_c, e_m, overhead, overlap):
    m, hw = load_model(name), load_hardware(hw_name)
    cal = ConstantCalibration(e_c, e_m, overhead)
    cost = cost_ops(build_step_ops(m, Workload(), Step.of(batch, q_len, past)), hw, cal, overlap)
    for t, c, mem in zip(cost.time_s, cost.compute_s, cost.memory_s):
        assert np.all(np.isfinite(t)) and np.all(t >= 0)
        assert np.all(t >= np.maximum(c, mem) * (1 - 1e-12))
        assert np.all(c >= 0) and np.all(mem >= 0)
    assert np.isfinite(cost.step_time_s) and cost.step_time_s > 0


@SETTINGS
@given(st.sampled_from(["llama-3.1-70b", "qwen2.5-72b", "llama-2-13b", "mixtral-8x7b"]),
       st.sampled_from([2, 4, 8]), st.integers(1, 64))
def test_tp_divides_gemm_weight_bytes(name, tp, batch):
    m = load_model(name)
    def gemm_w(w):
        ops = build_step_ops(m, w, Step.decode(batch, 128))
        return sum(o.weight_bytes * o.count for o in ops
                   if o.kind == "gemm" and o.name not in ("router",))
    assert gemm_w(Workload(tensor_parallel=tp)) == pytest.approx(gemm_w(Workload()) / tp, rel=1e-9)


def test_more_bandwidth_never_slower():
    m = load_model("llama-3.1-8b")
    h100, h200 = load_hardware("h100-sxm"), load_hardware("h200")
    ops = build_step_ops(m, Workload(), Step.decode(np.arange(1, 300), 2048))
    assert np.all(cost_ops(ops, h200).step_time_s <= cost_ops(ops, h100).step_time_s)
