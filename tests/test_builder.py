"""The op builder against closed forms written out in each test."""

import numpy as np
import pytest

from llmperf import Step, Workload, build_step_ops, load_model, parameter_counts
from llmperf.ops.ffn import expected_experts_touched


def by_name(ops):
    return {(o.group, o.name): o for o in ops}


def test_llama31_8b_decode_step_closed_form():
    m = load_model("llama-3.1-8b")
    b, ctx = 4, 1000
    ops = by_name(build_step_ops(m, Workload(), Step.decode(b, ctx)))
    g = "layers.full.dense"
    qkv = ops[(g, "qkv_proj")]
    assert qkv.count == 32
    assert qkv.flops == 2 * b * 4096 * (4096 + 2 * 1024)
    assert qkv.weight_bytes == 4096 * 6144 * 2
    att = ops[(g, "attention")]
    # 32 q heads, each token attends ctx + 1 keys; QK and PV with d = 128 each
    assert att.flops == 2 * b * 32 * (ctx + 1) * (128 + 128)
    assert att.kv_read_bytes == b * (ctx + 1) * 8 * 2 * 128 * 2
    assert ops[(g, "gate_up_proj")].flops == 2 * b * 4096 * 2 * 14336
    assert ops[("head", "lm_head")].flops == 2 * b * 4096 * 128256


def test_prefill_lm_head_last_token_only_by_default():
    m = load_model("llama-3.2-1b")
    last = by_name(build_step_ops(m, Workload(), Step.prefill(2, 100)))[("head", "lm_head")]
    every = by_name(build_step_ops(m, Workload(logits="all"), Step.prefill(2, 100)))[("head", "lm_head")]
    assert last.flops == 2 * 2 * 2048 * 128256
    assert every.flops == 100 * last.flops


def test_total_prefill_flops_is_2_n_params_plus_attention():
    # Kaplan et al. arXiv:2001.08361 Table 1: forward ~ 2 N per token + attention 2 n_layer n_ctx d_attn.
    m = load_model("llama-3.1-8b")
    s = 512
    ops = build_step_ops(m, Workload(), Step.prefill(1, s))
    gemm = sum(o.flops * o.count for o in ops if o.kind == "gemm")
    p = parameter_counts(m)
    non_embedding = p["params_total"] - p["params_embedding"] - p["params_lm_head"] - p["params_norms"]
    expected = 2 * non_embedding * s + 2 * 4096 * 128256  # lm_head for the last token
    assert gemm == pytest.approx(expected, rel=1e-12)


def test_sliding_layers_cap_attention():
    m = load_model("gemma-2-9b")
    ops = by_name(build_step_ops(m, Workload(), Step.decode(1, 10000)))
    local = ops[("layers.sliding.dense", "attention")]
    glob = ops[("layers.full.dense", "attention")]
    assert local.count == glob.count == 21
    assert local.flops == 2 * 16 * 4096 * (256 + 256)
    assert glob.flops == 2 * 16 * 10001 * (256 + 256)


def test_expected_experts_touched():
    assert expected_experts_touched(8, 2, 1) == pytest.approx(2.0)
    assert expected_experts_touched(8, 2, 2) == pytest.approx(8 * (1 - (6 / 8) ** 2))
    assert expected_experts_touched(256, 8, 10**6) == pytest.approx(256)


def test_moe_decode_reads_touched_experts_only():
    m = load_model("mixtral-8x7b")
    ops = by_name(build_step_ops(m, Workload(), Step.decode(1, 100)))
    up = ops[("layers.full.moe", "experts_gate_up")]
    one_expert = 2 * 14336 * 4096 * 2
    assert up.weight_bytes == pytest.approx(2 * one_expert)  # batch 1: exactly top-2
    assert up.flops == 2 * 2 * 4096 * 2 * 14336
    assert up.held_weight_bytes == pytest.approx(8 * one_expert)


def test_mla_absorbed_decode_closed_form():
    m = load_model("deepseek-v3")
    ops = by_name(build_step_ops(m, Workload(), Step.decode(1, 999)))
    att = ops[("layers.full.moe", "attention")]
    # 128 heads over 1000 latent vectors: scores over 512+64, values over 512
    assert att.flops == 2 * 128 * 1000 * (576 + 512)
    assert att.kv_read_bytes == 1000 * 576 * 2
    uk = ops[("layers.full.moe", "q_absorb_w_uk")]
    assert uk.flops == 2 * 128 * 128 * 512 and uk.params == 128 * 128 * 512


