"""Attention-block ops: projections, RoPE, KV-cache write, the attention core, output projection.

GQA/MHA/MQA follow Ainslie et al. (arXiv:2305.13245); MLA follows DeepSeek-V2
(arXiv:2405.04434 §2.1): "naive" = per-head K/V cached and attended as MHA, as DeepSeek's
reference ``attn_impl="naive"``; "absorbed" = latent cache with W_UK folded into the query and
W_UV into the output, DeepSeek reference ``attn_impl="absorb"`` and vLLM/SGLang decode.
(transformers 5.x does a third thing: it caches the latent and re-expands all of it through
kv_b_proj every step; tests/test_hf_crosscheck.py checks that difference in closed form.)
"""

from __future__ import annotations

import numpy as np

from llmperf.ops.context import BuildContext
from llmperf.ops.formulas import attention_flops
from llmperf.ops.kv import kv_bytes_per_token_per_layer
from llmperf.ops.op import ATTENTION, ELEMENTWISE, make_op


def _core(ctx: BuildContext, group: str, count: int, heads: int, kv_heads: int, qk_dim: int,
          v_dim: int, window, kv_token_bytes: float, shared_kv: bool = False):
    """Attention core for q_len new tokens over kv_len keys (causal, optional window).

    flash (Dao et al. arXiv:2205.14135 / 2307.08691): fully masked tiles skipped, traffic = Q + the
    visible K/V once per KV head + O. naive (FlashAttention paper Alg. 0): the full q x kv score
    matrix S is computed, written, read by softmax, written as P and read by PV (4 passes).
    shared_kv: MLA-absorbed, where one latent vector serves as both K and V.
    """
    s = ctx.step
    b, q, kv = s.batch, s.q_len, s.kv_len
    kv_vis = kv if window is None else np.minimum(kv, window + q - 1)
    kv_read = b * kv_vis * kv_token_bytes
    q_bytes = b * q * heads * qk_dim * ctx.io_bytes
    o_bytes = b * q * heads * v_dim * ctx.io_bytes
    if ctx.workload.attention == "flash":
        flops = attention_flops(b, heads, q, kv, qk_dim, v_dim, causal=True, window=window)
        scores_bytes, kernels = 0.0, 1
    else:
        # HF's sliding-window cache holds only the window, so eager attention multiplies the
        # full q x kv_vis score matrix (prefill: kv_vis = kv, masked but computed).
        flops = attention_flops(b, heads, q, kv_vis, qk_dim, v_dim, causal=False)
        scores_bytes, kernels = 4.0 * b * heads * q * kv_vis * ctx.io_bytes, 3
    compute = "fp16" if ctx.compute_dtype == "fp16" else "bf16"  # attention runs in 16-bit
    ctx.add(make_op(
        "attention", ATTENTION, group, count, ctx.grid, flops=flops, act_in_bytes=q_bytes + scores_bytes / 2,
        act_out_bytes=o_bytes + scores_bytes / 2, kv_read_bytes=kv_read, compute_dtype=compute,
        kernels=kernels, shape={"batch": b, "q_len": q, "kv_len": kv_vis, "heads": heads,
                                "kv_heads": kv_heads, "qk_dim": qk_dim, "v_dim": v_dim,
                                "window": window or 0, "shared_kv": shared_kv}))


def _kv_write(ctx: BuildContext, group: str, count: int, elems_in, kv_token_bytes: float,
              window=None):
    """Store the new tokens' K/V (or latent) into the cache (vLLM's reshape_and_cache kernel).

    shape["cached_tokens"] (batch x cached tokens a sliding layer still holds) and
    shape["token_bytes"] let an engine that appends by concatenation (HF DynamicCache) charge
    its copy of the whole cache (llmperf.engines)."""
    t = ctx.tokens
    past = ctx.step.past_len if window is None else np.minimum(ctx.step.past_len, window)
    ctx.add(make_op("kv_cache_write", ELEMENTWISE, group, count, ctx.grid,
                    act_in_bytes=elems_in * ctx.io_bytes, kv_write_bytes=t * kv_token_bytes,
                    compute_dtype="fp32",
                    shape={"elements": elems_in, "cached_tokens": ctx.step.batch * past,
                           "token_bytes": kv_token_bytes}))


