"""Independent cross-checks of llmperf against Hugging Face transformers and official counts.

DESIGN.md, "Tests, in order of value", item 1. For every bundled model (25) the same config
dict is handed to transformers, which allocates the network's parameters and runs its own
forward pass; ``FlopCounterMode`` counts the matmul FLOPs that pass executes. None of that
shares code with llmperf's op builder, so agreement means both describe the same network.

Helpers that build the transformers models are in ``tests/hf_helpers.py``. Models are built on
the meta device (shapes only), so the whole file runs in well under a minute on 2 CPU cores.

Execution choices that make transformers run what llmperf's ``Workload(attention="naive",
mla="naive", logits="last")`` describes:

* ``attn_implementation="eager"``: the explicit ``Q K^T`` and ``P V`` matmuls over the full,
  unmasked q x kv score matrix (the mask is added, not skipped).
* ``logits_to_keep=1``: the lm_head runs on the last token of each sequence only.
* MoE experts: transformers 5 stores experts as 3-D tensors and by default runs them through
  ``torch._grouped_mm`` (``experts_implementation="grouped_mm"``), for which
  ``torch.utils.flop_counter`` has no formula: the expert FLOPs are silently not counted
  (shown by ``test_default_grouped_mm_experts_are_invisible_to_flopcounter``). The
  per-expert loop (``"eager"``: one ``F.linear`` per expert hit, on the tokens routed to it)
  and ``"batched_mm"`` (one ``bmm`` over all tokens x top-k pairs) both perform exactly
  tokens x top-k expert MLPs; the loop needs real data (``nonzero``) so it runs on tiny CPU
  models, ``batched_mm`` runs on meta for the full-size models; the tests show they count the
  same FLOPs.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers", minversion="5.0")

try:
    import hf_helpers as H  # tests/ on sys.path (pytest rootdir-less "prepend" import mode)
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests import hf_helpers as H

from llmperf.catalog import bundled_model_names, load_model, model_meta
from llmperf.estimators.params import parameter_counts
from llmperf.ops.kv import kv_cache_bytes
from llmperf.specs.hf_config import USED_KEYS, model_spec_from_hf
from llmperf.specs.workload import Step, Workload

MODELS = bundled_model_names()
EXACT = dict(rel=1e-12, abs=0)  # integer-valued counts well below 2**53: equality


def test_all_25_bundled_models_are_covered():
    """Guards the parametrization: the brief covers the 25 bundled models."""
    assert len(MODELS) == 25


# ---------------------------------------------------------------------------------------------
# The config means the same thing to transformers and to llmperf
# ---------------------------------------------------------------------------------------------

# transformers normalizes a few fields on purpose; each entry is (model_type, key): why.
_NORMALIZED = {
    ("qwen2", "sliding_window"): "Qwen2Config sets sliding_window=None when use_sliding_window "
                                 "is false (llmperf: all layers full, checked by the layer test)",
}


@pytest.mark.parametrize("name", MODELS)
def test_transformers_reads_every_shape_field(name):
    """Every field llmperf reads (``USED_KEYS``) is also read, with the same value, by the
    transformers config class. Without this the parameter/FLOP checks below could pass while
    transformers silently used a default for a field (e.g. Falcon ``ffn_hidden_size``)."""
    raw = H.bundled_hf_dict(name)
    cfg = H.hf_config(raw)
    for key in sorted(set(raw) & USED_KEYS - {"model_type", "architectures", "text_config"}):
        if (raw["model_type"], key) in _NORMALIZED:
            continue
        assert getattr(cfg, key, "<missing>") == raw[key], f"{name}: transformers {key}"


@pytest.mark.parametrize("name", MODELS)
def test_layer_pattern_equals_transformers(name):
    """Sliding/full attention per layer and the window equal what the transformers config
    class derives (its own defaults: Gemma-2 alternation, Gemma-3 5 local : 1 global,
    Qwen2 use_sliding_window, Mistral/Phi-3 window on every layer)."""
    cfg = H.hf_config(H.bundled_hf_dict(name))
    spec = load_model(name)
    assert spec.layer_types == H.hf_layer_types(cfg)
    if "sliding" in spec.layer_types:
        assert spec.sliding_window == cfg.sliding_window


# ---------------------------------------------------------------------------------------------
# Parameter counts vs the transformers model
# ---------------------------------------------------------------------------------------------

def _deepseek_v3_score_bias(cfg, model) -> int:
    """DeepSeek-V3 (topk_method noaux_tc) routers hold ``e_score_correction_bias``, one value per
    routed expert per MoE layer. It is in the released checkpoint and routing adds it to the
    scores, so llmperf counts it as a router parameter; transformers registers it as an
    ``nn.Buffer``, which ``parameters()`` does not yield. Closed form:
    n_routed_experts x (num_hidden_layers - first_k_dense_replace) = 256 x 58 = 14,848."""
    assert cfg.moe_layer_freq == 1
    closed_form = cfg.n_routed_experts * (cfg.num_hidden_layers - cfg.first_k_dense_replace)
    in_hf_buffers = sum(b.numel() for n, b in model.named_buffers()
                        if n.endswith("e_score_correction_bias"))
    assert in_hf_buffers == closed_form
    return closed_form


# name -> function(cfg, hf_model) giving llmperf params_total - transformers parameters().
_PARAM_DIFFERENCE = {"deepseek-v3": _deepseek_v3_score_bias}


@pytest.mark.parametrize("name", MODELS)
def test_params_total_equals_transformers_meta_model(name):
    """llmperf's params_total (summed from the ops of its builder) equals the number of
    elements of the ``nn.Parameter`` tensors transformers allocates for the same config on the
    meta device. Independent: transformers' modeling code, not llmperf's formulas, decides every
    weight shape (q/k/v/o, MLA low-rank projections, experts, norms, biases, tied lm_head,
    learned positions). The model class must be the YAML's ``architectures[0]``."""
    raw = H.bundled_hf_dict(name)
    cfg = H.hf_config(raw)
    model = H.bundled_meta_model(name)
    assert type(model).__name__ == raw["architectures"][0]
    ours = parameter_counts(load_model(name))["params_total"]
    explained = _PARAM_DIFFERENCE.get(name, lambda c, m: 0)(cfg, model)
    assert ours - H.hf_param_count(model) == explained


