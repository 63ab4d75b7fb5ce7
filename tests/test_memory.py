"""Memory: weights to the byte, fit verdict, max batch and max context consistent with it."""

import numpy as np
import pytest

from llmperf import (Workload, load_hardware, load_model, max_batch, max_context,
                     memory_breakdown, parameter_counts, weight_bytes)


def test_bf16_weights_are_two_bytes_per_param():
    for name in ("llama-3.1-8b", "mixtral-8x7b", "deepseek-v2-lite", "gemma-2-9b", "opt-6.7b"):
        m = load_model(name)
        assert weight_bytes(m, Workload()) == 2 * parameter_counts(m)["params_total"]


def test_int4_weights_closed_form_llama8b():
    m = load_model("llama-3.1-8b")
    p = parameter_counts(m)
    linear = p["params_attention"] + p["params_mlp"]  # every linear layer: K multiple of 128
    sixteen_bit = p["params_total"] - linear
    assert weight_bytes(m, Workload(weights="int4")) == pytest.approx(linear * 4.125 / 8 + sixteen_bit * 2)


def test_max_batch_and_max_context_are_tight():
    m, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    w = Workload()
    for ctx in (1024, 8192, 100_000):
        b = int(max_batch(m, hw, w, ctx))
        assert b >= 1
        assert memory_breakdown(m, hw, w, b, 1, ctx)["fits"]
        assert not memory_breakdown(m, hw, w, b + 1, 1, ctx)["fits"]
    for batch in (1, 16, 128):
        c = int(max_context(m, hw, w, batch))
        assert memory_breakdown(m, hw, w, batch, 1, c)["fits"]
        assert not memory_breakdown(m, hw, w, batch, 1, c + 1)["fits"]


def test_model_too_big_does_not_fit():
    m, hw = load_model("llama-3.1-405b"), load_hardware("h100-sxm")
    assert not memory_breakdown(m, hw, Workload(), 1, 128, 256)["fits"]
    assert max_batch(m, hw, Workload(), 1024) == 0
    assert memory_breakdown(m, hw, Workload(tensor_parallel=8, weights="fp8"), 1, 128, 256)["fits"]


def test_vectorized_memory():
    m, hw = load_model("qwen2.5-7b"), load_hardware("l4")
    out = memory_breakdown(m, hw, Workload(), np.array([1, 8, 64]), 512, np.array([1024, 1024, 1024]))
    assert out["kv_cache_bytes"].shape == (3,)
    assert np.all(np.diff(out["total_memory_bytes"]) > 0)


def test_require_fit_gives_one_actionable_line():
    from llmperf import estimate
    from llmperf.errors import LlmperfError

    m, hw = load_model("llama-3.1-405b"), load_hardware("h100-sxm")
    with pytest.raises(LlmperfError, match=r"does not fit on h100-sxm5-80gb: needs .* GB.*--tp"):
        estimate(m, hw, require_fit=True)
    assert estimate(m, hw)["fits"] is False  # without require_fit the row says so
