"""Workload: how the model is run (dtypes, parallelism, kernels) and the step shapes to cost.

Quantization and parallelism live here, never in a hardware or model spec. ``Step`` holds the
shape grid as numpy arrays broadcast together, so one op build costs a whole sweep.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from llmperf.dtypes import NumberFormat, activation_format, kv_format, weight_format
from llmperf.errors import LlmperfError


@dataclasses.dataclass(frozen=True)
class Workload:
    """Execution choices that do not depend on the batch/length grid.

    weights / activations / kv_cache: dtype names (see :mod:`llmperf.dtypes`); the GEMM compute
    peak follows ``activations`` (W4A16 runs at the bf16 peak and reads 4.125-bit weights).
    tensor_parallel: devices sharing each layer (Megatron-LM split, Shoeybi et al.
    arXiv:1909.08053 §3): heads, FFN width and experts' width divide by it; two all-reduces per
    layer. pipeline_parallel: stages of ``tensor_parallel`` devices each holding a run of layers
    (:mod:`llmperf.pipeline`: layer split, micro-batches, stage-to-stage sends). attention:
    ``flash`` (fused, scores never in memory) or ``naive`` (scores written and read back). mla:
    ``absorbed`` (latent cache, W_UK/W_UV folded into q and output; DeepSeek-V2 arXiv:2405.04434
    §2.1.2) or ``naive`` (per-head K/V cached, DeepSeek's reference ``attn_impl="naive"``).
    logits: ``last`` computes the lm_head for the last token of each sequence only (prefill).
    memory_utilization: fraction of device memory the engine may use (vLLM's
    ``gpu_memory_utilization`` default 0.9). fused_projections: q/k/v and gate/up as one GEMM
    each (what vLLM, SGLang and TensorRT-LLM run) or as separate GEMMs (HF transformers).
    engine: an engine profile (:mod:`llmperf.engines`: ``fused``, ``reference``,
    ``hf-transformers``, ``triton``) deciding kernel counts, fusion traffic, CUDA graphs and whose
    kernels' calibration applies; None = the bare op model, one kernel per op.
    """

    weights: str = "bf16"
    activations: str = "bf16"
    kv_cache: str = "bf16"
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    attention: Literal["flash", "naive"] = "flash"
    mla: Literal["absorbed", "naive"] = "absorbed"
    logits: Literal["last", "all"] = "last"
    fused_projections: bool = True
    engine: str | None = None
    memory_utilization: float = 0.9
    reserved_memory_bytes: float = 0.0

    def __post_init__(self):
        self.weight_format, self.activation_format, self.kv_format  # validate names early
        if self.engine is not None:
            from llmperf.engines import get_engine

            get_engine(self.engine)
        if int(self.tensor_parallel) != self.tensor_parallel or self.tensor_parallel < 1:
            raise LlmperfError(f"--tp must be a positive whole number, got {self.tensor_parallel}")
        if int(self.pipeline_parallel) != self.pipeline_parallel or self.pipeline_parallel < 1:
            raise LlmperfError(f"--pp must be a positive whole number, got {self.pipeline_parallel}")
        if self.attention not in ("flash", "naive"):
            raise LlmperfError(f"--attention must be flash or naive, got '{self.attention}'")
        if self.mla not in ("absorbed", "naive"):
            raise LlmperfError(f"--mla must be absorbed or naive, got '{self.mla}'")
        if self.logits not in ("last", "all"):
            raise LlmperfError(f"logits must be 'last' or 'all', got '{self.logits}'")
        if not 0.0 < self.memory_utilization <= 1.0:
            raise LlmperfError("memory utilization must be in (0, 1]")
        if self.reserved_memory_bytes < 0:
            raise LlmperfError("reserved memory must not be negative")
        act_bits, w_bits = self.activation_format.bits, self.weight_format.bits
        if act_bits < 16 and w_bits > act_bits:
            raise LlmperfError(
                f"--activations {self.activations} needs weights of at most {act_bits:g} bits "
                f"(got --weights {self.weights}); quantize the weights too")

    @property
    def devices(self) -> int:
        """Devices one model replica occupies (tensor x pipeline parallel)."""
        return int(self.tensor_parallel) * int(self.pipeline_parallel)

    @property
    def weight_format(self) -> NumberFormat:
        return weight_format(self.weights)

    @property
    def activation_format(self) -> NumberFormat:
        return activation_format(self.activations)

    @property
    def kv_format(self) -> NumberFormat:
        return kv_format(self.kv_cache)


def _as_lengths(value, name: str, minimum: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.size == 0:
        raise LlmperfError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise LlmperfError(f"{name} must be finite")
    if np.any(arr != np.floor(arr)):
        raise LlmperfError(f"{name} must be whole numbers")
    if np.any(arr < minimum):
        raise LlmperfError(f"{name} must be >= {minimum}, got {arr.min():g}")
    return arr


@dataclasses.dataclass(frozen=True)
class Step:
    """One forward step over a grid: ``batch`` sequences, each adding ``q_len`` tokens on top of
    ``past_len`` cached ones (prefill: past 0, q = prompt; decode: past = context, q = 1).

    Fields are float arrays broadcast together; every op quantity has the broadcast shape.
    """

    batch: np.ndarray
    q_len: np.ndarray
    past_len: np.ndarray

    @classmethod
    def of(cls, batch, q_len, past_len=0) -> "Step":
        b = _as_lengths(batch, "batch", 1)
        q = _as_lengths(q_len, "q_len (new tokens per sequence)", 1)
        p = _as_lengths(past_len, "context (cached tokens)", 0)
        b, q, p = np.broadcast_arrays(b, q, p)
        return cls(b, q, p)

    @classmethod
    def prefill(cls, batch, prompt_len) -> "Step":
        return cls.of(batch, prompt_len, 0)

    @classmethod
    def decode(cls, batch, context_len, q_len=1) -> "Step":
        return cls.of(batch, q_len, context_len)

    @property
    def kv_len(self) -> np.ndarray:
        """Keys each new token can attend to at most: cached plus new."""
        return self.past_len + self.q_len

    @property
    def tokens(self) -> np.ndarray:
        """Tokens processed by every layer this step (batch x q_len)."""
        return self.batch * self.q_len

    @property
    def shape(self) -> tuple:
        return self.batch.shape
