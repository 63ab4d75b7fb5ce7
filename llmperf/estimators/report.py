"""The estimate report and the per-op table as tidy pandas DataFrames.

``estimate_frame`` is vectorized: every scenario input may be an array (they broadcast), and
the result has one row per scenario with the columns of :data:`ESTIMATE_COLUMNS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmperf.calibration import IDEAL, Calibration
from llmperf.columns import ESTIMATE_COLUMNS, OP_COLUMNS
from llmperf.cost import BOUNDS
from llmperf.errors import LlmperfError
from llmperf.estimators.latency import cost_per_million_tokens, request_metrics, step_cost
from llmperf.estimators.memory import memory_breakdown
from llmperf.estimators.params import parameter_counts
from llmperf.named_inputs import accepts_names
from llmperf.ops.kv import kv_bytes_per_token
from llmperf.specs.hardware import HardwareSpec
from llmperf.specs.model import ModelSpec
from llmperf.speculative import (Speculation, check_speculation, speculative_memory,
                                 speculative_metrics)
from llmperf.specs.workload import Step, Workload


def check_context(model: ModelSpec, longest_tokens, allow_long_context: bool) -> None:
    """Refuse contexts beyond ``max_position_embeddings`` unless explicitly allowed."""
    longest = float(np.max(longest_tokens))
    if longest > model.max_position_embeddings and not allow_long_context:
        raise LlmperfError(
            f"context of {longest:.0f} tokens exceeds {model.name}'s max_position_embeddings "
            f"({model.max_position_embeddings}); shorten prompt/output/context or pass "
            f"--allow-long-context")


@accepts_names
def estimate_frame(model: ModelSpec, hardware: HardwareSpec, workload: Workload = Workload(),
                   batch=1, prompt_len=1024, output_len=256, context_len=None,
                   calibration: Calibration = IDEAL, price_usd_per_hour: float | None = None,
                   overlap: str = "max", allow_long_context: bool = False,
                   require_fit: bool = False, speculation: Speculation | None = None,
                   cached_prompt_len=0) -> pd.DataFrame:
    """One row per scenario: params, memory and fit, TTFT, TPOT, request latency, throughput,
    cost and the bound of each phase.

    context_len: cached tokens of the decode step reported as ``tpot_s`` (default: prompt +
    output - 1, the last step of the request). Memory is sized for max(prompt + output,
    context + 1) tokens per sequence.
    require_fit: raise a one-line LlmperfError when a scenario does not fit in device memory
    (the CLI's default for a single estimate; sweeps keep such rows with ``fits`` False).
    speculation: speculative decoding (:class:`llmperf.Speculation`); ``tpot_s`` is then the
    mean time per generated token of a round at ``context_len``.
    cached_prompt_len: prompt tokens found in the prefix cache; TTFT computes only the rest
    (memory still holds the whole prompt's KV).
    """
    b, p, o = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (batch, prompt_len, output_len)))
    Step.of(b, p)  # validates batch >= 1, prompt >= 1
    if np.any(o < 1) or np.any(o != np.floor(o)):
        raise LlmperfError("output length must be a whole number >= 1")
    ctx = p + o - 1 if context_len is None else np.broadcast_to(np.asarray(context_len, dtype=float), b.shape)
    check_speculation(workload, speculation)
    spec_slots = 0 if speculation is None else int(speculation.tokens)
    # speculative slots are not held against the limit: engines shorten speculation near it
    check_context(model, np.maximum(p + o, ctx + 1), allow_long_context)
    if speculation is not None and speculation.draft is not None:
        check_context(speculation.draft, np.maximum(p + o, ctx + 1), allow_long_context)
    price = hardware.price_usd_per_hour if price_usd_per_hour is None else price_usd_per_hour
    if price is not None and price < 0:
        raise LlmperfError("price per hour must not be negative")

    # the cache must hold the whole request and the TPOT step's context
    # the speculative slots are cached, then kept or rolled back
    kv_tokens = np.maximum(p + o, ctx + 1) + spec_slots
    mem = memory_breakdown(model, hardware, workload, b, p, kv_tokens)
    if speculation is not None:
        mem = speculative_memory(mem, speculation.draft, workload, b, kv_tokens)
    if require_fit and not np.all(mem["fits"]):
        i = int(np.argmin(mem["fits"]))
        need, have = mem["total_memory_bytes"].ravel()[i], mem["usable_memory_bytes"].ravel()[i]
        raise LlmperfError(
            f"{model.name} does not fit on {hardware.name}: needs {need / 1e9:.1f} GB per device "
            f"(weights {mem['weight_bytes'].ravel()[i] / 1e9:.1f} GB, KV cache "
            f"{mem['kv_cache_bytes'].ravel()[i] / 1e9:.1f} GB) but {have / 1e9:.1f} GB is usable; "
            f"raise --tp, quantize (--weights int4/fp8, --kv fp8), lower --batch or the context, "
            f"or pass --ignore-memory to estimate anyway")
    cached = np.broadcast_to(np.asarray(cached_prompt_len, dtype=float), b.shape)
    req = request_metrics(model, hardware, workload, b, p, o, calibration, overlap, cached)
    decode = step_cost(model, hardware, workload, Step.decode(b, ctx), calibration, overlap)
    params = parameter_counts(model)
    devices = workload.devices
    tpot = decode.step_time_s
    bounds = _intervals(calibration, req, decode)
    decode_flops, decode_bound = decode.device_total("flops"), decode.step_bound
    if speculation is not None:
        spec = speculative_metrics(model, hardware, workload, speculation, b, p, o, ctx,
                                   calibration, overlap, req, cached)
        bounds = _speculative_intervals(calibration, req, spec)
        req = {**req, **spec}
        tpot, decode_flops, decode_bound = spec["tpot_s"], spec["decode_flops"], spec["decode_bound"]
    out = {
        "model": model.name, "hardware": hardware.name, "calibration": calibration.name,
        "weights": workload.weights, "activations": workload.activations,
        "kv_cache": workload.kv_cache, "tensor_parallel": workload.tensor_parallel,
        "pipeline_parallel": workload.pipeline_parallel,
        "draft_model": None if speculation is None else speculation.draft_name,
        "speculative_tokens": spec_slots,
        "acceptance_rate": np.nan if speculation is None else float(speculation.acceptance_rate),
        "tokens_per_round": 1.0 if speculation is None else speculation.tokens_per_round,
        "batch": b, "prompt_len": p, "cached_prompt_len": cached, "output_len": o, "context_len": ctx,
        "params_total": params["params_total"], "params_active": params["params_active"],
        **{k: mem[k] for k in ("weight_bytes", "kv_cache_bytes", "activation_bytes",
                               "total_memory_bytes", "usable_memory_bytes",
                               "memory_capacity_bytes", "fits")},
        "kv_cache_bytes_per_token": kv_bytes_per_token(model, workload.kv_format, workload.mla),
        "prefill_flops": req["prefill_flops"], "decode_flops": decode_flops,
        "ttft_s": req["ttft_s"], "tpot_s": tpot, "mean_tpot_s": req["mean_tpot_s"],
        "request_latency_s": req["request_latency_s"], **bounds,
        "throughput_tokens_per_s": req["throughput_tokens_per_s"],
        "decode_tokens_per_s": b / tpot, "prefill_tokens_per_s": req["prefill_tokens_per_s"],
        "prefill_bound": req["prefill_bound"], "decode_bound": decode_bound,
        "price_usd_per_hour": price,
        "cost_usd_per_1m_input_tokens": cost_per_million_tokens(price, devices, req["prefill_tokens_per_s"]),
        "cost_usd_per_1m_output_tokens": cost_per_million_tokens(price, devices, req["throughput_tokens_per_s"]),
    }
    n = b.size
    frame = pd.DataFrame({k: (np.broadcast_to(v, b.shape).ravel() if isinstance(v, np.ndarray)
                              else [v] * n) for k, v in out.items()})
    return frame[ESTIMATE_COLUMNS]


def _intervals(calibration: Calibration, req: dict, decode) -> dict:
    """Low/high TTFT, TPOT and request latency from the calibration's held-out residuals (NaN for
    calibrations without measurements, e.g. ``ideal``)."""
    interval = getattr(calibration, "interval", None)
    keys = ("ttft_s_low", "ttft_s_high", "tpot_s_low", "tpot_s_high", "request_latency_s_low",
            "request_latency_s_high")
    if interval is None:
        return {k: np.nan for k in keys}
    t_lo, t_hi = _pipelined(interval, req["prefill_cost"])
    d_lo, d_hi = _pipelined(interval, decode)
    tpot = decode.step_time_s
    return dict(zip(keys, (t_lo, t_hi, d_lo, d_hi,
                           t_lo + req["decode_time_s"] * d_lo / tpot,
                           t_hi + req["decode_time_s"] * d_hi / tpot)))


def _speculative_intervals(calibration: Calibration, plain: dict, spec: dict) -> dict:
    """Intervals under speculation: the plain prefill's and the verification step's relative
    held-out bands applied to the speculative TTFT, TPOT and decode time (the draft's kernels
    are of the same kinds)."""
    interval = getattr(calibration, "interval", None)
    keys = ("ttft_s_low", "ttft_s_high", "tpot_s_low", "tpot_s_high", "request_latency_s_low",
            "request_latency_s_high")
    if interval is None:
        return {k: np.nan for k in keys}
    t_lo, t_hi = (x / plain["ttft_s"] for x in _pipelined(interval, plain["prefill_cost"]))
    verify = spec["verify_cost"]
    d_lo, d_hi = (x / verify.step_time_s for x in _pipelined(interval, verify))
    ttft, tpot, decode = spec["ttft_s"], spec["tpot_s"], spec["decode_time_s"]
    return dict(zip(keys, (ttft * t_lo, ttft * t_hi, tpot * d_lo, tpot * d_hi,
                           ttft * t_lo + decode * d_lo, ttft * t_hi + decode * d_hi)))


def _pipelined(interval, cost) -> tuple:
    """The interval of a step's op times, at least the host's time to issue the step (eager
    engines), scaled to the pipeline's step (pipeline.pipeline_cost)."""
    low, high = interval(cost)
    low, high = np.maximum(low, cost.host_s), np.maximum(high, cost.host_s)
    if cost.traversal_s is None:
        return low, high
    scale = cost.step_time_s / np.maximum(cost.traversal_s, 1e-300)
    return low * scale, high * scale


@accepts_names
def estimate(model: ModelSpec, hardware: HardwareSpec, workload: Workload = Workload(), **kwargs) -> dict:
    """The estimate of one scenario as a plain dict (the JSON contract)."""
    row = estimate_frame(model, hardware, workload, **kwargs).iloc[0].to_dict()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


@accepts_names
def ops_frame(model: ModelSpec, hardware: HardwareSpec, workload: Workload, step: Step,
              calibration: Calibration = IDEAL, overlap: str = "max") -> pd.DataFrame:
    """One row per op of one step (scalar step shapes), in execution order."""
    if step.batch.size != 1:
        raise LlmperfError("ops_frame needs a single scenario (scalar batch and lengths)")
    cost = step_cost(model, hardware, workload, step, calibration, overlap)
    rows = []
    # shares of one traversal (under pipeline parallelism the step is the pipeline's, not the sum)
    step_total = float(cost.step_time_s if cost.traversal_s is None else cost.traversal_s)
    for i, op in enumerate(cost.ops):
        flops, mem = float(op.flops), float(op.memory_bytes)
        time = float(cost.time_s[i])
        rows.append({
            "model": model.name, "hardware": hardware.name, "calibration": cost.calibration,
            "group": op.group, "op": op.name, "kind": op.kind, "count": op.count,
            "compute_dtype": op.compute_dtype, "weight_dtype": op.weight_dtype,
            "m": float(op.shape["m"]) if "m" in op.shape else np.nan,
            "n": float(op.shape.get("n", np.nan)), "k": float(op.shape.get("k", np.nan)),
            "flops": flops, "vector_flops": float(op.vector_flops),
            "weight_bytes": float(op.weight_bytes), "act_in_bytes": float(op.act_in_bytes),
            "act_out_bytes": float(op.act_out_bytes), "kv_read_bytes": float(op.kv_read_bytes),
            "kv_write_bytes": float(op.kv_write_bytes), "comm_bytes": float(op.comm_bytes),
            "memory_bytes": mem,
            "arithmetic_intensity_flop_per_byte": (flops + float(op.vector_flops)) / mem if mem else np.nan,
            "compute_time_s": float(cost.compute_s[i]), "memory_time_s": float(cost.memory_s[i]),
            "comm_time_s": float(cost.comm_s[i]), "overhead_s": float(cost.overhead_s[i]),
            "time_s": time, "total_time_s": time * op.count,
            "time_share": time * op.count / step_total if step_total else 0.0,
            "bound": BOUNDS[int(cost.bound_index[i])],
        })
    return pd.DataFrame(rows, columns=OP_COLUMNS)


@accepts_names
def layers_frame(model: ModelSpec, hardware: HardwareSpec, workload: Workload, step: Step,
                 calibration: Calibration = IDEAL, overlap: str = "max") -> pd.DataFrame:
    """One row per layer group: FLOPs, bytes and time of ONE layer of the group, its count and
    the group's share of the step (embedding and head are groups of one)."""
    ops = ops_frame(model, hardware, workload, step, calibration, overlap)
    per_layer = ["flops", "vector_flops", "weight_bytes", "act_in_bytes", "act_out_bytes",
                 "kv_read_bytes", "kv_write_bytes", "comm_bytes", "memory_bytes", "time_s"]
    frame = ops.groupby("group", sort=False).agg(
        {**{c: "sum" for c in per_layer}, "count": "first", "total_time_s": "sum", "time_share": "sum"})
    frame = frame.rename(columns={"count": "layers"}).reset_index()
    frame.insert(0, "model", model.name)
    frame.insert(1, "hardware", hardware.name)
    return frame
