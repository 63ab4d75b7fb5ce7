"""Tables behind ``llmperf list``, ``llmperf memory`` and the per-op views, as tidy DataFrames.

Every numeric column is an SI float whose name carries the unit (DESIGN.md rule 8); the CLI,
the notebooks and :mod:`llmperf.plot` only render these frames.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from llmperf.calibration import IDEAL, Calibration
from llmperf.catalog import bundled_hardware_names, bundled_model_names, load_hardware, load_model
from llmperf.errors import LlmperfError
from llmperf.estimators.memory import max_batch, max_context, memory_breakdown
from llmperf.estimators.params import parameter_counts
from llmperf.estimators.report import check_context, ops_frame
from llmperf.ops.kv import kv_bytes_per_token
from llmperf.specs.hardware import HardwareSpec
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Step, Workload

MODEL_COLUMNS = [
    "model", "architecture", "params_total", "params_active", "num_layers", "hidden_size",
    "num_attention_heads", "num_kv_heads", "attention", "num_experts", "experts_per_token",
    "kv_cache_bytes_per_token", "max_position_embeddings", "vocab_size",
]

HARDWARE_COLUMNS = [
    "hardware", "display_name", "vendor", "memory_capacity_bytes", "memory_bandwidth_bytes_per_s",
    "peak_bf16_flop_per_s", "peak_fp8_flop_per_s", "peak_fp32_flop_per_s",
    "ridge_bf16_flop_per_byte", "interconnect_bytes_per_s", "price_usd_per_hour",
]

MEMORY_COLUMNS = [
    "model", "hardware", "weights", "kv_cache", "tensor_parallel", "pipeline_parallel", "batch",
    "context_len",
    "weight_bytes", "kv_cache_bytes", "activation_bytes", "total_memory_bytes",
    "usable_memory_bytes", "memory_capacity_bytes", "fits",
    "max_batch", "max_context_len", "max_position_embeddings",
]


def model_row(model: ModelSpec, kv_dtype: str = "bf16") -> dict:
    """Key figures of one model; KV bytes per token (all layers) in ``kv_dtype``."""
    from llmperf.dtypes import kv_format

    params = parameter_counts(model)
    return {
        "model": model.name, "architecture": model.architecture,
        "params_total": params["params_total"], "params_active": params["params_active"],
        "num_layers": model.num_layers, "hidden_size": model.hidden_size,
        "num_attention_heads": model.num_attention_heads, "num_kv_heads": model.num_kv_heads,
        "attention": model.attention, "num_experts": model.num_experts,
        "experts_per_token": model.experts_per_token,
        "kv_cache_bytes_per_token": float(kv_bytes_per_token(model, kv_format(kv_dtype), "absorbed")),
        "max_position_embeddings": model.max_position_embeddings, "vocab_size": model.vocab_size,
    }


def models_table(names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per model (default: every bundled one) with :data:`MODEL_COLUMNS`."""
    names = bundled_model_names() if names is None else names
    return pd.DataFrame([model_row(load_model(n)) for n in names], columns=MODEL_COLUMNS)


def hardware_row(hw: HardwareSpec) -> dict:
    """Key figures of one accelerator; the ridge point is bf16 peak / bandwidth (FLOP/byte)."""
    bf16 = hw.peak_flop_per_s("bf16")
    link = hw.interconnect.per_direction_bytes_per_s if hw.interconnect else None
    return {
        "hardware": hw.name, "display_name": hw.display_name, "vendor": hw.vendor,
        "memory_capacity_bytes": hw.memory_capacity_bytes,
        "memory_bandwidth_bytes_per_s": hw.memory_bandwidth_bytes_per_s,
        "peak_bf16_flop_per_s": bf16,
        "peak_fp8_flop_per_s": hw.peak.fp8 if hw.peak.fp8 is not None else np.nan,
        "peak_fp32_flop_per_s": hw.vector_flop_per_s,
        "ridge_bf16_flop_per_byte": bf16 / hw.memory_bandwidth_bytes_per_s,
        "interconnect_bytes_per_s": link if link is not None else np.nan,
        "price_usd_per_hour": hw.price_usd_per_hour if hw.price_usd_per_hour is not None else np.nan,
    }


