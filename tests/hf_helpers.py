"""Build Hugging Face transformers models from llmperf's model configs and measure them.

Used by ``tests/test_hf_crosscheck.py``. Everything here is the *independent* side of the
cross-checks: the parameter counts come from the ``nn.Parameter`` tensors that transformers
allocates from the config, and the FLOPs from ``torch.utils.flop_counter.FlopCounterMode``
watching transformers' own forward pass. llmperf code is used only to read the bundled YAML and
to produce the numbers under test (``llmperf_*`` functions at the bottom).

Models are built on the ``meta`` device (shapes only, no memory), so even the 671B DeepSeek-V3
builds and runs a forward pass in about a second; the tiny configs at the bottom run on CPU
with real random weights where routing must depend on real data.
"""

from __future__ import annotations

import functools
import math

import torch
import transformers
import yaml
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from llmperf.catalog import model_dir

transformers.logging.set_verbosity_error()

BATCH = 2
PROMPT = 64        # prefill step: 2 sequences of 64 tokens
DECODE_CONTEXT = 63  # decode step: 1 new token on top of 63 cached ones (64 keys)


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------

def bundled_hf_dict(name: str) -> dict:
    """The bundled YAML as a config.json mapping: Hugging Face field names, ``llmperf:`` dropped."""
    data = yaml.safe_load((model_dir() / f"{name}.yaml").read_text())
    data.pop("llmperf", None)
    return data


def hf_config(cfg_dict: dict):
    """The transformers config class for ``model_type`` (GPT2Config for gpt2 field names,
    Gemma3TextConfig for gemma3_text, FalconConfig, DeepseekV3Config ...) filled from the dict."""
    rest = dict(cfg_dict)
    model_type = rest.pop("model_type")
    return AutoConfig.for_model(model_type, **rest)


def is_moe_config(cfg) -> bool:
    return bool(getattr(cfg, "num_local_experts", 0) or getattr(cfg, "num_experts", 0)
                or getattr(cfg, "n_routed_experts", 0))


def hf_layer_types(cfg) -> tuple[str, ...]:
    """'sliding'/'full' per layer as transformers decides it: ``config.layer_types`` where the
    config class has one (Gemma-2/3, Qwen2/3), else every layer slides iff ``sliding_window`` is
    set (Mistral, Phi-3: ``create_sliding_window_causal_mask`` for the whole model)."""
    types = getattr(cfg, "layer_types", None)
    if types:
        return tuple("sliding" if "sliding" in t else "full" for t in types)
    window = getattr(cfg, "sliding_window", None)
    return ("sliding" if window else "full",) * cfg.num_hidden_layers


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def build_model(cfg, device: str = "meta", experts: str | None = None):
    """``AutoModelForCausalLM.from_config`` with eager attention (the explicit QK^T / PV matmuls
    that FlopCounterMode sees) and, for MoE, the requested experts implementation.

    experts: ``eager`` = transformers' per-expert loop (one ``F.linear`` per expert hit, on the
    tokens routed to it; data-dependent shapes, so real tensors only); ``batched_mm`` = one
    ``bmm`` over the tokens x top-k (token, expert) pairs with the gathered expert weights (no
    data-dependent shapes, so it runs on meta; same multiply-adds as the loop, checked in the
    tests); ``None`` = the transformers default, ``grouped_mm`` (``torch._grouped_mm``, which
    FlopCounterMode has no formula for).
    """
    kwargs = {"attn_implementation": "eager"}
    if experts is not None and is_moe_config(cfg):
        kwargs["experts_implementation"] = experts
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, **kwargs)
    return model.eval()


@functools.lru_cache(maxsize=None)
def bundled_meta_model(name: str, experts: str | None = "batched_mm"):
    """The transformers model of a bundled config on the meta device (cached per session)."""
    return build_model(hf_config(bundled_hf_dict(name)), "meta", experts)


def hf_param_count(model) -> int:
    """Parameters as transformers allocates them. ``parameters()`` yields each Parameter once, so
    a tied lm_head (the embedding's Parameter) is counted once; buffers are not parameters."""
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# FLOPs and KV cache as transformers runs them
# ---------------------------------------------------------------------------------------------

def _ids(model, batch: int, length: int, seed: int = 0):
    device = next(model.parameters()).device
    if device.type == "meta":
        return torch.zeros(batch, length, dtype=torch.long, device=device)
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.config.vocab_size, (batch, length), generator=gen)


def _counted(model, **inputs) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs, logits_to_keep=1)
    return int(counter.get_total_flops())


def hf_prefill_flops(model, batch: int = BATCH, prompt_len: int = PROMPT) -> int:
    """FlopCounterMode FLOPs of one prefill forward (lm_head on the last token only:
    ``logits_to_keep=1``, what ``generate`` passes). An empty cache is passed, as ``generate``
    does: without one, transformers 5 inspects position ids for packed sequences (``.item()``),
    which meta tensors cannot answer."""
    return _counted(model, input_ids=_ids(model, batch, prompt_len),
                    past_key_values=DynamicCache(config=model.config), use_cache=True)


