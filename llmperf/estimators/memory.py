"""Device memory: weights, KV cache, peak activations, reserve; fit verdict; max batch/context.

Per device under tensor parallelism. Usable memory = capacity x ``memory_utilization`` (vLLM's
``gpu_memory_utilization``, default 0.9, leaves room for the CUDA context, allocator
fragmentation and library workspaces) minus ``reserved_memory_bytes``.
"""

from __future__ import annotations

import numpy as np

from llmperf.named_inputs import accepts_names
from llmperf.ops.builder import build_step_ops
from llmperf.ops.context import BuildContext
from llmperf.ops.kv import kv_cache_bytes
from llmperf.specs.hardware import HardwareSpec
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Step, Workload


@accepts_names
def weight_bytes(model: ModelSpec, workload: Workload) -> float:
    """Bytes of weights one device stores (its TP shard, every expert, scales included)."""
    ops = build_step_ops(model, workload, Step.prefill(1, 1))
    return float(sum(o.held_weight_bytes * o.count for o in ops))


def kv_heads_per_device(model: ModelSpec, workload: Workload) -> int | None:
    """KV heads one device caches (None: the model's own count, i.e. no TP split)."""
    if workload.tensor_parallel == 1:
        return None
    ctx = BuildContext(model, workload, Step.prefill(1, 1))
    if model.attention == "mla":
        return ctx.shard(model.num_attention_heads, "num_attention_heads")
    return ctx.kv_heads_per_device()


@accepts_names
def kv_bytes(model: ModelSpec, workload: Workload, batch, context_len) -> np.ndarray:
    """KV-cache bytes on one device for ``batch`` sequences holding ``context_len`` tokens."""
    return kv_cache_bytes(model, workload.kv_format, context_len, batch, workload.mla,
                          kv_heads_per_device(model, workload))


@accepts_names
def activation_bytes(model: ModelSpec, workload: Workload, step: Step) -> np.ndarray:
    """Peak live activations of a step: the residual stream plus the largest op's in+out.

    Layers run one after another and free their intermediates, so the peak is one op's inputs
    and outputs (e.g. gate/up outputs of the MLP, or the logits) on top of the hidden states.
    """
    ops = build_step_ops(model, workload, step)
    ctx = BuildContext(model, workload, step)
    per_op = np.stack(np.broadcast_arrays(*(o.act_in_bytes + o.act_out_bytes for o in ops), step.batch))[:-1]
    residual = step.tokens * model.hidden_size * ctx.io_bytes
    return per_op.max(axis=0) + residual


def usable_bytes(hardware: HardwareSpec, workload: Workload) -> float:
    return hardware.memory_capacity_bytes * workload.memory_utilization - workload.reserved_memory_bytes


@accepts_names
def memory_breakdown(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batch,
                     prompt_len, context_len) -> dict:
    """Memory of serving ``batch`` requests whose KV grows to ``context_len`` tokens.

    Activations are the larger of the prefill step (batch x prompt) and the last decode step.
    """
    w = weight_bytes(model, workload)
    kv = kv_bytes(model, workload, batch, context_len)
    act = np.maximum(activation_bytes(model, workload, Step.prefill(batch, prompt_len)),
                     activation_bytes(model, workload, Step.decode(batch, context_len)))
    reserved = workload.reserved_memory_bytes
    total = w + kv + act + reserved
    usable = usable_bytes(hardware, workload) + reserved
    shape = np.shape(total)
    return {"weight_bytes": np.full(shape, w), "kv_cache_bytes": kv, "activation_bytes": act,
            "reserved_bytes": np.full(shape, reserved), "total_memory_bytes": total,
            "usable_memory_bytes": np.full(shape, usable),
            "memory_capacity_bytes": np.full(shape, hardware.memory_capacity_bytes),
            "fits": total <= usable}


@accepts_names
def max_batch(model: ModelSpec, hardware: HardwareSpec, workload: Workload, context_len) -> np.ndarray:
    """Largest batch whose KV cache and decode activations fit beside the weights at a context.

    KV and decode activations are linear in batch, so the answer is a floor of a ratio.
    """
    ctx = np.asarray(context_len, dtype=float)
    free = usable_bytes(hardware, workload) - weight_bytes(model, workload)
    per_seq = kv_bytes(model, workload, 1, ctx) + activation_bytes(model, workload, Step.decode(1, ctx))
    return np.maximum(np.floor(free / per_seq), 0.0)


@accepts_names
def max_context(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batch) -> np.ndarray:
    """Longest context (tokens) at which ``batch`` sequences still fit, by vectorized bisection.

    Memory grows monotonically with context (KV linear, window-capped for sliding layers), so a
    bisection over integers is exact. Not clamped to max_position_embeddings (reported apart).
    """
    b = np.asarray(batch, dtype=float)
    free = usable_bytes(hardware, workload) - weight_bytes(model, workload)

    def need(ctx):
        return kv_bytes(model, workload, b, ctx) + activation_bytes(model, workload, Step.decode(b, ctx))

    lo = np.zeros_like(b)
    hi = np.full_like(b, 2.0**31)
    if np.all(need(np.ones_like(b)) > free):
        return lo
    for _ in range(32):
        mid = np.floor((lo + hi) / 2)
        ok = need(np.maximum(mid, 1)) <= free
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo
