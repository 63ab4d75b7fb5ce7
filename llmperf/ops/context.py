"""Shared state and small op factories for the step builder (one model, workload and grid)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from llmperf.dtypes import NumberFormat, WEIGHT_FORMATS
from llmperf.errors import LlmperfError
from llmperf.ops.formulas import gemm_flops
from llmperf.ops.op import (EMBEDDING, ELEMENTWISE, GEMM, NORM, VECTOR_FLOPS_PER_ELEMENT, Op,
                            make_op)
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Step, Workload


@dataclasses.dataclass
class BuildContext:
    """What every op factory needs: the three specs' facts, resolved once.

    io_bytes: bytes per element of activations passed between ops (16-bit unless fp32; fp8/int8
    "activations" only change what GEMMs read, since engines quantize the GEMM input on the fly
    and keep the residual stream in bf16). w16: format of tensors engines keep unquantized
    (embeddings, lm_head, norms, biases, MoE router; GPTQ/AWQ/fp8 checkpoints leave these 16-bit).
    """

    model: ModelSpec
    workload: Workload
    step: Step
    ops: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        act = self.workload.activation_format
        self.gemm_in_bytes = act.bits / 8.0
        self.io_bytes = 4.0 if act.name == "fp32" else 2.0
        self.compute_dtype = act.compute_dtype
        self.wfmt: NumberFormat = self.workload.weight_format
        self.w16: NumberFormat = (self.wfmt if self.wfmt.bits >= 16 and not self.wfmt.is_quantized
                                  else WEIGHT_FORMATS["bf16"])
        self.kvfmt: NumberFormat = self.workload.kv_format
        self.tp = int(self.workload.tensor_parallel)
        self.grid = self.step.shape
        self.tokens = self.step.tokens
        self.weight_only = self.wfmt.bits < act.bits

    # -- sharding -----------------------------------------------------------------------------
    def shard(self, size: int, what: str) -> int:
        """Per-device share of a dimension split across tensor-parallel ranks."""
        if size % self.tp:
            raise LlmperfError(f"{what} ({size}) is not divisible by --tp {self.tp}; "
                               f"choose a tensor-parallel degree that divides it")
        return size // self.tp

    def kv_heads_per_device(self) -> int:
        """GQA KV heads per rank; replicated when there are fewer KV heads than ranks."""
        nkv = self.model.num_kv_heads
        if nkv >= self.tp:
            return self.shard(nkv, "num_key_value_heads")
        if self.tp % nkv:
            raise LlmperfError(f"--tp {self.tp} must be a multiple of num_key_value_heads ({nkv})")
        return 1

    # -- factories ----------------------------------------------------------------------------
    def add(self, op: Op) -> Op:
        self.ops.append(op)
        return op

    def gemm(self, name: str, group: str, count: int, m, n: int, k: int, *, params: float,
             bias: bool = False, fmt: NumberFormat | None = None, active_params=None,
             weight_rows_read=None, held_copies: int = 1, kernels: int = 1,
             extra_shape=None) -> Op:
        """``y[m, n] = x[m, k] @ W[n, k]^T (+ b)``; n and k are the per-device (sharded) sizes.

        weight_rows_read: multiplier on the weight bytes read (MoE: expected experts touched).
        held_copies: weight matrices of this shape stored (MoE: number of experts).
        Weight-only quantization adds 2 vector FLOPs per weight element (scale and shift) per call.
        """
        fmt = fmt or self.wfmt
        m = np.asarray(m, dtype=float)
        touched = 1.0 if weight_rows_read is None else weight_rows_read
        one_matrix = fmt.bytes_for(n, k) + (n * self.w16.bits / 8.0 if bias else 0.0)
        w_bytes = touched * one_matrix
        dequant = 0.0
        if fmt.bits < self.workload.activation_format.bits:
            dequant = touched * VECTOR_FLOPS_PER_ELEMENT["dequant"] * n * k
        shape = {"m": m, "n": n, "k": k}
        shape.update(extra_shape or {})
        return self.add(make_op(
            name, GEMM, group, count, self.grid, flops=gemm_flops(m, n, k),
            vector_flops=dequant + (m * n if bias else 0.0), weight_bytes=w_bytes,
            act_in_bytes=m * k * self.gemm_in_bytes, act_out_bytes=m * n * self.io_bytes,
            compute_dtype=self._gemm_compute_dtype(fmt), weight_dtype=fmt.name, params=params,
            active_params=active_params, held_weight_bytes=held_copies * one_matrix,
            kernels=kernels, shape=shape))

    def _gemm_compute_dtype(self, fmt: NumberFormat) -> str:
        """Tensor-core dtype of a GEMM: the activations' unless the weight is kept 16-bit (lm_head,
        router under fp8/int8 activations run in bf16)."""
        if fmt.bits >= 16 and self.workload.activation_format.bits < 16:
            return "bf16"
        return self.compute_dtype

    def norm(self, name: str, group: str, count: int, rows, width: int) -> Op:
        """RMSNorm/LayerNorm over ``rows`` vectors of ``width``: read, normalize, write."""
        kind = self.model.norm
        n_params = width * (2 if kind == "layernorm" else 1)
        elems = np.asarray(rows, dtype=float) * width
        return self.add(make_op(
            name, NORM, group, count, self.grid, vector_flops=VECTOR_FLOPS_PER_ELEMENT[kind] * elems,
            weight_bytes=n_params * self.w16.bits / 8.0, act_in_bytes=elems * self.io_bytes,
            act_out_bytes=elems * self.io_bytes, compute_dtype="fp32", weight_dtype=self.w16.name,
            params=n_params, held_weight_bytes=n_params * self.w16.bits / 8.0,
            shape={"elements": elems}))

    def eltwise(self, name: str, group: str, count: int, elems_in, elems_out, flops_key: str,
                flops_elems=None) -> Op:
        """A memory-bound elementwise op reading ``elems_in`` and writing ``elems_out`` values."""
        elems_in = np.asarray(elems_in, dtype=float)
        work = elems_out if flops_elems is None else flops_elems
        return self.add(make_op(
            name, ELEMENTWISE, group, count, self.grid,
            vector_flops=VECTOR_FLOPS_PER_ELEMENT[flops_key] * np.asarray(work, dtype=float),
            act_in_bytes=elems_in * self.io_bytes,
            act_out_bytes=np.asarray(elems_out, dtype=float) * self.io_bytes,
            compute_dtype="fp32", shape={"elements": elems_in}))

    def gather(self, name: str, group: str, rows_table: int, width: int, rows_read,
               vocab_parallel: bool = True) -> Op:
        """Embedding lookup: read ``rows_read`` rows (at most the table) and write them out.

        Token embeddings are vocab-parallel under TP (each rank holds rows_table / tp rows)."""
        rows_read = np.asarray(rows_read, dtype=float)
        touched = np.minimum(rows_read, rows_table)
        return self.add(make_op(
            name, EMBEDDING, group, 1, self.grid, weight_bytes=touched * width * self.w16.bits / 8.0,
            act_out_bytes=rows_read * width * self.io_bytes, compute_dtype="fp32",
            weight_dtype=self.w16.name, params=rows_table * width,
            held_weight_bytes=(math.ceil(rows_table / self.tp) if vocab_parallel else rows_table)
            * width * self.w16.bits / 8.0, shape={"elements": rows_read * width}))
