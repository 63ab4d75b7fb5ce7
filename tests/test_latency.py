"""Request latency closed form vs an explicit loop; throughput and cost definitions."""

import numpy as np
import pytest

from llmperf import ConstantCalibration, Step, Workload, estimate, load_hardware, load_model
from llmperf.errors import LlmperfError
from llmperf.estimators.latency import _sum_max_affine, decode_sum_s, step_cost


@pytest.mark.parametrize("name", ["llama-3.1-8b", "gemma-2-9b", "phi-3-mini-4k", "deepseek-v2-lite",
                                  "gemma-3-27b-text"])
@pytest.mark.parametrize("overlap", ["max", "sum"])
def test_closed_form_equals_loop(name, overlap):
    m, hw = load_model(name), load_hardware("h100-sxm")
    cal = ConstantCalibration(0.7, 0.85, 4e-6)
    for b, p, o in [(1, 100, 40), (32, 1000, 200), (128, 2040, 17), (3, 1, 2), (5, 50, 1)]:
        fast = decode_sum_s(m, hw, Workload(), b, p, o, cal, overlap)
        slow = sum(step_cost(m, hw, Workload(), Step.decode(b, p + j), cal, overlap).step_time_s
                   for j in range(o - 1))
        assert fast == pytest.approx(slow, rel=1e-9, abs=1e-15)


def test_sum_max_affine_against_enumeration():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, s = rng.normal(size=(3, 1)), rng.normal(size=(3, 1))
        n = rng.integers(0, 30)
        brute = sum(max(a[k, 0] + s[k, 0] * x for k in range(3)) for x in range(n))
        assert _sum_max_affine(a, s, np.array([n]))[0] == pytest.approx(brute, abs=1e-9)


def test_estimate_definitions():
    m, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    e = estimate(m, hw, batch=8, prompt_len=1000, output_len=101, price_usd_per_hour=2.0)
    assert e["request_latency_s"] == pytest.approx(e["ttft_s"] + 100 * e["mean_tpot_s"])
    assert e["throughput_tokens_per_s"] == pytest.approx(8 * 101 / e["request_latency_s"])
    usd_per_s = 2.0 / 3600
    assert e["cost_usd_per_1m_output_tokens"] == pytest.approx(usd_per_s / e["throughput_tokens_per_s"] * 1e6)
    assert e["cost_usd_per_1m_input_tokens"] == pytest.approx(usd_per_s / (8 * 1000 / e["ttft_s"]) * 1e6)
    assert e["prefill_bound"] == "compute" and e["decode_bound"] == "memory"
    assert estimate(m, hw)["cost_usd_per_1m_output_tokens"] is None  # no price known


def test_context_beyond_the_model_is_refused_unless_allowed():
    m, hw = load_model("llama-2-7b"), load_hardware("h100-sxm")
    with pytest.raises(LlmperfError, match="max_position_embeddings.*--allow-long-context"):
        estimate(m, hw, prompt_len=4000, output_len=200)
    assert estimate(m, hw, prompt_len=4000, output_len=200, allow_long_context=True)["ttft_s"] > 0


@pytest.mark.parametrize("kwargs", [{"batch": 0}, {"batch": -3}, {"prompt_len": 0},
                                    {"output_len": 0}, {"batch": 1.5}])
def test_bad_workloads(kwargs):
    with pytest.raises(LlmperfError):
        estimate(load_model("llama-3.2-1b"), load_hardware("h100-sxm"), **kwargs)


def test_bound_index_is_argmax_over_the_stack():
    """cost._bound_index (elementwise, for speed) picks what np.argmax over the stacked times
    picks, ties to the first, with scalars broadcast."""
    from llmperf.cost import _bound_index

    rng = np.random.default_rng(7)
    for shape in [(), (5,), (40, 30)]:
        times = [rng.integers(0, 3, size=shape).astype(float) for _ in range(4)]  # many ties
        times[2] = np.zeros(())  # a scalar among arrays, as comm is for non-collective ops
        expected = np.argmax(np.stack(np.broadcast_arrays(*times)), axis=0)
        assert np.array_equal(_bound_index(*times), expected)