# ---------------------------------------------------------------------------------------------
# Parameter counts vs the official (published) counts
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_params_total_close_to_official(name):
    """params_total vs the count the model's authors publish (model card / paper, cited in the
    YAML ``sources``). Independent of transformers and of llmperf. 'precise' figures: within
    1%. 'nominal' ones are size names (Llama-2 "7B" = 6.74B, Mistral "7B" = 7.25B, Gemma-2
    "9B" = 9.24B): within 5%, which still catches a wrong layer count or width."""
    meta = model_meta(name)
    ours = parameter_counts(load_model(name))["params_total"]
    tol = 0.01 if meta["official_params_precision"] == "precise" else 0.05
    assert ours == pytest.approx(meta["official_total_params"], rel=tol)


def _vocab_times_hidden(name):
    spec = load_model(name)
    return spec.vocab_size * spec.hidden_size


# Official active counts that are not within 1%, each with what makes the difference. The
# official figure is stated to 2 significant digits and is *truncated* (floored) at that digit:
# (quantity compared, unit of the last stated digit, why).
_ACTIVE_EXCEPTIONS = {
    "qwen3-30b-a3b": (lambda n, active: active, 1e8,
                      "3.353B computed; Qwen's card says 3.3B (2 significant digits, truncated)"),
    "deepseek-v3": (lambda n, active: active, 1e9,
                    "37.55B computed; DeepSeek says 37B (2 significant digits, truncated)"),
    # DeepSeek-V2-Lite: 2.661B computed vs 2.4B official. The gap (0.261B) is the input
    # embedding, 102400 x 2048 = 0.2097B (a row lookup per token, not a matmul, so DeepSeek does
    # not count it as activated), plus 0.051B that lies in the truncated digit:
    # 2.661B - 0.2097B = 2.4514B -> "2.4B". (DeepSeek-V3's 37B does include its embedding:
    # 36.63B without it would truncate to 36B; the two reports account differently.)
    "deepseek-v2-lite": (lambda n, active: active - _vocab_times_hidden(n), 1e8,
                         "official active count excludes the input embedding (vocab x hidden)"),
}


