"""The one op builder: every op of one forward step, for prefill and decode alike.

A step adds ``q_len`` tokens to each of ``batch`` sequences that already hold ``past_len``
cached tokens (prefill: past 0; decode: q_len 1; chunked prefill, prefix caching and speculative
verification are other points of the same grid). Identical layers form a group built once with
a ``count``; every quantity is a numpy array over the workload grid.
"""

from __future__ import annotations

import math

import numpy as np

from llmperf.named_inputs import accepts_names
from llmperf.ops.attention import gqa_attention_ops, mla_attention_ops
from llmperf.ops.context import BuildContext
from llmperf.ops.ffn import dense_mlp_ops, moe_ops
from llmperf.ops.op import COMMUNICATION, Op, make_op
from llmperf.pipeline import PIPELINE_GROUP, stage_layer_counts
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Step, Workload


def layer_groups(model: ModelSpec) -> list[tuple[str, int, str, bool]]:
    """Distinct layer kinds in order of first appearance: (group name, count, attention, moe)."""
    seen: dict[tuple[str, bool], int] = {}
    for attn, moe in zip(model.layer_types, model.moe_layers):
        seen[(attn, moe)] = seen.get((attn, moe), 0) + 1
    groups = []
    for (attn, moe), count in seen.items():
        groups.append((f"layers.{attn}.{'moe' if moe else 'dense'}", count, attn, moe))
    return groups


def _all_reduce(ctx: BuildContext, name: str, group: str, count: int, elems) -> None:
    """Ring all-reduce across TP ranks: each rank sends 2(p-1)/p of the buffer (Patarasuk &
    Yuan 2009; the NCCL ring algorithm)."""
    p = ctx.tp
    if p == 1:
        return
    ctx.add(make_op(name, COMMUNICATION, group, count, ctx.grid,
                    comm_bytes=2.0 * (p - 1) / p * np.asarray(elems, dtype=float) * ctx.io_bytes,
                    compute_dtype="fp32", shape={"elements": elems, "ranks": p}))


def _all_gather(ctx: BuildContext, name: str, group: str, elems) -> None:
    """Ring all-gather: each rank sends (p-1)/p of the gathered buffer."""
    p = ctx.tp
    if p == 1:
        return
    ctx.add(make_op(name, COMMUNICATION, group, 1, ctx.grid,
                    comm_bytes=(p - 1) / p * np.asarray(elems, dtype=float) * ctx.io_bytes,
                    compute_dtype="fp32", shape={"elements": elems, "ranks": p}))


def _pipeline_sends(ctx: BuildContext) -> None:
    """Stage-to-stage transfer of the micro-batch's activations, once per stage boundary
    (count P - 1), as vLLM does it (``send_tensor_dict(..., all_gather_group=tp_group)``): the
    intermediate tensors are the hidden states and the residual (2 x tokens x hidden_size
    values); each of the ``tp`` ranks sends its 1/tp slice to its peer in the next stage, which
    all-gathers the slices inside its TP group (Megatron-LM's scatter/gather optimisation,
    Narayanan et al. arXiv:2104.04473 §4.1). Sends use the device's interconnect bandwidth; the
    stage -> op mapping is :func:`llmperf.pipeline.op_stage_counts`."""
    stages = int(ctx.workload.pipeline_parallel)
    if stages == 1:
        return
    elems = 2.0 * np.asarray(ctx.tokens * ctx.model.hidden_size, dtype=float)
    ctx.add(make_op("pipeline_send", COMMUNICATION, PIPELINE_GROUP, stages - 1, ctx.grid,
                    comm_bytes=elems / ctx.tp * ctx.io_bytes, compute_dtype="fp32",
                    shape={"elements": elems / ctx.tp, "ranks": 2}))
    if ctx.tp > 1:
        ctx.add(make_op("pipeline_all_gather", COMMUNICATION, PIPELINE_GROUP, stages - 1, ctx.grid,
                        comm_bytes=(ctx.tp - 1) / ctx.tp * elems * ctx.io_bytes,
                        compute_dtype="fp32", shape={"elements": elems, "ranks": ctx.tp}))


def _embedding(ctx: BuildContext) -> None:
    m, t, h = ctx.model, ctx.tokens, ctx.model.hidden_size
    ctx.gather("embed_tokens", "embedding", m.vocab_size, h, t)
    if ctx.tp > 1:  # vocab-parallel embedding: partial rows summed across ranks
        _all_reduce(ctx, "embed_all_reduce", "embedding", 1, t * h)
    if m.learned_position_embeddings:
        ctx.gather("embed_positions", "embedding", m.learned_position_embeddings, h, t,
                   vocab_parallel=False)
        ctx.eltwise("embed_add_positions", "embedding", 1, 2 * t * h, t * h, "add")
    if m.scale_embeddings:
        ctx.eltwise("embed_scale", "embedding", 1, t * h, t * h, "scale")


def _layer(ctx: BuildContext, group: str, count: int, attn: str, moe: bool) -> None:
    m, t, h = ctx.model, ctx.tokens, ctx.model.hidden_size
    window = m.sliding_window if attn == "sliding" else None
    ctx.norm("input_layernorm", group, count, t, h)
    if m.attention == "mla":
        mla_attention_ops(ctx, group, count, window)
    else:
        gqa_attention_ops(ctx, group, count, window)
    if m.parallel_attention:
        # Falcon: attention and MLP both read the normed input; one all-reduce, one 3-way add.
        if m.norms_per_layer == 2:
            ctx.norm("mlp_layernorm", group, count, t, h)
        (moe_ops if moe else dense_mlp_ops)(ctx, group, count, *(() if moe else (m.intermediate_size,)))
        _all_reduce(ctx, "all_reduce", group, count, t * h)
        ctx.eltwise("residual_add", group, count, 3 * t * h, t * h, "add", flops_elems=2 * t * h)
        return
    _all_reduce(ctx, "attn_all_reduce", group, count, t * h)
    if m.norms_per_layer == 4:
        ctx.norm("post_attention_layernorm", group, count, t, h)
    ctx.eltwise("attn_residual_add", group, count, 2 * t * h, t * h, "add")
    ctx.norm("pre_feedforward_layernorm" if m.norms_per_layer == 4 else "post_attention_layernorm",
             group, count, t, h)
    if moe:
        moe_ops(ctx, group, count)
    else:
        dense_mlp_ops(ctx, group, count, m.intermediate_size)
    _all_reduce(ctx, "mlp_all_reduce", group, count, t * h)
    if m.norms_per_layer == 4:
        ctx.norm("post_feedforward_layernorm", group, count, t, h)
    ctx.eltwise("mlp_residual_add", group, count, 2 * t * h, t * h, "add")


def _head(ctx: BuildContext) -> None:
    m, s, h = ctx.model, ctx.step, ctx.model.hidden_size
    ctx.norm("final_norm", "head", 1, ctx.tokens, h)
    rows = s.batch if ctx.workload.logits == "last" else ctx.tokens
    vocab = math.ceil(m.vocab_size / ctx.tp)  # vocab-parallel lm_head, padded to a multiple of tp
    params = 0 if m.tie_word_embeddings else m.vocab_size * h
    lm_head = ctx.gemm("lm_head", "head", 1, rows, vocab, h, params=params, fmt=ctx.w16)
    if m.tie_word_embeddings:  # shares the embedding table: stored once
        import dataclasses

        ctx.ops[-1] = dataclasses.replace(lm_head, held_weight_bytes=0.0)
    _all_gather(ctx, "logits_all_gather", "head", rows * m.vocab_size)


@accepts_names
def build_step_ops(model: ModelSpec, workload: Workload, step: Step) -> list[Op]:
    """All ops of one forward step on one device (its tensor-parallel share), in execution order.

    Under pipeline parallelism: every op of one micro-batch's traversal of all stages (``step``
    is the micro-batch), the stage-to-stage sends after the layers; which stage runs which op is
    :func:`llmperf.pipeline.op_stage_counts`."""
    ctx = BuildContext(model, workload, step)
    stage_layer_counts(model.num_layers, int(workload.pipeline_parallel))  # validates --pp
    _embedding(ctx)
    for group, count, attn, moe in layer_groups(model):
        _layer(ctx, group, count, attn, moe)
    _pipeline_sends(ctx)
    _head(ctx)
    return ctx.ops