def test_weight_only_int4_reads_fewer_bytes_and_adds_dequant():
    m = load_model("llama-3.1-8b")
    bf = by_name(build_step_ops(m, Workload(), Step.decode(1, 10)))
    q4 = by_name(build_step_ops(m, Workload(weights="int4"), Step.decode(1, 10)))
    key = ("layers.full.dense", "down_proj")
    assert q4[key].weight_bytes == 4096 * 14336 / 2 + 4096 * (14336 // 128) * 2
    assert q4[key].vector_flops == 2 * 4096 * 14336 and bf[key].vector_flops == 0
    assert q4[key].compute_dtype == "bf16"
    # embeddings and lm_head stay 16-bit
    assert q4[("head", "lm_head")].weight_bytes == bf[("head", "lm_head")].weight_bytes


def test_fp8_activations_use_fp8_peak_and_need_quantized_weights():
    from llmperf.errors import LlmperfError

    m = load_model("llama-3.1-8b")
    ops = by_name(build_step_ops(m, Workload(weights="fp8", activations="fp8"), Step.decode(1, 10)))
    assert ops[("layers.full.dense", "qkv_proj")].compute_dtype == "fp8"
    with pytest.raises(LlmperfError, match="quantize the weights"):
        Workload(weights="bf16", activations="fp8")


def test_tensor_parallel_divides_gemm_weights_and_adds_all_reduces():
    m = load_model("llama-3.1-70b")
    one = by_name(build_step_ops(m, Workload(), Step.decode(8, 100)))
    four = by_name(build_step_ops(m, Workload(tensor_parallel=4), Step.decode(8, 100)))
    for name in ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"):
        key = ("layers.full.dense", name)
        assert four[key].weight_bytes == pytest.approx(one[key].weight_bytes / 4)
    ar = four[("layers.full.dense", "attn_all_reduce")]
    assert ar.comm_bytes == pytest.approx(2 * 3 / 4 * 8 * 8192 * 2)
    assert ("layers.full.dense", "attn_all_reduce") not in one


def test_naive_attention_counts_full_scores_and_their_traffic():
    m = load_model("llama-3.2-1b")
    s = 256
    flash = by_name(build_step_ops(m, Workload(), Step.prefill(1, s)))[("layers.full.dense", "attention")]
    naive = by_name(build_step_ops(m, Workload(attention="naive"), Step.prefill(1, s)))[("layers.full.dense", "attention")]
    assert naive.flops == 2 * 32 * s * s * 128
    assert flash.flops == 2 * 32 * s * (s + 1) / 2 * 128
    assert naive.memory_bytes - flash.memory_bytes == 4 * 32 * s * s * 2


def test_grid_shapes_broadcast():
    m = load_model("qwen2.5-7b")
    b = np.array([[1.0], [8.0]])
    ctx = np.array([[100.0, 1000.0, 10000.0]])
    ops = build_step_ops(m, Workload(), Step.decode(b, ctx))
    assert all(np.broadcast_shapes(o.flops.shape, (2, 3)) == (2, 3) for o in ops)
    from llmperf import load_hardware
    from llmperf.cost import cost_ops

    cost = cost_ops(ops, load_hardware("h100-sxm"))
    assert len(cost.time_s) == len(ops) and cost.step_time_s.shape == (2, 3)
    assert cost.total("weight_bytes").shape == (2, 3)


def test_layers_frame_sums_to_the_step():
    from llmperf import layers_frame, load_hardware, ops_frame

    m, hw = load_model("gemma-2-9b"), load_hardware("h100-sxm")
    step = Step.decode(4, 5000)
    layers = layers_frame(m, hw, Workload(), step)
    ops = ops_frame(m, hw, Workload(), step)
    assert list(layers["group"]) == ["embedding", "layers.sliding.dense", "layers.full.dense", "head"]
    assert (layers["time_s"] * layers["layers"]).sum() == pytest.approx(ops["total_time_s"].sum())
    assert layers["time_share"].sum() == pytest.approx(1.0)