@pytest.mark.parametrize("name", [n for n in MODELS if model_meta(n).get("official_active_params")])
def test_params_active_close_to_official(name):
    """params_active (per token: top-k routed + shared experts + everything dense) vs the
    published activated-parameter count of each MoE model: within 1%, or, where the published
    figure is too coarse for 1%, the documented closed form truncated to the published digits
    equals the published figure."""
    meta = model_meta(name)
    assert meta["official_params_precision"] == "precise"
    official = meta["official_active_params"]
    active = parameter_counts(load_model(name))["params_active"]
    if name not in _ACTIVE_EXCEPTIONS:
        assert active == pytest.approx(official, rel=0.01)
        return
    quantity, unit, _why = _ACTIVE_EXCEPTIONS[name]
    value = quantity(name, active)
    assert active != pytest.approx(official, rel=0.01)  # stale exception otherwise: remove it
    assert math.floor(value / unit) * unit == pytest.approx(official, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# FLOPs vs FlopCounterMode on the full-size transformers models (meta device)
# ---------------------------------------------------------------------------------------------

def _mla_decode_reexpansion(cfg, batch, context) -> int:
    """transformers 5 DeepSeek-V2/V3 attention caches the *latent* (kv_a_layernorm output and
    k_pe) and every step re-runs ``kv_b_proj`` (kv_lora_rank -> heads x (nope + v)) over all
    cached tokens (``DeepseekV2Attention.expand_kv``). llmperf's ``mla="naive"`` caches per-head
    K/V (DeepSeek's reference ``attn_impl="naive"``) and runs kv_b_proj on the new token only.
    Extra FLOPs in transformers per decode step, closed form:
    layers x 2 x batch x context x kv_lora_rank x heads x (qk_nope_head_dim + v_head_dim)."""
    return (cfg.num_hidden_layers * 2 * batch * context * cfg.kv_lora_rank
            * cfg.num_attention_heads * (cfg.qk_nope_head_dim + cfg.v_head_dim))


def _decode_difference(cfg, batch=H.BATCH, context=H.DECODE_CONTEXT) -> int:
    """transformers - llmperf FLOPs of a decode step that is explained (0 unless MLA)."""
    if getattr(cfg, "kv_lora_rank", None):
        return _mla_decode_reexpansion(cfg, batch, context)
    return 0


@pytest.mark.parametrize("name", MODELS)
def test_prefill_flops_equal_flopcounter(name):
    """Matmul FLOPs of a prefill step (batch 2 x 64 tokens): llmperf's gemm + attention ops vs
    what FlopCounterMode counts while transformers runs the same config (eager attention,
    lm_head on the last token; MoE experts via batched_mm, see the module docstring).
    Independent: FlopCounterMode multiplies the shapes of every aten mm/bmm/addmm that
    transformers' modeling code actually issues. Required within 1%; they are equal."""
    model = H.bundled_meta_model(name)
    ours = H.llmperf_matmul_flops(load_model(name), Step.prefill(H.BATCH, H.PROMPT))
    assert ours == pytest.approx(H.hf_prefill_flops(model), **EXACT)


@pytest.mark.parametrize("name", MODELS)
def test_decode_flops_equal_flopcounter(name):
    """Matmul FLOPs of a decode step (batch 2, 1 new token on 63 tokens cached by a real
    transformers prefill through past_key_values) vs FlopCounterMode. Equal, except for MLA
    models, where transformers re-expands the cached latent every step; that difference is
    asserted in closed form (``_mla_decode_reexpansion``)."""
    model = H.bundled_meta_model(name)
    ours = H.llmperf_matmul_flops(load_model(name), Step.decode(H.BATCH, H.DECODE_CONTEXT))
    hf = H.hf_decode_flops(model)
    assert hf - ours == pytest.approx(_decode_difference(model.config), **EXACT)
    if not getattr(model.config, "kv_lora_rank", None):
        assert ours == pytest.approx(hf, rel=0.01)  # the brief's 1%, a fortiori


@pytest.mark.parametrize("name", MODELS)
def test_kv_cache_bytes_equal_transformers_cache(name):
    """KV-cache bytes after a 63-token prefill of 2 sequences: llmperf's ``kv_cache_bytes``
    (bf16) vs the elements transformers' DynamicCache actually holds x 2 bytes. For MLA,
    transformers 5 caches the latent (kv_lora_rank + qk_rope_head_dim per token, one "head"),
    which is llmperf's ``mla="absorbed"`` cache, not ``"naive"``. (Sliding windows are longer
    than 63 tokens in every bundled model, so every cached token is kept.)"""
    model = H.bundled_meta_model(name)
    spec = load_model(name)
    mla = "absorbed" if spec.attention == "mla" else "naive"
    ours = kv_cache_bytes(spec, Workload(kv_cache="bf16").kv_format, H.DECODE_CONTEXT,
                          batch=H.BATCH, mla=mla)
    hf = 2 * H.hf_cache_elements(H.hf_prefill_cache(model))
    assert float(ours) == pytest.approx(hf, **EXACT)


# ---------------------------------------------------------------------------------------------
# Tiny models of the same structure with real weights: real routing, windows shorter than
# the sequence
# ---------------------------------------------------------------------------------------------

def _tiny_spec(name):
    return model_spec_from_hf(H.TINY[name], name=name, where="tests/hf_helpers.py TINY",
                              strict=False)


MOE_TINY = ["mixtral-tiny", "qwen3-moe-tiny", "deepseek-v2-lite-tiny", "deepseek-v3-tiny"]


@pytest.mark.parametrize("name", MOE_TINY)
def test_tiny_moe_params_equal_transformers(name):
    """Same check as for the bundled models, on the tiny configs the routed-FLOP tests use
    (the llmperf spec is built from the SAME dict)."""
    model = H.tiny_model(name)
    diff = parameter_counts(_tiny_spec(name))["params_total"] - H.hf_param_count(model)
    assert diff == (_deepseek_v3_score_bias(model.config, model) if name == "deepseek-v3-tiny"
                    else 0)


@pytest.mark.parametrize("name", MOE_TINY)
def test_tiny_moe_flops_with_real_routing(name):
    """MoE FLOPs with real, data-dependent top-k routing (random weights on CPU) through
    transformers' per-expert loop (``experts_implementation="eager"``): FlopCounterMode sees one
    F.linear per expert hit, with however many tokens were routed to it. The total is
    tokens x top-k expert MLPs whatever the routing, which is what llmperf counts. Prefill and
    decode; MLA decode differs by the closed-form latent re-expansion."""
    model = H.tiny_model(name, "eager")
    spec = _tiny_spec(name)
    prefill = H.llmperf_matmul_flops(spec, Step.prefill(H.BATCH, H.PROMPT))
    assert prefill == pytest.approx(H.hf_prefill_flops(model), **EXACT)
    decode = H.llmperf_matmul_flops(spec, Step.decode(H.BATCH, H.DECODE_CONTEXT))
    assert H.hf_decode_flops(model) - decode == pytest.approx(_decode_difference(model.config),
                                                              **EXACT)


@pytest.mark.parametrize("name", MOE_TINY)
def test_batched_mm_experts_count_the_same_flops_as_the_loop(name):
    """The full-size MoE FLOP tests run transformers' ``batched_mm`` experts on meta (the loop
    cannot run there: its shapes depend on routing). On the same weights and inputs, both
    implementations give the same FlopCounterMode total."""
    loop, batched = H.tiny_model(name, "eager"), H.tiny_model(name, "batched_mm")
    assert H.hf_prefill_flops(batched) == H.hf_prefill_flops(loop)
    assert H.hf_decode_flops(batched) == H.hf_decode_flops(loop)


def test_default_grouped_mm_experts_are_invisible_to_flopcounter():
    """Why the MoE tests pick an experts implementation: transformers' default
    (``grouped_mm``, ``torch._grouped_mm``) has no entry in torch.utils.flop_counter, so
    FlopCounterMode counts everything except the routed experts. Shown on the tiny Mixtral:
    the default count equals llmperf's total minus llmperf's ``experts_*`` GEMMs. (Should a
    future torch count grouped_mm, the totals are simply equal.)"""
    model = H.tiny_model("mixtral-tiny", None)
    assert model.config._experts_implementation == "grouped_mm"
    spec = _tiny_spec("mixtral-tiny")
    step = Step.prefill(H.BATCH, H.PROMPT)
    total = H.llmperf_matmul_flops(spec, step)
    experts = H.llmperf_matmul_flops(spec, step, only=lambda op: op.name.startswith("experts_"))
    assert experts > 0
    assert H.hf_prefill_flops(model) in (pytest.approx(total - experts, **EXACT),
                                         pytest.approx(total, **EXACT))


SWA_TINY = ["mistral-swa-tiny", "gemma2-swa-tiny"]


@pytest.mark.parametrize("name", SWA_TINY)
def test_sliding_window_prefill_longer_than_window(name):
    """Prefill of 64 tokens with a 16-token window: transformers' eager attention still
    multiplies the full 64 x 64 score matrix (the window is a mask), as llmperf's naive
    attention counts."""
    model = H.tiny_model(name)
    ours = H.llmperf_matmul_flops(_tiny_spec(name), Step.prefill(H.BATCH, H.PROMPT))
    assert ours == pytest.approx(H.hf_prefill_flops(model), **EXACT)


@pytest.mark.parametrize("name", SWA_TINY)
def test_sliding_window_decode_longer_than_window(name):
    """Decode at context 63 with a 16-token window: transformers keeps only the window in its
    cache, so eager attention in sliding layers multiplies 1 x 16 scores, not 1 x 64. llmperf's
    naive attention should count q_len x min(kv_len, window + q_len - 1) pairs there."""
    model = H.tiny_model(name)
    ours = H.llmperf_matmul_flops(_tiny_spec(name), Step.decode(H.BATCH, H.DECODE_CONTEXT))
    assert ours == pytest.approx(H.hf_decode_flops(model), **EXACT)
