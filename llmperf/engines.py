"""Engine profiles: how an inference engine turns the op list into kernels, as data.

The same step costs different time in different engines: how many kernels each op becomes (HF
transformers runs RMSNorm as 8 fp32 elementwise kernels, vLLM/SGLang as one fused add+RMSNorm),
how many bytes those kernels move, whether decode replays a CUDA graph (a per-kernel gap of about
a microsecond) or launches eagerly from Python (the host's launch rate can bound the step), and
whose GEMM/attention kernels run (the calibration's ``kernel_source``).

Kernel counts and traffic multipliers below are read off each engine's code, not fitted: e.g.
HF's LlamaRMSNorm is ``x.float()``, ``pow(2)``, ``mean``, ``+ eps``, ``rsqrt``, ``*``, ``.to()``,
``w *`` = 8 kernels moving 36 bytes per bf16 element instead of 4; ``rotate_half`` RoPE is
``x*cos``, ``-x2``, ``cat``, ``*sin``, ``+`` = 5 kernels per tensor moving 20 bytes per element.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from llmperf.errors import LlmperfError, suggest
from llmperf.ops.op import Op


@dataclasses.dataclass(frozen=True)
class OpRule:
    """How an engine runs one op: launches per instance and its activation traffic multiplier."""

    kernels: int
    traffic: float = 1.0
    source: str | None = None  # calibration kernel_source for this op (default: by op kind)


@dataclasses.dataclass(frozen=True)
class EngineProfile:
    """An inference engine as data (see the module docstring)."""

    name: str
    description: str
    kernel_sources: dict            # calibration kernel_source per op kind
    decode_graph: bool              # decode step replayed from a CUDA graph
    prefill_graph: bool
    rules: dict                     # op name -> OpRule (ops not listed: 1 kernel, traffic 1)
    fused_projections: bool = True  # q/k/v and gate/up as one GEMM each
    host_launch: str = "eager"      # calibration launch row for eager steps (host time per kernel)
    cache_concat: bool = False      # the KV cache grows by torch.cat: each step copies all of it

    def rule(self, op: Op) -> OpRule:
        return self.rules.get(op.name, OpRule(op.kernels))


# HF LlamaRMSNorm in eager torch ops (36 / 4 bytes per element), timed as such by the
# calibration (kernel_source torch_ops); rotate_half RoPE on q and k: 5 kernels each (20 / 4).
_TORCH_NORM = OpRule(8, 9.0, "torch_ops")
_TORCH_ROPE = OpRule(10, 5.0, "torch_ops")
_TORCH_QK_NORM = OpRule(16, 9.0, "torch_ops")
# what the reference decoder and HF transformers share: norms and RoPE in torch ops, K and V
# written by two kernels, SiLU then * up (reads gate and up, writes the product: 5/3 of one pass)
_TORCH_OP_RULES = {
    "input_layernorm": _TORCH_NORM, "post_attention_layernorm": _TORCH_NORM,
    "final_norm": _TORCH_NORM, "qk_norm": _TORCH_QK_NORM, "rope": _TORCH_ROPE,
    "kv_cache_write": OpRule(2), "act_mul": OpRule(2, 5.0 / 3.0),
}

# Fused kernels (vLLM/SGLang, and our Triton set): the residual add folds into the next
# add+RMSNorm kernel (reads x and residual, writes both: 4 passes instead of 2 + 3); fused MoE
# (vLLM fused_moe) gathers rows inside the GEMM kernel and sums in one moe_sum kernel.
_FUSED_RULES = {
    "attn_residual_add": OpRule(0, 0.0), "mlp_residual_add": OpRule(0, 0.0),
    "post_attention_layernorm": OpRule(1, 2.0), "input_layernorm": OpRule(1, 2.0),
    "final_norm": OpRule(1, 2.0),
    "experts_permute": OpRule(0, 0.0), "experts_unpermute": OpRule(0, 0.0),
}

# cuBLAS GEMMs, SDPA attention and memory-bound work in eager torch ops: the kernels the
# reference decoder and HF transformers both run
_LIBRARY_KERNELS_TORCH_OPS = {"gemm": "cublas", "attention_prefill": "sdpa", "attention_decode": "sdpa",
                              "memory": "torch"}

ENGINES = {
    "fused": EngineProfile(
        name="fused",
        description="vLLM/SGLang-like: fused add+RMSNorm, fused rotary, silu_and_mul, paged cache "
                    "write, cuBLAS GEMMs, flash/cuDNN attention, decode in CUDA graphs",
        kernel_sources={"gemm": "cublas", "attention_prefill": "sdpa", "attention_decode": "sdpa",
                        "memory": "triton"},
        decode_graph=True, prefill_graph=False,
        rules=_FUSED_RULES),
    "reference": EngineProfile(
        name="reference",
        description="llmperf's pure-PyTorch reference decoder (kernels/reference_model.py): fused "
                    "QKV and gate_up cuBLAS GEMMs, HF-style RMSNorm/RoPE in torch ops, SDPA, "
                    "static cache slice writes, decode in CUDA graphs, prefill eager",
        kernel_sources=_LIBRARY_KERNELS_TORCH_OPS,
        decode_graph=True, prefill_graph=False, host_launch="torch_eager",
        rules={
            **_TORCH_OP_RULES,
            "attention": OpRule(2),  # SDPA + the transpose/reshape copy of its output
            # MoE (reference_model.route_topk / sort_by_expert / _moe with torch._grouped_mm),
            # kernels per op as the torch profiler lists them: router_topk = float copy, softmax,
            # topk (2), sum, div, cast (timed whole by the calibration: torch_router_topk);
            # experts_sort = argsort (arange + radix sort), //k, 2 fills, scatter_add, cumsum (2),
            # int32 cast (timed whole: torch_experts_sort); experts_permute = index_select;
            # experts_gate_up / experts_down = grouped-GEMM prepare + CUTLASS grouped GEMM;
            # experts_unpermute = index_copy and the multiply by routing weights (2 passes);
            # experts_combine = the sum over k (the last three timed whole as well)
            "router_topk": OpRule(7, 1.0, "torch_ops"), "experts_sort": OpRule(9, 1.0, "torch_ops"),
            "experts_permute": OpRule(1, 1.0, "torch_ops"),
            "experts_gate_up": OpRule(2, 1.0, "cutlass_grouped"),
            "experts_down": OpRule(2, 1.0, "cutlass_grouped"),
            "experts_act_mul": OpRule(2, 5.0 / 3.0), "experts_unpermute": OpRule(2, 2.0, "torch_ops"),
            "experts_combine": OpRule(1, 1.0, "torch_ops"),
        }),
    "hf-transformers": EngineProfile(
        name="hf-transformers",
        description="Hugging Face transformers forward as generate() runs it: separate q/k/v and "
                    "gate/up GEMMs, RMSNorm/RoPE/SiLU in torch ops, SDPA, DynamicCache (torch.cat "
                    "copies the whole cache each step), eager launches (no CUDA graph)",
        kernel_sources=_LIBRARY_KERNELS_TORCH_OPS,
        decode_graph=False, prefill_graph=False, fused_projections=False, host_launch="hf_eager",
        cache_concat=True,
        rules={
            **_TORCH_OP_RULES,
            "attention": OpRule(1),  # SDPA alone (the profiled step shows no transpose copy)
        }),
    "triton": EngineProfile(
        name="triton",
        description="llmperf's own Triton kernels throughout (the portable calibration baseline), "
                    "decode in CUDA graphs",
        kernel_sources={"gemm": "triton", "attention_prefill": "triton",
                        "attention_decode": "triton", "memory": "triton"},
        decode_graph=True, prefill_graph=False,
        rules=_FUSED_RULES),
}


def get_engine(name: str) -> EngineProfile:
    try:
        return ENGINES[name]
    except KeyError:
        raise LlmperfError(f"unknown engine '{name}'{suggest(name, ENGINES)}; "
                           f"use --engine with one of: {', '.join(ENGINES)}") from None


def _concat_cache_write(op: Op) -> Op:
    """HF DynamicCache append: ``torch.cat([cache, new])`` for K and for V reads the cached
    tokens and writes cached + new ones (transformers ``DynamicLayer.update``), every step."""
    cached = np.asarray(op.shape.get("cached_tokens", 0.0), dtype=float)
    copied = cached * float(op.shape.get("token_bytes", 0.0))
    return dataclasses.replace(op, kv_read_bytes=op.kv_read_bytes + copied,
                               kv_write_bytes=op.kv_write_bytes + copied)


def apply_engine(ops: list[Op], engine: EngineProfile) -> list[Op]:
    """The ops as this engine runs them: kernel counts and activation traffic per its rules."""
    out = []
    for op in ops:
        if engine.cache_concat and op.name == "kv_cache_write":
            op = _concat_cache_write(op)
        rule = engine.rule(op)
        if rule.kernels == op.kernels and rule.traffic == 1.0:
            out.append(op)
            continue
        t = rule.traffic
        out.append(dataclasses.replace(
            op, kernels=rule.kernels, act_in_bytes=op.act_in_bytes * t,
            act_out_bytes=op.act_out_bytes * t, vector_flops=op.vector_flops * (t if t else 0.0)))
    return out


def is_decode(ops: list[Op]) -> bool:
    """A step is a decode step when every attention op adds one token per sequence (the
    default when the caller does not say which phase a step is: see ``step_cost(decode=...)``)."""
    q = [np.max(np.asarray(o.shape.get("q_len", 1))) for o in ops if o.kind == "attention"]
    return bool(q) and max(q) <= 1
