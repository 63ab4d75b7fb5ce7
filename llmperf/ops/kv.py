"""KV-cache bytes per token, in closed form, for every attention variant.

Per layer and token the cache holds K and V for each KV head (MHA: every head; GQA: the
``num_key_value_heads`` groups, Ainslie et al. arXiv:2305.13245; MQA: one head, Shazeer
arXiv:1911.02150), or for MLA with the absorbed kernel one latent vector of
``kv_lora_rank + qk_rope_head_dim`` shared by all heads (DeepSeek-V2, arXiv:2405.04434 §2.1).
Sliding-window layers keep at most ``sliding_window`` tokens (a ring buffer, as vLLM and HF's
sliding-window caches do).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from llmperf.dtypes import NumberFormat
from llmperf.named_inputs import accepts_names
from llmperf.specs.model import ModelSpec


def kv_bytes_per_token_per_layer(model: ModelSpec, kvfmt: NumberFormat, mla: str = "absorbed",
                                 kv_heads: int | None = None) -> float:
    """Bytes one token adds to one layer's cache (one device's share when ``kv_heads`` is given)."""
    if model.attention == "mla":
        if mla == "absorbed":
            return kvfmt.bytes_for(1, model.kv_lora_rank + model.qk_rope_head_dim)
        heads = model.num_attention_heads if kv_heads is None else kv_heads
        return kvfmt.bytes_for(heads, model.head_dim) + kvfmt.bytes_for(heads, model.v_head_dim)
    heads = model.num_kv_heads if kv_heads is None else kv_heads
    return kvfmt.bytes_for(heads, model.head_dim) + kvfmt.bytes_for(heads, model.v_head_dim)


def kv_cache_bytes(model: ModelSpec, kvfmt: NumberFormat, context_len, batch=1,
                   mla: str = "absorbed", kv_heads: int | None = None,
                   layer_types: Sequence[str] | None = None):
    """Cache bytes for ``batch`` sequences of ``context_len`` tokens (arrays broadcast).

    layer_types: the layers whose cache to count (a pipeline stage's); default every layer."""
    ctx = np.asarray(context_len, dtype=float)
    per_layer = kv_bytes_per_token_per_layer(model, kvfmt, mla, kv_heads)
    layer_types = model.layer_types if layer_types is None else list(layer_types)
    full = layer_types.count("full")
    sliding = layer_types.count("sliding")
    tokens_sliding = np.minimum(ctx, model.sliding_window) if sliding else 0.0
    return np.asarray(batch, dtype=float) * per_layer * (full * ctx + sliding * tokens_sliding)


@accepts_names
def kv_bytes_per_token(model: ModelSpec, kvfmt: NumberFormat, mla: str = "absorbed") -> float:
    """Bytes per token over all layers, counting every layer (the no-window upper bound)."""
    return model.num_layers * kv_bytes_per_token_per_layer(model, kvfmt, mla)
