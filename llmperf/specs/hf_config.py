"""Map a Hugging Face ``config.json`` (any supported family) onto :class:`ModelSpec`.

Field names and defaults follow the ``transformers`` configuration classes of each family
(LlamaConfig, MistralConfig, MixtralConfig, Qwen2/Qwen3/Qwen3MoeConfig, DeepseekV2/V3Config,
Gemma2/Gemma3TextConfig, Phi3Config, GPT2Config, OPTConfig, FalconConfig). Keys that do not
change cost (token ids, eps, rope scaling, dropout ...) are ignored and recorded in
``ModelSpec.ignored_keys``; required keys that are missing are an error naming them.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmperf.errors import SpecError, suggest
from llmperf.specs.model import ModelSpec

# Every key read by :func:`model_spec_from_hf` below (any family).
USED_KEYS = frozenset("""
architectures model_type text_config hidden_size num_hidden_layers num_attention_heads
num_key_value_heads head_dim vocab_size max_position_embeddings intermediate_size hidden_act
hidden_activation attention_bias mlp_bias tie_word_embeddings sliding_window use_sliding_window
max_window_layers layer_types sliding_window_pattern num_local_experts num_experts n_routed_experts
num_experts_per_tok moe_intermediate_size n_shared_experts shared_expert_intermediate_size
first_k_dense_replace moe_layer_freq decoder_sparse_step mlp_only_layers topk_method q_lora_rank
kv_lora_rank qk_nope_head_dim qk_rope_head_dim v_head_dim n_embd n_layer n_head n_positions n_inner
activation_function ffn_dim enable_bias word_embed_proj_dim do_layer_norm_before multi_query
parallel_attn bias new_decoder_architecture num_kv_heads ffn_hidden_size num_ln_in_parallel_attn
alibi
""".split())

# Keys known not to change FLOPs, bytes or parameter counts; bundled YAMLs may carry them.
HARMLESS_KEYS = frozenset("""
rope_theta rope_scaling rope_parameters rms_norm_eps layer_norm_eps layer_norm_epsilon
initializer_range torch_dtype dtype transformers_version bos_token_id eos_token_id pad_token_id
use_cache attention_dropout hidden_dropout dropout resid_pdrop embd_pdrop attn_pdrop
pretraining_tp query_pre_attn_scalar attn_logit_softcapping final_logit_softcapping
rope_local_base_freq norm_topk_prob routed_scaling_factor scoring_func n_group topk_group
num_nextn_predict_layers output_router_logits router_aux_loss_coef router_jitter_noise
original_max_position_embeddings partial_rotary_factor _name_or_path quantization_config
ep_size aux_loss_alpha seq_aux
""".split())


_INT_KEYS = frozenset("""
hidden_size num_hidden_layers num_attention_heads num_key_value_heads head_dim vocab_size
max_position_embeddings intermediate_size sliding_window max_window_layers sliding_window_pattern
num_local_experts num_experts n_routed_experts num_experts_per_tok moe_intermediate_size
n_shared_experts shared_expert_intermediate_size first_k_dense_replace moe_layer_freq
decoder_sparse_step q_lora_rank kv_lora_rank qk_nope_head_dim qk_rope_head_dim v_head_dim n_embd
n_layer n_head n_positions n_inner ffn_dim word_embed_proj_dim num_kv_heads ffn_hidden_size
num_ln_in_parallel_attn
""".split())
_BOOL_KEYS = frozenset("""attention_bias mlp_bias tie_word_embeddings use_sliding_window
enable_bias do_layer_norm_before multi_query parallel_attn bias new_decoder_architecture alibi
""".split())
_STR_KEYS = frozenset("model_type hidden_act hidden_activation activation_function topk_method".split())
_LIST_KEYS = frozenset("architectures layer_types mlp_only_layers".split())
_POSITIVE = frozenset("""hidden_size num_hidden_layers num_attention_heads num_key_value_heads
head_dim vocab_size max_position_embeddings sliding_window_pattern num_experts_per_tok
moe_layer_freq decoder_sparse_step n_embd n_layer n_head n_positions num_kv_heads""".split())


def _clean(cfg: dict, where: str) -> dict:
    """Drop nulls (HF writes ``null`` for "not set") and type-check every key we read."""
    out = {}
    for key, value in cfg.items():
        if value is None:
            continue
        if key in _INT_KEYS:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"{where}: field '{key}' must be a whole number, got {value!r}")
            if value > 2**40:
                raise SpecError(f"{where}: field '{key}' = {value:.3g} is implausibly large")
            if value < 0 or (value == 0 and key in _POSITIVE):
                raise SpecError(f"{where}: field '{key}' must be "
                                f"{'positive' if key in _POSITIVE else 'non-negative'}, got {value}")
        elif key in _BOOL_KEYS and not isinstance(value, bool):
            raise SpecError(f"{where}: field '{key}' must be true or false, got {value!r}")
        elif key in _STR_KEYS and not isinstance(value, str):
            raise SpecError(f"{where}: field '{key}' must be a string, got {value!r}")
        elif key in _LIST_KEYS and not isinstance(value, list):
            raise SpecError(f"{where}: field '{key}' must be a list, got {value!r}")
        elif key == "mlp_only_layers" and not all(isinstance(i, int) for i in value):
            raise SpecError(f"{where}: field 'mlp_only_layers' must list layer indices")
        out[key] = value
    return out


def _need(cfg: dict, keys, where: str):
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise SpecError(f"{where}: missing required config key(s): {', '.join(missing)}")


def _int(cfg: dict, key: str, where: str, default=None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise SpecError(f"{where}: field '{key}' must be a whole number, got {value!r}")
    if value < 0:
        raise SpecError(f"{where}: field '{key}' must not be negative, got {value}")
    return value


def check_yaml_keys(cfg: dict, where: str) -> None:
    """Bundled/user YAML specs are strict: an unknown key is a misspelling until proven otherwise."""
    allowed = USED_KEYS | HARMLESS_KEYS | {"llmperf"}
    for key in cfg:
        if key not in allowed:
            raise SpecError(
                f"{where}: unknown field '{key}'{suggest(key, allowed)}; write Hugging Face "
                f"config.json field names (see llmperf/specs/hf_config.py USED_KEYS)")


def _flatten_text_config(cfg: dict) -> dict:
    """Multimodal configs (Gemma-3) keep the language model under ``text_config``."""
    if isinstance(cfg.get("text_config"), dict):
        inner = dict(cfg["text_config"])
        inner.setdefault("architectures", cfg.get("architectures"))
        inner.setdefault("model_type", (cfg.get("model_type", "") + "_text").lstrip("_"))
        for key in ("tie_word_embeddings",):
            if key in cfg and key not in inner:
                inner[key] = cfg[key]
        return inner
    return cfg


def _layer_types(cfg: dict, family: str, n_layers: int, where: str):
    """Per-layer 'full' or 'sliding' and the window, following each family's config class."""
    window = cfg.get("sliding_window")
    if "layer_types" in cfg and cfg["layer_types"]:
        types = tuple("sliding" if "sliding" in str(t) else "full" for t in cfg["layer_types"])
        if len(types) != n_layers:
            raise SpecError(f"{where}: layer_types has {len(types)} entries, expected {n_layers}")
        return types, (window if "sliding" in types else None)
    if family == "gemma2":
        window = window or 4096  # Gemma2Config default
        return tuple("sliding" if (i + 1) % 2 else "full" for i in range(n_layers)), window
    if family == "gemma3_text":
        window = window or 4096  # Gemma3TextConfig default
        pattern = cfg.get("sliding_window_pattern", 6)
        return tuple("sliding" if (i + 1) % pattern else "full" for i in range(n_layers)), window
    if family in ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe"):
        if not cfg.get("use_sliding_window", False) or not window:
            return ("full",) * n_layers, None
        start = cfg.get("max_window_layers", n_layers)
        return tuple("sliding" if i >= start else "full" for i in range(n_layers)), window
    if window:  # Mistral, Phi-3, Mixtral with a window: every layer slides
        return ("sliding",) * n_layers, window
    return ("full",) * n_layers, None


