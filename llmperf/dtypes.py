"""Number formats for weights, activations/compute and the KV cache.

A format stores ``bits`` per element plus optional scales: one ``scale_bits`` scale per group of
``group_size`` consecutive elements of a row, per row (``group_size=ROW``) or per tensor
(``group_size=TENSOR``). Bytes are exact, not rounded per element: int4 with group-128 fp16
scales costs 4 + 16/128 = 4.125 bits per element (GPTQ, Frantar et al. arXiv:2210.17323 §4;
AWQ, Lin et al. arXiv:2306.00978 use the same group-128 layout).
"""

from __future__ import annotations

import dataclasses
import math

ROW = -1      # one scale per row (per output channel of a weight, per head vector of the KV cache)
TENSOR = 0    # one scale per tensor (negligible bytes; counted as 4 bytes per tensor)


@dataclasses.dataclass(frozen=True)
class NumberFormat:
    """A storage format. ``compute_dtype`` is the tensor-core dtype a GEMM reading it runs in."""

    name: str
    bits: float
    scale_bits: float = 0.0
    group_size: int = TENSOR
    compute_dtype: str = ""  # for activation formats: the peak to use (bf16/fp16/fp8/int8/fp32)

    @property
    def is_quantized(self) -> bool:
        return self.scale_bits > 0

    def bytes_for(self, rows, row_len):
        """Exact bytes of a [rows, row_len] tensor in this format (scales included)."""
        data = rows * row_len * self.bits / 8.0
        if self.scale_bits == 0:
            return data
        if self.group_size == TENSOR:
            return data + 4.0
        group = row_len if self.group_size == ROW else self.group_size
        groups_per_row = math.ceil(row_len / group)
        return data + rows * groups_per_row * self.scale_bits / 8.0

    def bits_per_element(self, row_len: int) -> float:
        """Effective bits per element for rows of length ``row_len`` (scales amortised)."""
        return 8.0 * self.bytes_for(1, row_len) / row_len if self.group_size != TENSOR else self.bits


# Activation / compute formats: the GEMM runs at the tensor peak of ``compute_dtype``.
ACTIVATION_FORMATS = {
    "fp32": NumberFormat("fp32", 32, compute_dtype="tf32"),
    "bf16": NumberFormat("bf16", 16, compute_dtype="bf16"),
    "fp16": NumberFormat("fp16", 16, compute_dtype="fp16"),
    "fp8": NumberFormat("fp8", 8, compute_dtype="fp8"),
    "int8": NumberFormat("int8", 8, compute_dtype="int8"),
}

# Weight formats. int8 = per-output-channel fp16 scales (LLM.int8/SmoothQuant W8A8 style);
# fp8 = e4m3 with a per-tensor scale (vLLM/TensorRT-LLM default fp8 checkpoints);
# fp8-block = DeepSeek-V3 128x128 block scales in fp32 (DeepSeek-V3 report arXiv:2412.19437 §3.3.2),
# counted here as one fp32 scale per 128 elements of a row per 128 rows (1/128 of a row-group);
# int4 = group-128 fp16 scales (GPTQ/AWQ); nvfp4 = e2m1 + one fp8 scale per 16 (NVIDIA Blackwell
# NVFP4); mxfp4 = e2m1 + one e8m0 scale per 32 (OCP Microscaling spec v1.0).
WEIGHT_FORMATS = {
    "fp32": NumberFormat("fp32", 32),
    "bf16": NumberFormat("bf16", 16),
    "fp16": NumberFormat("fp16", 16),
    "fp8": NumberFormat("fp8", 8, scale_bits=32, group_size=TENSOR),
    "fp8-block": NumberFormat("fp8-block", 8, scale_bits=32.0 / 128, group_size=128),
    "int8": NumberFormat("int8", 8, scale_bits=16, group_size=ROW),
    "int4": NumberFormat("int4", 4, scale_bits=16, group_size=128),
    "int4-g64": NumberFormat("int4-g64", 4, scale_bits=16, group_size=64),
    "int4-g32": NumberFormat("int4-g32", 4, scale_bits=16, group_size=32),
    "nvfp4": NumberFormat("nvfp4", 4, scale_bits=8, group_size=16),
    "mxfp4": NumberFormat("mxfp4", 4, scale_bits=8, group_size=32),
}

# KV-cache formats. fp8 uses per-tensor k/v scales (vLLM ``kv_cache_dtype=fp8``); int8/int4 keep
# one fp16 scale per head vector per token (per-token asymmetric schemes such as KIVI,
# arXiv:2402.02750, add a zero point: use the ``-zp`` variants).
KV_FORMATS = {
    "fp32": NumberFormat("fp32", 32),
    "bf16": NumberFormat("bf16", 16),
    "fp16": NumberFormat("fp16", 16),
    "fp8": NumberFormat("fp8", 8),
    "int8": NumberFormat("int8", 8, scale_bits=16, group_size=ROW),
    "int8-zp": NumberFormat("int8-zp", 8, scale_bits=32, group_size=ROW),
    "int4": NumberFormat("int4", 4, scale_bits=16, group_size=ROW),
    "int4-zp": NumberFormat("int4-zp", 4, scale_bits=32, group_size=ROW),
}


def _lookup(table: dict, name: str, what: str, flag: str) -> NumberFormat:
    from llmperf.errors import LlmperfError

    try:
        return table[name.lower()]
    except KeyError:
        raise LlmperfError(
            f"unknown {what} dtype '{name}'; use {flag} with one of: {', '.join(table)}"
        ) from None


def weight_format(name: str) -> NumberFormat:
    return _lookup(WEIGHT_FORMATS, name, "weight", "--weights")


def activation_format(name: str) -> NumberFormat:
    return _lookup(ACTIVATION_FORMATS, name, "activation", "--activations")


def kv_format(name: str) -> NumberFormat:
    return _lookup(KV_FORMATS, name, "KV-cache", "--kv")