def gqa_attention_ops(ctx: BuildContext, group: str, count: int, window) -> None:
    """Multi-/grouped-/multi-query attention of one layer group (per device under TP)."""
    m, t = ctx.model, ctx.tokens
    h, d, dv = m.hidden_size, m.head_dim, m.v_head_dim
    hq = ctx.shard(m.num_attention_heads, "num_attention_heads")
    hkv = ctx.kv_heads_per_device()
    q_out, kv_out = m.num_attention_heads * d, m.num_kv_heads * (d + dv)
    if ctx.workload.fused_projections:
        ctx.gemm("qkv_proj", group, count, t, hq * d + hkv * (d + dv), h,
                 params=(q_out + kv_out) * h + ((q_out + kv_out) if m.qkv_bias else 0),
                 bias=m.qkv_bias)
    else:
        ctx.gemm("q_proj", group, count, t, hq * d, h, params=q_out * h + (q_out if m.qkv_bias else 0),
                 bias=m.qkv_bias)
        for name, dim in (("k_proj", d), ("v_proj", dv)):
            n = m.num_kv_heads * dim
            ctx.gemm(name, group, count, t, hkv * dim, h, params=n * h + (n if m.qkv_bias else 0),
                     bias=m.qkv_bias)
    if m.qk_norm:
        op = ctx.norm("qk_norm", group, count, t * (hq + hkv), d)
        ctx.ops[-1] = _with_params(op, 2 * d)  # one q_norm and one k_norm weight of head_dim
    if m.learned_position_embeddings == 0:
        ctx.eltwise("rope", group, count, t * (hq + hkv) * d, t * (hq + hkv) * d, "rope")
    kv_token = kv_bytes_per_token_per_layer(m, ctx.kvfmt, kv_heads=hkv)
    _kv_write(ctx, group, count, t * hkv * (d + dv), kv_token, window)
    _core(ctx, group, count, hq, hkv, d, dv, window, kv_token)
    o_in = m.num_attention_heads * dv
    ctx.gemm("o_proj", group, count, t, h, hq * dv, params=o_in * h + (h if m.o_bias else 0),
             bias=m.o_bias)


def mla_attention_ops(ctx: BuildContext, group: str, count: int, window) -> None:
    """Multi-head latent attention (DeepSeek-V2/V3) of one layer group."""
    m, t = ctx.model, ctx.tokens
    h, nh = m.hidden_size, m.num_attention_heads
    hq = ctx.shard(nh, "num_attention_heads")
    nope, rope, dv, r_kv = m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim, m.kv_lora_rank
    qk = nope + rope
    bias = m.qkv_bias
    if m.q_lora_rank:
        r_q = m.q_lora_rank
        ctx.gemm("q_a_proj", group, count, t, r_q, h, params=r_q * h + (r_q if bias else 0), bias=bias)
        ctx.norm("q_a_layernorm", group, count, t, r_q)
        ctx.gemm("q_b_proj", group, count, t, hq * qk, r_q, params=nh * qk * r_q)
    else:
        ctx.gemm("q_proj", group, count, t, hq * qk, h, params=nh * qk * h)
    # kv_a_proj_with_mqa is small and replicated on every tensor-parallel rank.
    ctx.gemm("kv_a_proj_with_mqa", group, count, t, r_kv + rope, h,
             params=(r_kv + rope) * h + ((r_kv + rope) if bias else 0), bias=bias)
    ctx.norm("kv_a_layernorm", group, count, t, r_kv)
    ctx.eltwise("rope", group, count, t * (hq + 1) * rope, t * (hq + 1) * rope, "rope")
    if ctx.workload.mla == "naive":
        ctx.gemm("kv_b_proj", group, count, t, hq * (nope + dv), r_kv, params=nh * (nope + dv) * r_kv)
        kv_token = kv_bytes_per_token_per_layer(m, ctx.kvfmt, "naive", kv_heads=hq)
        _kv_write(ctx, group, count, t * hq * (qk + dv), kv_token)
        _core(ctx, group, count, hq, hq, qk, dv, window, kv_token)
    else:
        kv_token = kv_bytes_per_token_per_layer(m, ctx.kvfmt, "absorbed")
        _kv_write(ctx, group, count, t * (r_kv + rope), kv_token)
        # q_nope (per head, nope) x W_UK (per head, nope x r_kv): a GEMM batched over heads.
        ctx.gemm("q_absorb_w_uk", group, count, t, hq * r_kv, nope, params=nh * nope * r_kv,
                 extra_shape={"batched_heads": hq, "n_per_head": r_kv})
        _fix_batched_heads(ctx, hq, t, nope, r_kv)
        _core(ctx, group, count, hq, 1, r_kv + rope, r_kv, window, kv_token, shared_kv=True)
        ctx.gemm("out_absorb_w_uv", group, count, t, hq * dv, r_kv, params=nh * r_kv * dv,
                 extra_shape={"batched_heads": hq, "n_per_head": dv})
        _fix_batched_heads(ctx, hq, t, r_kv, dv)
    ctx.gemm("o_proj", group, count, t, h, hq * dv, params=nh * dv * h + (h if m.o_bias else 0),
             bias=m.o_bias)


def _fix_batched_heads(ctx: BuildContext, heads: int, t, k: int, n: int) -> None:
    """A per-head batched GEMM reads heads x [t, k] inputs and heads x [n, k] weights.

    ``ctx.gemm`` was called with (n_total = heads·n, k) which already gives the right FLOPs
    (2·t·heads·n·k) and weight bytes; the input is heads·t·k, not t·k: patch it.
    """
    import dataclasses

    op = ctx.ops[-1]
    ctx.ops[-1] = dataclasses.replace(
        op, act_in_bytes=np.broadcast_to(np.asarray(t * heads * k * ctx.gemm_in_bytes, dtype=float),
                                         ctx.grid))


def _with_params(op, params: float):
    import dataclasses

    return dataclasses.replace(op, params=float(params), active_params=float(params),
                               held_weight_bytes=op.held_weight_bytes * params / max(op.params, 1.0))
