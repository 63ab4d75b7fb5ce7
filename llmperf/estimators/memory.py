"""Device memory: weights, KV cache, peak activations, reserve; fit verdict; max batch/context.

Per device under tensor parallelism; under pipeline parallelism per device of the stage that
needs the most (each stage holds its layers' weights and their KV cache for every sequence, the
first stage the embeddings, the last the lm_head; activations are one micro-batch's).
Usable memory = capacity x ``memory_utilization`` (vLLM's ``gpu_memory_utilization``, default
0.9, leaves room for the CUDA context, allocator fragmentation and library workspaces) minus
``reserved_memory_bytes``.
"""

from __future__ import annotations

import numpy as np

from llmperf.estimators.latency import micro_step
from llmperf.named_inputs import accepts_names
from llmperf.ops.builder import build_step_ops
from llmperf.ops.context import BuildContext
from llmperf.ops.kv import kv_cache_bytes
from llmperf.pipeline import op_stage_counts, stage_layers
from llmperf.specs.hardware import HardwareSpec
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Step, Workload


def stage_weight_bytes(model: ModelSpec, workload: Workload) -> np.ndarray:
    """[stages] bytes of weights one device of each pipeline stage stores (its TP shard, every
    expert, scales included). A tied lm_head shares the embedding table on one device; split
    over stages, the last stage holds its own copy of the table for the logits (vLLM builds
    ``embed_tokens`` / a tied ``lm_head`` on the last rank too)."""
    ops = build_step_ops(model, workload, Step.prefill(1, 1))
    stages = int(workload.pipeline_parallel)
    if stages == 1:
        return np.asarray([sum(o.held_weight_bytes * o.count for o in ops)], dtype=float)
    held = np.asarray([o.held_weight_bytes for o in ops], dtype=float)
    per_stage = held @ op_stage_counts(ops, model, stages)
    if model.tie_word_embeddings:
        per_stage[-1] += sum(o.held_weight_bytes for o in ops if o.name == "embed_tokens")
    return per_stage


@accepts_names
def weight_bytes(model: ModelSpec, workload: Workload) -> float:
    """Bytes of weights one device stores (its TP shard, every expert, scales included; under
    pipeline parallelism the stage holding the most)."""
    return float(stage_weight_bytes(model, workload).max())


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
    """KV-cache bytes on one device for ``batch`` sequences holding ``context_len`` tokens (under
    pipeline parallelism: of the stage with the most cache)."""
    return np.max(stage_kv_bytes(model, workload, batch, context_len), axis=0)


def stage_kv_bytes(model: ModelSpec, workload: Workload, batch, context_len) -> np.ndarray:
    """[stages, *grid] KV-cache bytes on one device of each pipeline stage."""
    heads = kv_heads_per_device(model, workload)
    return np.stack([kv_cache_bytes(model, workload.kv_format, context_len, batch, workload.mla,
                                    heads, [attn for attn, _ in layers])
                     for layers in stage_layers(model, int(workload.pipeline_parallel))])


@accepts_names
def activation_bytes(model: ModelSpec, workload: Workload, step: Step) -> np.ndarray:
    """Peak live activations of a step: the residual stream plus the largest op's in+out.

    Layers run one after another and free their intermediates, so the peak is one op's inputs
    and outputs (e.g. gate/up outputs of the MLP, or the logits) on top of the hidden states.
    Under pipeline parallelism a stage holds one micro-batch's activations (the largest op of
    any stage: an upper bound for the stages without the lm_head).
    """
    step = micro_step(workload, step)[0]
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
    Under pipeline parallelism every figure is that of the stage needing the most memory.
    """
    act = np.maximum(activation_bytes(model, workload, Step.prefill(batch, prompt_len)),
                     activation_bytes(model, workload, Step.decode(batch, context_len)))
    kv_stage = stage_kv_bytes(model, workload, batch, context_len)
    w_stage = np.broadcast_to(_per_stage(stage_weight_bytes(model, workload), kv_stage), kv_stage.shape)
    worst = np.argmax(w_stage + kv_stage, axis=0)[None]  # the stage needing the most
    w = np.take_along_axis(w_stage, worst, axis=0)[0]
    kv = np.take_along_axis(kv_stage, worst, axis=0)[0]
    reserved = workload.reserved_memory_bytes
    total = w + kv + act + reserved
    usable = usable_bytes(hardware, workload) + reserved
    shape = np.shape(total)
    return {"weight_bytes": np.broadcast_to(w, shape).copy(), "kv_cache_bytes": kv, "activation_bytes": act,
            "reserved_bytes": np.full(shape, reserved), "total_memory_bytes": total,
            "usable_memory_bytes": np.full(shape, usable),
            "memory_capacity_bytes": np.full(shape, hardware.memory_capacity_bytes),
            "fits": total <= usable}


@accepts_names
def max_batch(model: ModelSpec, hardware: HardwareSpec, workload: Workload, context_len) -> np.ndarray:
    """Largest batch whose KV cache and decode activations fit beside the weights at a context.

    KV and decode activations are linear in batch, so the answer is a floor of a ratio; under
    pipeline parallelism (activations of ceil(batch / stages) sequences, every stage must fit)
    a vectorized bisection over whole batches.
    """
    ctx = np.asarray(context_len, dtype=float)
    if int(workload.pipeline_parallel) == 1:
        free = usable_bytes(hardware, workload) - weight_bytes(model, workload)
        per_seq = kv_bytes(model, workload, 1, ctx) + activation_bytes(model, workload, Step.decode(1, ctx))
        return np.maximum(np.floor(free / per_seq), 0.0)
    w = stage_weight_bytes(model, workload)
    return _largest_fitting(lambda b: _fits(model, hardware, workload, w, b, ctx), ctx.shape)


@accepts_names
def max_context(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batch) -> np.ndarray:
    """Longest context (tokens) at which ``batch`` sequences still fit, by vectorized bisection.

    Memory grows monotonically with context (KV linear, window-capped for sliding layers), so a
    bisection over integers is exact. Not clamped to max_position_embeddings (reported apart).
    """
    b = np.asarray(batch, dtype=float)
    w = stage_weight_bytes(model, workload)
    return _largest_fitting(lambda ctx: _fits(model, hardware, workload, w, b, ctx), b.shape)


def _fits(model: ModelSpec, hardware: HardwareSpec, workload: Workload, w: np.ndarray, batch,
          context_len) -> np.ndarray:
    """Whether ``batch`` sequences of ``context_len`` cached tokens fit on every stage's devices
    (``w``: :func:`stage_weight_bytes`, plus KV cache and decode activations)."""
    kv = stage_kv_bytes(model, workload, batch, context_len)
    act = activation_bytes(model, workload, Step.decode(batch, context_len))
    need = _per_stage(w, kv) + kv + act
    return np.all(need <= usable_bytes(hardware, workload), axis=0)


def _per_stage(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """[stages] values shaped to broadcast against a [stages, *grid] array."""
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def _largest_fitting(fits, shape: tuple) -> np.ndarray:
    """Largest whole x in [0, 2^31) with fits(x) (0 when even 1 does not fit), per grid point,
    by a vectorized bisection; ``fits`` must be monotone (true up to some x, false after)."""
    lo = np.zeros(shape)
    hi = np.full(shape, 2.0**31)
    if not np.any(fits(np.ones(shape))):
        return lo
    for _ in range(32):
        mid = np.floor((lo + hi) / 2)
        ok = fits(np.maximum(mid, 1)) & (mid >= 1)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo
