"""Feed-forward ops: dense MLP (gated SwiGLU/GeGLU or fc1/fc2) and mixture of experts.

MoE: a router GEMM, top-k routed experts (Shazeer et al. arXiv:1701.06538; Mixtral
arXiv:2401.04088), optional shared experts (DeepSeekMoE arXiv:2401.06066) and dense first
layers (DeepSeek ``first_k_dense_replace``). FLOPs follow the tokens actually routed
(tokens x top-k); weight bytes follow the experts actually touched in the step, in expectation
under uniform routing: E·(1 − (1 − k/E)^T) distinct experts for T tokens each picking k of E
(occupancy of E bins after T draws of k distinct bins).
"""

from __future__ import annotations

import numpy as np

from llmperf.ops.context import BuildContext
from llmperf.ops.formulas import expert_sort_bytes
from llmperf.ops.op import ELEMENTWISE, make_op


def expected_experts_touched(num_experts: int, top_k: int, tokens) -> np.ndarray:
    """Expected number of distinct experts hit by ``tokens`` tokens routing to ``top_k`` each."""
    tokens = np.asarray(tokens, dtype=float)
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


def dense_mlp_ops(ctx: BuildContext, group: str, count: int, width: int, prefix: str = "") -> None:
    """One dense MLP of ``width`` (per-device share under TP: column- then row-parallel)."""
    m, t = ctx.model, ctx.tokens
    h = m.hidden_size
    f = ctx.shard(width, f"{prefix or 'mlp '}intermediate size")
    bias = m.mlp_bias
    if m.gated_mlp:
        if ctx.workload.fused_projections:
            ctx.gemm(f"{prefix}gate_up_proj", group, count, t, 2 * f, h,
                     params=2 * width * h + (2 * width if bias else 0), bias=bias)
        else:
            for name in ("gate_proj", "up_proj"):
                ctx.gemm(f"{prefix}{name}", group, count, t, f, h,
                         params=width * h + (width if bias else 0), bias=bias)
        ctx.eltwise(f"{prefix}act_mul", group, count, 2 * t * f, t * f, "gated_act")
    else:
        ctx.gemm(f"{prefix}fc1", group, count, t, f, h, params=width * h + (width if bias else 0),
                 bias=bias)
        ctx.eltwise(f"{prefix}act", group, count, t * f, t * f, "act")
    ctx.gemm(f"{prefix}down_proj" if m.gated_mlp else f"{prefix}fc2", group, count, t, h, f,
             params=width * h + (h if bias else 0), bias=bias)


def moe_ops(ctx: BuildContext, group: str, count: int) -> None:
    """Router + routed experts (+ shared experts) of one MoE layer group."""
    m, t = ctx.model, ctx.tokens
    h, n_exp, k = m.hidden_size, m.num_experts, m.experts_per_token
    width = m.moe_intermediate_size
    f = ctx.shard(width, "moe_intermediate_size")
    router_params = n_exp * h + (n_exp if m.router_score_bias else 0)
    ctx.gemm("router", group, count, t, n_exp, h, params=router_params, fmt=ctx.w16)
    ctx.eltwise("router_topk", group, count, t * n_exp, t * k, "scale", flops_elems=t * n_exp)
    touched = expected_experts_touched(n_exp, k, t)
    routed = t * k
    rows_per_expert = routed / np.maximum(touched, 1e-30)
    # group the routed pairs by expert (sort + counts + offsets) before the grouped GEMMs:
    # integer work, latency-bound at decode sizes (its time comes from the calibration)
    ctx.add(make_op("experts_sort", ELEMENTWISE, group, count, ctx.grid,
                    act_in_bytes=expert_sort_bytes(t, n_exp, k), compute_dtype="fp32",
                    shape={"elements": routed}))
    # token permutation: each routed (token, expert) row gathered into expert order for the
    # grouped GEMMs, and scattered back and weighted after them (engines with a fused MoE kernel
    # do both inside the GEMMs: their profile makes these ops free)
    ctx.eltwise("experts_permute", group, count, routed * h, routed * h, "scale", flops_elems=0.0)
    n_up = 2 * f if m.gated_mlp else f
    up_params = (2 if m.gated_mlp else 1) * width * h
    ctx.gemm("experts_gate_up" if m.gated_mlp else "experts_fc1", group, count, routed, n_up, h,
             params=n_exp * up_params, active_params=k * up_params, weight_rows_read=touched,
             held_copies=n_exp,
             extra_shape={"experts_touched": touched, "rows_per_expert": rows_per_expert})
    if m.gated_mlp:
        ctx.eltwise("experts_act_mul", group, count, 2 * routed * f, routed * f, "gated_act")
    else:
        ctx.eltwise("experts_act", group, count, routed * f, routed * f, "act")
    ctx.gemm("experts_down", group, count, routed, h, f, params=n_exp * width * h,
             active_params=k * width * h, weight_rows_read=touched, held_copies=n_exp,
             extra_shape={"experts_touched": touched, "rows_per_expert": rows_per_expert})
    ctx.eltwise("experts_unpermute", group, count, routed * h, routed * h, "scale")
    ctx.eltwise("experts_combine", group, count, routed * h, t * h, "combine",
                flops_elems=routed * h)
    if m.shared_expert_intermediate_size:
        dense_mlp_ops(ctx, group, count, m.shared_expert_intermediate_size, prefix="shared_")
        if m.shared_expert_gate:
            ctx.gemm("shared_expert_gate", group, count, t, 1, h, params=h, fmt=ctx.w16)