def hf_prefill_cache(model, batch: int = BATCH, context_len: int = DECODE_CONTEXT):
    """A DynamicCache filled by an (uncounted) prefill of ``context_len`` tokens."""
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=_ids(model, batch, context_len, seed=1), past_key_values=cache,
              use_cache=True, logits_to_keep=1)
    return cache


def hf_decode_flops(model, batch: int = BATCH, context_len: int = DECODE_CONTEXT) -> int:
    """FlopCounterMode FLOPs of one decode forward: 1 new token per sequence on top of
    ``context_len`` tokens cached by a real prefill (past_key_values)."""
    cache = hf_prefill_cache(model, batch, context_len)
    return _counted(model, input_ids=_ids(model, batch, 1, seed=2), past_key_values=cache,
                    use_cache=True)


def hf_cache_elements(cache) -> int:
    """Elements held by a DynamicCache (keys + values of every layer)."""
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


# ---------------------------------------------------------------------------------------------
# Tiny configs with the structure of real models (CPU, real random weights)
# ---------------------------------------------------------------------------------------------

_TINY_BASE = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=96, vocab_size=256,
                  max_position_embeddings=512)

TINY = {
    # Mixtral: every layer MoE, 8 experts top-2, expert width = intermediate_size.
    "mixtral-tiny": dict(_TINY_BASE, architectures=["MixtralForCausalLM"], model_type="mixtral",
                         num_local_experts=8, num_experts_per_tok=2, sliding_window=None),
    # Qwen3-MoE: qk_norm, explicit head_dim, 8 experts top-2 of width 32.
    "qwen3-moe-tiny": dict(_TINY_BASE, architectures=["Qwen3MoeForCausalLM"],
                           model_type="qwen3_moe", head_dim=16, num_experts=8,
                           num_experts_per_tok=2, moe_intermediate_size=32,
                           decoder_sparse_step=1, mlp_only_layers=[]),
    # DeepSeek-V2-Lite: MLA without q compression (q_lora_rank null), first layer dense,
    # 8 routed experts top-3 plus 2 shared, greedy softmax routing.
    "deepseek-v2-lite-tiny": dict(_TINY_BASE, architectures=["DeepseekV2ForCausalLM"],
                                  model_type="deepseek_v2", num_key_value_heads=4,
                                  n_routed_experts=8, num_experts_per_tok=3,
                                  moe_intermediate_size=32, n_shared_experts=2,
                                  first_k_dense_replace=1, moe_layer_freq=1, topk_method="greedy",
                                  q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16,
                                  qk_rope_head_dim=8, v_head_dim=16),
    # DeepSeek-V3: MLA with q_lora_rank, group-limited sigmoid routing with score bias (noaux_tc).
    "deepseek-v3-tiny": dict(_TINY_BASE, architectures=["DeepseekV3ForCausalLM"],
                             model_type="deepseek_v3", num_key_value_heads=4, n_routed_experts=8,
                             num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=1,
                             first_k_dense_replace=1, moe_layer_freq=1, topk_method="noaux_tc",
                             n_group=2, topk_group=1, q_lora_rank=24, kv_lora_rank=32,
                             qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16),
    # Sliding windows shorter than the sequence: every layer (Mistral) / every other (Gemma-2).
    "mistral-swa-tiny": dict(_TINY_BASE, architectures=["MistralForCausalLM"], model_type="mistral",
                             sliding_window=16),
    "gemma2-swa-tiny": dict(_TINY_BASE, architectures=["Gemma2ForCausalLM"], model_type="gemma2",
                            head_dim=16, sliding_window=16),
}


@functools.lru_cache(maxsize=None)
def tiny_model(name: str, experts: str | None = "eager"):
    """A tiny model on CPU with seeded random weights (the same weights for every experts mode)."""
    torch.manual_seed(0)
    return build_model(hf_config(TINY[name]), "cpu", experts)


# ---------------------------------------------------------------------------------------------
# The numbers under test (llmperf)
# ---------------------------------------------------------------------------------------------

def llmperf_matmul_flops(spec, step, only=None) -> float:
    """Matmul FLOPs of one step as llmperf counts them for HF-style eager execution: naive
    attention (full q x kv scores), naive MLA (per-head K/V), lm_head on the last token.
    ``only``: a predicate on the op to restrict the sum."""
    from llmperf.ops.builder import build_step_ops
    from llmperf.specs.workload import Workload

    ops = build_step_ops(spec, Workload(attention="naive", mla="naive", logits="last"), step)
    return math.fsum(float(op.flops) * op.count for op in ops
                     if op.kind in ("gemm", "attention") and (only is None or only(op)))
