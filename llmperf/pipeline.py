"""Pipeline parallelism: which layers each stage holds, how a batch is split into micro-batches,
and how long a step of the whole pipeline takes.

``pipeline_parallel`` = P stages, each a group of ``tensor_parallel`` devices holding a
contiguous run of decoder layers; the first stage also holds the embeddings, the last the final
norm and lm_head (GPipe, Huang et al. arXiv:1811.06965 §2; Megatron-LM's interleaving-free
schedule, Narayanan et al. arXiv:2104.04473 §2.2). Between stages, per micro-batch, the hidden
states and the residual go to the next stage (1/tp per rank, then an all-gather in its TP group;
:func:`llmperf.ops.builder._pipeline_sends`).

Layer split: vLLM's ``get_pp_indices`` (vllm/distributed/utils.py): ``L // P`` layers per stage,
and the ``L % P`` layers left over go one each to stages P-2, P-3, ... (never the last stage,
which holds the lm_head; with at most P-2 left over, never the first either, which holds the
embeddings).

Micro-batches: a serving engine keeps P micro-batches in flight so that every stage is busy
(vLLM runs P virtual engines, or a batch queue of depth P). A batch of B sequences becomes
``n = ceil(B / m)`` micro-batches of ``m = ceil(B / P)`` sequences; every micro-batch is costed at
``m`` (an upper bound for the last one when P does not divide B).

Step time, with T = one micro-batch's traversal of every stage (all layers, the P-1 sends) and
S = the slowest stage's time for one micro-batch:
    prefill (the batch arrives at once):  T + (n - 1) x S   (pipeline fill, GPipe §2.2)
    decode (steady state, every stage busy): max(T, n x S)   (a micro-batch's next token waits
        for its own traversal and for the n micro-batches ahead of it at the slowest stage)
With P = 1 both are T.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from llmperf.errors import LlmperfError
from llmperf.specs.model import ModelSpec

PIPELINE_GROUP = "pipeline"  # group name of the stage-to-stage sends


def stage_layer_counts(num_layers: int, stages: int) -> list[int]:
    """Decoder layers per pipeline stage, first stage first (vLLM's default split, above)."""
    if stages < 1 or stages != int(stages):
        raise LlmperfError(f"--pp must be a positive whole number, got {stages}")
    if stages > num_layers:
        raise LlmperfError(f"--pp {stages} exceeds the model's {num_layers} layers; "
                           f"use at most {num_layers} pipeline stages")
    counts = [num_layers // stages] * stages
    for i in range(2, num_layers % stages + 2):
        counts[-i] += 1
    return counts


def stage_layers(model: ModelSpec, stages: int) -> list[list[tuple[str, bool]]]:
    """(attention type, is MoE) of every layer, split into stages."""
    layers = list(zip(model.layer_types, model.moe_layers))
    out, start = [], 0
    for n in stage_layer_counts(model.num_layers, stages):
        out.append(layers[start:start + n])
        start += n
    return out


_LAYER_GROUP = re.compile(r"^layers\.(\w+)\.(moe|dense)$")


def op_stage_counts(ops: list, model: ModelSpec, stages: int) -> np.ndarray:
    """[n_ops, stages]: instances of each op that run on each stage in one traversal.

    Layer-group ops (``layers.<attention>.<moe|dense>``) run once per layer of their kind in
    the stage; embeddings on the first stage; the head on the last; the stage-to-stage sends
    once on every stage but the last, their all-gathers on every stage but the first. The
    counts of an op sum to its ``count``.
    """
    per_stage = stage_layers(model, stages)
    counts = np.zeros((len(ops), stages))
    for i, op in enumerate(ops):
        layer = _LAYER_GROUP.match(op.group)
        if layer:
            key = (layer.group(1), layer.group(2) == "moe")
            counts[i] = [sum(1 for x in stage if x == key) for stage in per_stage]
        elif op.group == "embedding":
            counts[i, 0] = op.count
        elif op.group == "head":
            counts[i, -1] = op.count
        elif op.group == PIPELINE_GROUP and op.name == "pipeline_send":
            counts[i, :-1] = 1.0  # sent by every stage but the last
        elif op.group == PIPELINE_GROUP:
            counts[i, 1:] = 1.0   # gathered by every stage but the first
        else:
            raise LlmperfError(f"op '{op.name}' of group '{op.group}' has no pipeline stage")
        if counts[i].sum() != op.count:
            raise LlmperfError(f"op '{op.name}': {counts[i].sum():g} instances over the stages, "
                               f"{op.count} in the step")
    return counts


def micro_batches(batch, stages: int) -> tuple[np.ndarray, np.ndarray]:
    """(sequences per micro-batch m, micro-batches n) for ``batch`` sequences over ``stages``."""
    b = np.asarray(batch, dtype=float)
    m = np.ceil(b / stages)
    return m, np.ceil(b / m)


def pipeline_cost(cost, ops: list, model: ModelSpec, stages: int, n_micro, traversals,
                  steady: bool, host_launch_s: float = 0.0, host_step_s: float = 0.0):
    """The StepCost of one micro-batch's traversal turned into the step of the whole pipeline.

    Per-op times stay those of the traversal (what the per-op table shows); ``step_time_s``
    becomes the pipeline's (module docstring) and the time by bound is scaled to it, so shares
    and the dominant bound are the traversal's. ``stage_time_s`` [stages, *grid] is the time of
    one micro-batch on each stage (an eager stage takes at least its host launch time);
    ``traversal_s`` the time before pipelining; ``traversals`` = batch / micro-batch size.
    """
    if stages == 1:
        return cost
    counts = op_stage_counts(ops, model, stages)
    kernels = np.asarray([o.kernels for o in ops], dtype=float)
    stage_time = []
    for s in range(stages):
        busy = sum(counts[i, s] * t for i, t in enumerate(cost.time_s))
        host = host_step_s + float(counts[:, s] @ kernels) * host_launch_s
        stage_time.append(np.maximum(busy, host) + np.zeros(cost.step_time_s.shape))
    stage_time = np.stack(stage_time)
    slowest = stage_time.max(axis=0)
    traversal = cost.step_time_s
    n = np.asarray(n_micro, dtype=float)
    step = np.maximum(traversal, n * slowest) if steady else traversal + (n - 1) * slowest
    scale = step / np.maximum(traversal, 1e-300)
    return dataclasses.replace(cost, step_time_s=step, bound_time_s=cost.bound_time_s * scale,
                               stage_time_s=stage_time, traversal_s=traversal,
                               traversals=np.asarray(traversals, dtype=float), stages=stages)