def hardware_table(names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per accelerator (default: every bundled one) with :data:`HARDWARE_COLUMNS`.

    interconnect_bytes_per_s is per direction; peak_fp32 is the vector (non-tensor) peak.
    """
    names = bundled_hardware_names() if names is None else names
    return pd.DataFrame([hardware_row(load_hardware(n)) for n in names], columns=HARDWARE_COLUMNS)


def default_contexts(model: ModelSpec) -> list[int]:
    """1k, 4k, 16k, ... up to the model's max_position_embeddings (which is included)."""
    limit = model.max_position_embeddings
    out = [c for c in (1024 * 4**i for i in range(12)) if c < limit]
    return out + [limit]


def context_grid(model: ModelSpec, lo: int = 256, points: int = 48,
                 hi: int | None = None) -> list[int]:
    """Geometric grid of whole context lengths from ``lo`` to ``hi`` (default: the model's
    max_position_embeddings), for smooth memory-vs-context curves."""
    hi = model.max_position_embeddings if hi is None else hi
    if hi < lo:
        lo = 1
    return sorted({int(round(x)) for x in np.geomspace(lo, hi, points)})


def memory_table(model: ModelSpec, hardware: HardwareSpec, workload: Workload = Workload(),
                 batch: Sequence = (1, 8, 32, 128), context_len: Sequence | None = None,
                 prompt_len: float | None = None, allow_long_context: bool = False) -> pd.DataFrame:
    """Device memory over batch x context, with the largest batch and context that fit.

    context_len: tokens each sequence holds in the KV cache (default :func:`default_contexts`).
    prompt_len: tokens prefilled in one step, for the activation peak; None sizes activations
    for decode only (engines with chunked prefill). max_batch: largest batch that fits at the
    row's context; max_context_len: longest context that fits at the row's batch (tokens, not
    clamped to max_position_embeddings, which is reported beside it).
    """
    contexts = default_contexts(model) if context_len is None else list(context_len)
    b, c = (m.ravel() for m in np.meshgrid(np.asarray(batch, dtype=float),
                                           np.asarray(contexts, dtype=float), indexing="ij"))
    Step.decode(b, c)  # validates batch >= 1 and whole lengths
    if np.any(c < 1):
        raise LlmperfError("context must be >= 1 token")
    check_context(model, c, allow_long_context)
    p = np.ones_like(c) if prompt_len is None else np.minimum(float(prompt_len), c)
    mem = memory_breakdown(model, hardware, workload, b, p, c)
    frame = pd.DataFrame({
        "model": model.name, "hardware": hardware.name, "weights": workload.weights,
        "kv_cache": workload.kv_cache, "tensor_parallel": workload.tensor_parallel,
        "pipeline_parallel": workload.pipeline_parallel,
        "batch": b, "context_len": c,
        **{k: np.asarray(mem[k]) for k in MEMORY_COLUMNS[MEMORY_COLUMNS.index("weight_bytes"):
                                                          MEMORY_COLUMNS.index("fits") + 1]},
        "max_batch": max_batch(model, hardware, workload, c),
        "max_context_len": max_context(model, hardware, workload, b),
        "max_position_embeddings": float(model.max_position_embeddings),
    })
    return frame[MEMORY_COLUMNS]


def ops_table(model: ModelSpec, hardware: HardwareSpec, workload: Workload = Workload(),
              phase: str = "decode", batch: float = 1, prompt_len: float = 1024,
              context_len: float | None = None, output_len: float = 256,
              calibration: Calibration = IDEAL, allow_long_context: bool = False) -> pd.DataFrame:
    """The per-op table of one step (:func:`llmperf.ops_frame`) with the step beside each op:
    ``phase``, ``batch``, ``q_len`` (new tokens per sequence), ``past_len`` (cached tokens).

    phase ``prefill``: batch x prompt_len new tokens, empty cache. phase ``decode``: one new
    token per sequence with context_len cached tokens (default prompt + output - 1, the last
    step of the request, as ``tpot_s`` of the estimate).
    """
    if phase not in ("prefill", "decode"):
        raise LlmperfError(f"--phase must be prefill or decode, got '{phase}'")
    if phase == "prefill":
        check_context(model, prompt_len, allow_long_context)
        step = Step.prefill(batch, prompt_len)
    else:
        ctx = prompt_len + output_len - 1 if context_len is None else context_len
        check_context(model, float(ctx) + 1, allow_long_context)
        step = Step.decode(batch, ctx)
    frame = ops_frame(model, hardware, workload, step, calibration)
    for i, (key, value) in enumerate((("phase", phase), ("batch", float(step.batch)),
                                      ("q_len", float(step.q_len)),
                                      ("past_len", float(step.past_len)))):
        frame.insert(3 + i, key, value)
    return frame
