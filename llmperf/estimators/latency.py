"""Latency of steps and requests, throughput and cost.

TTFT = the prefill step (batch x prompt tokens; it also yields the first output token).
TPOT = one decode step with ``context`` tokens already cached.
Request latency for prompt P and output O = TTFT + sum of O-1 decode steps at past = P .. P+O-2,
summed in closed form: per op, FLOPs and bytes are affine in the cached length (window-capped
for sliding layers), so each op's time is a maximum of affine functions whose sum over an
integer range is a few arithmetic series. Efficiencies are taken at the middle decode step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from llmperf.calibration import IDEAL, Calibration
from llmperf.cost import BOUNDS, StepCost, cost_ops
from llmperf.engines import apply_engine, get_engine, is_decode
from llmperf.errors import LlmperfError
from llmperf.named_inputs import accepts_names
from llmperf.ops.builder import build_step_ops
from llmperf.pipeline import micro_batches, pipeline_cost
from llmperf.specs.hardware import HardwareSpec
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Step, Workload


def engine_ops(model: ModelSpec, workload: Workload, step: Step, calibration: Calibration,
               decode: bool | None = None):
    """The step's ops as the workload's engine runs them, the calibration routed to that engine's
    kernel sources, and the host launch time per kernel when the step runs eagerly.

    decode: whether the engine runs the step as a decode step (replayed from its CUDA graph when
    it has one); None decides by shape (one new token per sequence). Speculative verification
    (k + 1 tokens) is a decode step, a prefix-cached prefill of one token is not."""
    if workload.engine is None:
        return build_step_ops(model, workload, step), calibration, (0.0, 0.0)
    engine = get_engine(workload.engine)
    wl = dataclasses.replace(workload, fused_projections=engine.fused_projections)
    ops = apply_engine(build_step_ops(model, wl, step), engine)
    if hasattr(calibration, "for_engine"):
        calibration = calibration.for_engine(engine)
    decode = is_decode(ops) if decode is None else decode
    graph = engine.decode_graph if decode else engine.prefill_graph
    host = ((0.0, 0.0) if graph else
            (getattr(calibration, "eager_launch_s", 0.0), getattr(calibration, "eager_step_s", 0.0)))
    return ops, calibration, host


def settle_clocks(ops, hardware: HardwareSpec, calibration: Calibration, overlap: str = "max"):
    """The calibration at the tensor-core load of this step: cost it once at burst clocks, take
    the share of its time spent in compute-bound ops, and scale the measured sustained-load
    slowdown by that share (MeasuredCalibration.at_load). Calibrations without a sustained
    factor below 1 (ideal, constant) are returned as they are."""
    if getattr(calibration, "sustained_factor", 1.0) >= 1.0 or not hasattr(calibration, "at_load"):
        return calibration
    burst = cost_ops(ops, hardware, calibration.at_load(0.0), overlap)
    share = burst.bound_time_s[BOUNDS.index("compute")] / np.maximum(burst.step_time_s, 1e-30)
    return calibration.at_load(share)


def micro_step(workload: Workload, step: Step) -> tuple[Step, np.ndarray]:
    """The step of one pipeline micro-batch and the number of micro-batches (1 without PP)."""
    stages = int(workload.pipeline_parallel)
    if stages == 1:
        return step, np.ones(step.shape)
    m, n = micro_batches(step.batch, stages)
    return Step.of(m, step.q_len, step.past_len), n


@accepts_names
def step_cost(model: ModelSpec, hardware: HardwareSpec, workload: Workload, step: Step,
              calibration: Calibration = IDEAL, overlap: str = "max",
              decode: bool | None = None) -> StepCost:
    """Build and cost every op of one step (as the workload's engine runs them).

    Under pipeline parallelism the ops are one micro-batch's traversal and ``step_time_s`` the
    whole batch's step through the pipeline (:func:`llmperf.pipeline.pipeline_cost`): the
    steady-state cycle for decode steps, the pipeline fill otherwise. ``decode`` says which
    phase the step is (CUDA graph or not, steady or fill); None decides by shape (one new token
    per sequence), which a prefix-cached prefill or a speculative verification must override."""
    micro, n_micro = micro_step(workload, step)
    ops, cal, (per_kernel, per_step) = engine_ops(model, workload, micro, calibration, decode)
    cal = settle_clocks(ops, hardware, cal, overlap)
    cost = cost_ops(ops, hardware, cal, overlap, host_launch_s=per_kernel, host_step_s=per_step)
    return pipeline_cost(cost, ops, model, int(workload.pipeline_parallel), n_micro,
                         step.batch / micro.batch,
                         steady=is_decode(ops) if decode is None else decode, host_launch_s=per_kernel,
                         host_step_s=per_step)


def _sum_max_affine(a: np.ndarray, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """sum_{x=0}^{n-1} max_k (a[k] + s[k]·x), exactly, vectorized over trailing axes.

    The maximum of K lines is convex piecewise linear with breakpoints among the pairwise
    crossings; between consecutive breakpoints one line dominates and its integer points sum to
    count·a + s·(first + last)·count/2.
    """
    k = a.shape[0]
    n = np.broadcast_to(np.asarray(n, dtype=float), a.shape[1:])
    cuts = [np.zeros_like(n), n]
    for i in range(k):
        for j in range(i + 1, k):
            ds = s[i] - s[j]
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(ds != 0, (a[j] - a[i]) / np.where(ds != 0, ds, 1.0), 0.0)
            cuts.append(np.clip(x, 0.0, n))
    cuts = np.sort(np.stack(cuts), axis=0)
    total = np.zeros_like(n)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        first, last = np.ceil(lo), np.ceil(hi) - 1  # integer x in [lo, hi)
        count = np.maximum(last - first + 1, 0.0)
        mid = (lo + hi) / 2
        best = np.argmax(a + s * mid, axis=0)
        a_b = np.take_along_axis(a, best[None], axis=0)[0]
        s_b = np.take_along_axis(s, best[None], axis=0)[0]
        total += np.where(count > 0, count * a_b + s_b * (first + last) * count / 2, 0.0)
    return total


def decode_sum_s(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batch, prompt_len,
                 output_len, calibration: Calibration = IDEAL, overlap: str = "max") -> np.ndarray:
    """Total time of the O-1 decode steps of a request (closed form, no loop over tokens).

    Under pipeline parallelism the closed form sums one micro-batch's traversals and is scaled by
    the pipeline's step / traversal ratio at the middle step (where efficiencies are taken too).
    """
    b, p, o = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (batch, prompt_len, output_len)))
    n = np.maximum(o - 1, 0.0)
    mid = p + np.floor(np.maximum(n - 1, 0.0) / 2)
    if int(workload.pipeline_parallel) > 1:
        mid_cost = step_cost(model, hardware, workload, Step.decode(b, mid), calibration, overlap)
        pipelined = mid_cost.step_time_s / np.maximum(mid_cost.traversal_s, 1e-300)
        b = micro_step(workload, Step.decode(b, mid))[0].batch
        return pipelined * _decode_traversal_sum(model, hardware, workload, b, p, n, mid,
                                                 calibration, overlap)
    return _decode_traversal_sum(model, hardware, workload, b, p, n, mid, calibration, overlap)


def _decode_traversal_sum(model, hardware, workload, b, p, n, mid, calibration, overlap):
    """Sum over the decode steps at past = p .. p + n - 1 of the op times (closed form)."""
    eff_ops, cal, host = engine_ops(model, workload, Step.decode(b, mid), calibration)
    cal = settle_clocks(eff_ops, hardware, cal, overlap)
    c0 = cost_ops(engine_ops(model, workload, Step.decode(b, p), calibration)[0], hardware, cal,
                  overlap, eff_ops)
    c1 = cost_ops(engine_ops(model, workload, Step.decode(b, p + 1), calibration)[0], hardware,
                  cal, overlap, eff_ops)
    total = np.zeros_like(p)
    for i, op in enumerate(c0.ops):
        window = op.shape.get("window") or 0
        # x = min(past, L) - P with L = max(W - 1, P): growth stops once the window is full.
        limit = np.maximum(window - 1, p) if window else np.full_like(p, np.inf)
        n_lin = np.clip(limit - p + 1, 0.0, n)
        if overlap == "max":
            a = np.stack(np.broadcast_arrays(c0.compute_s[i], c0.memory_s[i], c0.comm_s[i], p)[:3])
            s = np.stack(np.broadcast_arrays(c1.compute_s[i], c1.memory_s[i], c1.comm_s[i], p)[:3]) - a
            linear = _sum_max_affine(a, s, n_lin)
            x_end = np.where(np.isfinite(limit), limit - p, 0.0)
            flat = (n - n_lin) * np.max(a + s * x_end, axis=0)
        else:
            a = c0.compute_s[i] + c0.memory_s[i] + c0.comm_s[i]
            s = c1.compute_s[i] + c1.memory_s[i] + c1.comm_s[i] - a
            linear = n_lin * a + s * (n_lin - 1) * n_lin / 2
            x_end = np.where(np.isfinite(limit), limit - p, 0.0)
            flat = (n - n_lin) * (a + s * x_end)
        total += c0.counts[i] * (linear + flat + n * c0.overhead_s[i])
    per_kernel, per_step = host
    if per_kernel or per_step:  # eager decode: each step takes at least its host time
        total = np.maximum(total, n * (per_step + sum(o.count * o.kernels for o in c0.ops) * per_kernel))
    return total


def prefill_step(batch, prompt_len, cached_prompt_len=0) -> Step:
    """The prefill of ``prompt_len`` tokens per sequence of which ``cached_prompt_len`` are a
    prefix-cache hit: q_len = the uncached tokens, past = the cached ones (DESIGN.md rule 4)."""
    p = np.asarray(prompt_len, dtype=float)
    cached = np.asarray(cached_prompt_len, dtype=float)
    if np.any(cached < 0) or np.any(cached != np.floor(cached)) or np.any(cached >= p):
        raise LlmperfError("cached prompt tokens must be a whole number from 0 to prompt - 1 "
                           "(the last prompt token is always computed)")
    return Step.of(batch, p - cached, cached)


@accepts_names
def request_metrics(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batch,
                    prompt_len, output_len, calibration: Calibration = IDEAL,
                    overlap: str = "max", cached_prompt_len=0) -> dict:
    """TTFT, mean TPOT over the request, request latency, throughput (arrays over the grid).

    cached_prompt_len: prompt tokens already in the KV cache (a prefix-cache hit, as vLLM's
    automatic prefix caching and SGLang's RadixAttention serve them): the prefill computes only
    the other ``prompt_len - cached_prompt_len`` tokens, attending to the cached ones."""
    prefill = step_cost(model, hardware, workload, prefill_step(batch, prompt_len, cached_prompt_len),
                        calibration, overlap, decode=False)
    ttft = prefill.step_time_s
    decode_total = decode_sum_s(model, hardware, workload, batch, prompt_len, output_len,
                                calibration, overlap)
    o = np.asarray(output_len, dtype=float)
    b = np.asarray(batch, dtype=float)
    latency = ttft + decode_total
    return {
        "ttft_s": ttft,
        "prefill_flops": prefill.device_total("flops"),
        "prefill_bound": prefill.step_bound,
        "decode_time_s": decode_total,
        "mean_tpot_s": np.where(o > 1, decode_total / np.maximum(o - 1, 1), 0.0),
        "request_latency_s": latency,
        "throughput_tokens_per_s": b * o / latency,
        "prefill_tokens_per_s": b * np.asarray(prompt_len, dtype=float) / ttft,
        "prefill_cost": prefill,
    }


def cost_per_million_tokens(price_usd_per_hour: float | None, devices: int, tokens_per_s):
    """USD per 1M tokens for ``devices`` GPUs rented at ``price_usd_per_hour`` each (None: unknown)."""
    if price_usd_per_hour is None:
        return None
    return price_usd_per_hour * devices / 3600.0 / np.asarray(tokens_per_s, dtype=float) * 1e6