def model_spec_from_hf(raw: dict, name: str, where: str, strict: bool = False,
                       meta: dict | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from a config.json-style mapping.

    ``strict`` (bundled/user YAML): unknown keys are errors. Otherwise (config.json) they are
    ignored and listed in ``ignored_keys``.
    """
    if strict:
        check_yaml_keys(raw, where)
    cfg = _flatten_text_config({k: v for k, v in raw.items() if k != "llmperf"})
    if "text_config" in raw and not isinstance(raw["text_config"], dict):
        raise SpecError(f"{where}: field 'text_config' must be a mapping")
    cfg = _clean(cfg, where)
    family = str(cfg.get("model_type") or "llama")
    arch = (cfg.get("architectures") or [family])[0]
    assumptions: list[str] = []
    ignored = tuple(sorted(k for k in cfg if k not in USED_KEYS))

    if family == "gpt2":
        _need(cfg, ["n_embd", "n_layer", "n_head", "vocab_size"], where)
        h = _int(cfg, "n_embd", where)
        common = dict(
            num_layers=_int(cfg, "n_layer", where), hidden_size=h,
            num_attention_heads=_int(cfg, "n_head", where),
            num_kv_heads=_int(cfg, "n_head", where), vocab_size=_int(cfg, "vocab_size", where),
            max_position_embeddings=_int(cfg, "n_positions", where, 1024),
            intermediate_size=cfg.get("n_inner") or 4 * h, gated_mlp=False,
            hidden_act=cfg.get("activation_function", "gelu_new"), mlp_bias=True, qkv_bias=True,
            o_bias=True, fused_qkv=True, norm="layernorm",
            learned_position_embeddings=_int(cfg, "n_positions", where, 1024),
            tie_word_embeddings=cfg.get("tie_word_embeddings", True))
    elif family == "opt":
        _need(cfg, ["hidden_size", "num_hidden_layers", "num_attention_heads", "ffn_dim",
                    "vocab_size"], where)
        if cfg.get("word_embed_proj_dim", cfg["hidden_size"]) != cfg["hidden_size"]:
            raise SpecError(f"{where}: OPT with word_embed_proj_dim != hidden_size (project_in/out)"
                            " is not supported yet")
        bias = cfg.get("enable_bias", True)
        max_pos = _int(cfg, "max_position_embeddings", where, 2048)
        common = dict(
            num_layers=_int(cfg, "num_hidden_layers", where), hidden_size=cfg["hidden_size"],
            num_attention_heads=cfg["num_attention_heads"], num_kv_heads=cfg["num_attention_heads"],
            vocab_size=cfg["vocab_size"], max_position_embeddings=max_pos,
            intermediate_size=_int(cfg, "ffn_dim", where), gated_mlp=False,
            hidden_act=cfg.get("activation_function", "relu"), mlp_bias=bias, qkv_bias=bias,
            o_bias=bias, norm="layernorm", learned_position_embeddings=max_pos + 2,  # OPT offset 2
            tie_word_embeddings=cfg.get("tie_word_embeddings", True))
    elif family == "falcon":
        _need(cfg, ["hidden_size", "num_hidden_layers", "num_attention_heads"], where)
        h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
        new_arch = cfg.get("new_decoder_architecture", False)
        if cfg.get("alibi"):
            assumptions.append("ALiBi bias cost not modelled (negligible elementwise)")
        nkv = cfg.get("num_kv_heads", nh) if new_arch else (1 if cfg.get("multi_query", True) else nh)
        parallel = cfg.get("parallel_attn", True)
        norms = (cfg.get("num_ln_in_parallel_attn") or 2) if new_arch else (1 if parallel else 2)
        common = dict(
            num_layers=cfg["num_hidden_layers"], hidden_size=h, num_attention_heads=nh,
            num_kv_heads=nkv, vocab_size=_int(cfg, "vocab_size", where, 65024),
            max_position_embeddings=_int(cfg, "max_position_embeddings", where, 2048),
            intermediate_size=cfg.get("ffn_hidden_size") or 4 * h, gated_mlp=False,
            hidden_act="gelu", mlp_bias=cfg.get("bias", False), qkv_bias=cfg.get("bias", False),
            o_bias=cfg.get("bias", False), fused_qkv=True, norm="layernorm",
            norms_per_layer=norms, parallel_attention=parallel or new_arch,
            tie_word_embeddings=cfg.get("tie_word_embeddings", True))
    else:
        common = _llama_like(cfg, family, where, assumptions)

    n_layers = common["num_layers"]
    nh = common["num_attention_heads"]
    head_dim = cfg.get("head_dim") or common["hidden_size"] // nh
    if family not in ("gpt2", "opt", "falcon") and common["hidden_size"] % nh and not cfg.get("head_dim"):
        raise SpecError(f"{where}: hidden_size is not a multiple of num_attention_heads; give head_dim")
    common.setdefault("head_dim", head_dim)
    common.setdefault("v_head_dim", common["head_dim"])
    types, window = _layer_types(cfg, family, n_layers, where)
    common.setdefault("moe_layers", (False,) * n_layers)
    meta = meta or {}
    try:
        return ModelSpec(
            name=name, architecture=str(arch), model_type=family, layer_types=types,
            sliding_window=window, source=where, ignored_keys=ignored,
            assumptions=tuple(assumptions),
            official_total_params=meta.get("official_total_params"),
            official_active_params=meta.get("official_active_params"), **common)
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        msg = str(exc).split("\n")
        detail = msg[2].strip() if len(msg) > 2 else msg[0]
        raise SpecError(f"{where}: {detail.removeprefix('Value error, ')}") from None


def _llama_like(cfg: dict, family: str, where: str, assumptions: list) -> dict:
    """Llama, Mistral, Mixtral, Qwen2/3(-MoE), DeepSeek-V2/V3, Gemma-2/3, Phi-3 and look-alikes."""
    known = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "qwen2_moe",
             "deepseek_v2", "deepseek_v3", "gemma", "gemma2", "gemma3_text", "phi3"}
    if family not in known:
        assumptions.append(f"model_type '{family}' read as a Llama-style decoder")
    defaults = {"gemma3_text": {"vocab_size": 262208, "max_position_embeddings": 131072}}
    for key, value in defaults.get(family, {}).items():
        if cfg.get(key) is None:
            cfg = {**cfg, key: value}
            assumptions.append(f"{key}={value} from the transformers config default")
    moe_family = family in ("qwen3_moe", "qwen2_moe")
    required = ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                "max_position_embeddings"]
    if not moe_family:
        required.append("intermediate_size")
    _need(cfg, required, where)
    nh, n_layers = cfg["num_attention_heads"], cfg["num_hidden_layers"]
    act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "silu"
    out = dict(
        num_layers=_int(cfg, "num_hidden_layers", where), hidden_size=_int(cfg, "hidden_size", where),
        num_attention_heads=_int(cfg, "num_attention_heads", where),
        num_kv_heads=_int(cfg, "num_key_value_heads", where, None) if cfg.get("num_key_value_heads") else nh,
        vocab_size=_int(cfg, "vocab_size", where),
        max_position_embeddings=_int(cfg, "max_position_embeddings", where),
        intermediate_size=_int(cfg, "intermediate_size", where, 0), hidden_act=str(act),
        mlp_bias=bool(cfg.get("mlp_bias", False)),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", family.startswith("gemma"))))
    bias = bool(cfg.get("attention_bias", False))
    if family in ("qwen2", "qwen2_moe"):
        out.update(qkv_bias=True, o_bias=False)  # Qwen2 attention: q/k/v bias always, o without
    else:
        out.update(qkv_bias=bias, o_bias=bias)
    if family in ("qwen3", "qwen3_moe", "gemma3_text"):
        out["qk_norm"] = True
    if family in ("gemma2", "gemma3_text"):
        out["norms_per_layer"] = 4  # input, post-attention, pre-FFN, post-FFN RMSNorms
    if family.startswith("gemma"):
        out["scale_embeddings"] = True
    if family == "phi3":
        out.update(fused_qkv=True, fused_gate_up=True)

    # Mixture of experts.
    n_experts = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts") or 0
    if n_experts:
        _need(cfg, ["num_experts_per_tok"], where)
        width = cfg.get("moe_intermediate_size") or cfg.get("intermediate_size")
        if family.startswith("deepseek"):
            first_dense, freq = cfg.get("first_k_dense_replace", 0), cfg.get("moe_layer_freq", 1)
            moe = tuple(i >= first_dense and i % freq == 0 for i in range(n_layers))
            shared = (cfg.get("n_shared_experts") or 0) * cfg["moe_intermediate_size"]
            out["router_score_bias"] = cfg.get("topk_method") == "noaux_tc"
        elif moe_family:
            step, dense_only = cfg.get("decoder_sparse_step", 1), set(cfg.get("mlp_only_layers") or [])
            moe = tuple(i not in dense_only and (i + 1) % step == 0 for i in range(n_layers))
            shared = cfg.get("shared_expert_intermediate_size") or 0
            out["shared_expert_gate"] = bool(shared)
        else:  # Mixtral: every layer, expert width = intermediate_size
            moe = (True,) * n_layers
            shared = 0
        out.update(num_experts=int(n_experts), experts_per_token=int(cfg["num_experts_per_tok"]),
                   moe_intermediate_size=int(width), shared_expert_intermediate_size=int(shared),
                   moe_layers=moe)

    # Multi-head latent attention (DeepSeek-V2/V3).
    if cfg.get("kv_lora_rank"):
        _need(cfg, ["qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"], where)
        out.update(attention="mla", num_kv_heads=nh, q_lora_rank=cfg.get("q_lora_rank"),
                   kv_lora_rank=cfg["kv_lora_rank"], qk_nope_head_dim=cfg["qk_nope_head_dim"],
                   qk_rope_head_dim=cfg["qk_rope_head_dim"],
                   head_dim=cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"],
                   v_head_dim=cfg["v_head_dim"])
    return out


def read_config_json(path: Path) -> dict:
    """Read a config.json; a malformed file is one clear error naming it."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                        f"{exc.msg})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a JSON object of config fields")
    return data
