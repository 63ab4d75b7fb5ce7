"""KV-cache bytes per token against closed forms written out here."""

import pytest

from llmperf import Workload, kv_bytes, load_model
from llmperf.dtypes import kv_format
from llmperf.ops.kv import kv_bytes_per_token, kv_cache_bytes

BF16, FP8 = kv_format("bf16"), kv_format("fp8")


def test_mha_llama2_7b():
    # MHA: 2 (K and V) x 32 layers x 32 heads x 128 dims x 2 bytes = 512 KiB per token
    assert kv_bytes_per_token(load_model("llama-2-7b"), BF16) == 2 * 32 * 32 * 128 * 2 == 524288


def test_gqa_llama31_8b_and_fp8():
    # GQA: 2 x 32 layers x 8 kv heads x 128 x 2 bytes = 128 KiB; fp8 halves it
    m = load_model("llama-3.1-8b")
    assert kv_bytes_per_token(m, BF16) == 2 * 32 * 8 * 128 * 2 == 131072
    assert kv_bytes_per_token(m, FP8) == 2 * 32 * 8 * 128 * 1


def test_mqa_falcon_7b():
    # MQA: one KV head of 64 dims: 2 x 32 x 1 x 64 x 2 bytes
    assert kv_bytes_per_token(load_model("falcon-7b"), BF16) == 2 * 32 * 64 * 2


def test_mla_deepseek_v3_absorbed_and_naive():
    m = load_model("deepseek-v3")
    # latent: (kv_lora_rank 512 + rope 64) x 61 layers x 2 bytes, shared by all 128 heads
    assert kv_bytes_per_token(m, BF16, "absorbed") == (512 + 64) * 61 * 2
    # naive (HF): per head K of 192 and V of 128
    assert kv_bytes_per_token(m, BF16, "naive") == 61 * 128 * (192 + 128) * 2


def test_sliding_window_caps_local_layers():
    # Gemma-2-9B: 21 global + 21 local layers (window 4096); 8 kv heads x 256 dims
    m = load_model("gemma-2-9b")
    per_layer = 2 * 8 * 256 * 2
    assert kv_cache_bytes(m, BF16, 10000) == per_layer * (21 * 10000 + 21 * 4096)
    assert kv_cache_bytes(m, BF16, 1000) == per_layer * 42 * 1000
    # Mistral-7B-v0.3 has no window; Phi-3-mini windows every layer at 2047
    phi = load_model("phi-3-mini-4k")
    assert kv_cache_bytes(phi, BF16, 4000) == 2 * 32 * 32 * 96 * 2 * 2047


def test_tensor_parallel_splits_kv_heads():
    m = load_model("llama-3.1-70b")
    one = kv_bytes(m, Workload(), 1, 1000)
    assert kv_bytes(m, Workload(tensor_parallel=8), 1, 1000) == pytest.approx(one / 8)
    # 16 ranks > 8 kv heads: each rank keeps one replicated head
    assert kv_bytes(m, Workload(tensor_parallel=16), 1, 1000) == pytest.approx(one / 8)


def test_int8_kv_counts_scales():
    m = load_model("llama-3.1-8b")
    # one fp16 scale per 128-dim head vector: 128 + 2 bytes per vector
    assert kv_bytes_per_token(m, kv_format("int8")) == 2 * 32 * 8 * (128 + 2)
