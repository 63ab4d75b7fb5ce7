"""Canonical model spec: the shape facts every estimator needs, in one frozen object.

Built from a Hugging Face ``config.json`` (or a bundled YAML with the same field names) by
:mod:`llmperf.specs.hf_config`, which maps each family's field names (``num_local_experts``,
``n_routed_experts``, ``ffn_dim``, ``multi_query``, ``text_config`` ...) onto these fields.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, model_validator


class ModelSpec(BaseModel):
    """A decoder-only transformer. Counts are plain ints; per-layer facts are tuples of length L."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    architecture: str
    model_type: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    max_position_embeddings: int

    # attention
    attention: Literal["gqa", "mla"] = "gqa"  # gqa covers MHA (kv = q heads) and MQA (kv = 1)
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int            # q/k head dim (MLA: qk_nope_head_dim + qk_rope_head_dim)
    v_head_dim: int
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False    # per-head RMSNorm on q and k (Qwen3, Gemma-3)
    fused_qkv: bool = False  # one qkv GEMM in the checkpoint (Phi-3, Falcon, GPT-2)
    q_lora_rank: Optional[int] = None
    kv_lora_rank: Optional[int] = None
    qk_nope_head_dim: Optional[int] = None
    qk_rope_head_dim: Optional[int] = None
    layer_types: tuple[Literal["full", "sliding"], ...]
    sliding_window: Optional[int] = None

    # feed-forward
    intermediate_size: int   # dense FFN width (dense layers, or every layer of a dense model)
    gated_mlp: bool = True   # gate/up/down (SwiGLU, GeGLU) vs fc1/fc2
    hidden_act: str = "silu"
    mlp_bias: bool = False
    fused_gate_up: bool = False
    num_experts: int = 0     # routed experts (0: dense model)
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0  # total width of the shared expert(s), 0 if none
    shared_expert_gate: bool = False           # Qwen2-MoE sigmoid gate on the shared expert
    router_score_bias: bool = False            # DeepSeek-V3 e_score_correction_bias
    moe_layers: tuple[bool, ...]

    # norms, embeddings, head
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    norms_per_layer: int = 2
    parallel_attention: bool = False  # attention and MLP read the same normed input (Falcon)
    learned_position_embeddings: int = 0  # rows of a learned position table (OPT: max_pos + 2)
    tie_word_embeddings: bool = False
    scale_embeddings: bool = False    # Gemma multiplies embeddings by sqrt(hidden)

    # provenance
    source: str = ""
    ignored_keys: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    official_total_params: Optional[float] = None
    official_active_params: Optional[float] = None

    @model_validator(mode="after")
    def _check(self):
        positive = ["num_layers", "hidden_size", "vocab_size", "max_position_embeddings",
                    "num_attention_heads", "num_kv_heads", "head_dim", "v_head_dim"]
        bad = [f for f in positive if getattr(self, f) <= 0]
        if bad:
            raise ValueError(f"must be positive: {', '.join(bad)}")
        if self.attention == "gqa" and self.num_attention_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_kv_heads})")
        if len(self.layer_types) != self.num_layers or len(self.moe_layers) != self.num_layers:
            raise ValueError("layer_types and the MoE layer pattern must have one entry per layer")
        if "sliding" in self.layer_types and not self.sliding_window:
            raise ValueError("sliding layers need a positive sliding_window")
        if any(self.moe_layers) and not (self.num_experts and self.experts_per_token
                                         and self.moe_intermediate_size):
            raise ValueError("MoE layers need num_experts, num_experts_per_tok and the expert width")
        if self.experts_per_token > self.num_experts:
            raise ValueError("num_experts_per_tok exceeds the number of experts")
        if self.attention == "mla" and not (self.kv_lora_rank and self.qk_rope_head_dim
                                            and self.qk_nope_head_dim):
            raise ValueError("MLA needs kv_lora_rank, qk_nope_head_dim and qk_rope_head_dim")
        return self

    @property
    def is_moe(self) -> bool:
        return any(self.moe_layers)

    @property
    def q_per_kv(self) -> int:
        return self.num_attention_heads // self.num_kv_heads
