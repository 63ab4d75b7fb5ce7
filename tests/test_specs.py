"""Every bundled spec loads; bad specs fail with one line naming the file and the field."""

import json

import pytest
import yaml

from llmperf import bundled_hardware_names, bundled_model_names, load_hardware, load_model
from llmperf.errors import LlmperfError, SpecError, UnknownNameError
from llmperf.specs.hardware import load_hardware_file

REQUIRED_GPUS = ["v100-sxm2-32gb", "t4", "a10", "a100-sxm4-40gb", "a100-sxm4-80gb",
                 "a100-pcie-80gb", "l4", "l40s", "rtx-3090", "rtx-4090", "rtx-5090",
                 "h100-sxm5-80gb", "h100-pcie-80gb", "h100-nvl-94gb", "h200-sxm-141gb", "h20",
                 "b200", "gb200-per-gpu", "mi250x", "mi300x", "mi325x", "gaudi2", "gaudi3",
                 "tpu-v5e", "tpu-v5p", "tpu-v6e"]


def test_required_hardware_is_bundled():
    assert set(REQUIRED_GPUS) <= set(bundled_hardware_names())


@pytest.mark.parametrize("name", bundled_hardware_names())
def test_every_hardware_yaml_loads_with_sources(name):
    hw = load_hardware(name)
    assert hw.memory_capacity_bytes > 0 and hw.memory_bandwidth_bytes_per_s > 0
    assert hw.peak_flop_per_s("bf16") > 0
    assert set(hw.numeric_fields()) <= set(hw.sources)


def test_h100_values_match_the_reference_csv():
    hw = load_hardware("h100-sxm")
    assert hw.memory_capacity_bytes == 80e9
    assert hw.memory_bandwidth_bytes_per_s == 3.35e12
    assert hw.peak.bf16 == pytest.approx(989.4e12)
    assert hw.peak.fp8 == pytest.approx(1978.9e12)
    assert hw.interconnect.per_direction_bytes_per_s == 450e9  # 900 GB/s bidirectional


def test_mi250x_is_one_gcd():
    hw = load_hardware("mi250x")
    assert hw.memory_capacity_bytes == 64e9 and hw.peak.bf16 == pytest.approx(191.5e12)


def test_tpu_memory_in_gib():
    assert load_hardware("tpu-v5p").memory_capacity_bytes == 95 * 2**30


def test_names_aliases_and_suggestions():
    assert load_hardware("h100-sxm").name == "h100-sxm5-80gb"
    assert load_hardware("h200").name == "h200-sxm-141gb"
    with pytest.raises(UnknownNameError, match="ambiguous.*h100-nvl-94gb.*h100-pcie-80gb.*h100-sxm5-80gb"):
        load_hardware("h100")
    with pytest.raises(UnknownNameError, match="did you mean"):
        load_hardware("h201")
    with pytest.raises(UnknownNameError, match="did you mean.*llama-3.1-8b"):
        load_model("llama-3.1-8bb")


def test_all_25_models_are_bundled():
    import csv
    from pathlib import Path

    ref = Path(__file__).resolve().parents[2] / "shared" / "reference" / "models.csv"
    ids = ([r["id"] for r in csv.DictReader(ref.open())] if ref.exists() else [])
    assert len(bundled_model_names()) == 25
    if ids:
        assert sorted(ids) == bundled_model_names()


def _hw_yaml(tmp_path, mutate):
    data = yaml.safe_load(open("hardware/h100-sxm5-80gb.yaml"))
    mutate(data)
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_misspelled_hardware_key_names_file_field_and_suggestion(tmp_path):
    def typo(d):
        d["memory_bandwith"] = d.pop("memory_bandwidth")
    path = _hw_yaml(tmp_path, typo)
    with pytest.raises(SpecError) as err:
        load_hardware_file(path)
    msg = str(err.value)
    assert str(path) in msg and "memory_bandwith" in msg and "memory_bandwidth" in msg
    assert "\n" not in msg


def test_misspelled_nested_key(tmp_path):
    path = _hw_yaml(tmp_path, lambda d: d["peak"].update(bf61="1 TFLOP/s"))
    with pytest.raises(SpecError, match="peak.bf61.*bf16"):
        load_hardware_file(path)


def test_bare_number_needs_a_unit(tmp_path):
    path = _hw_yaml(tmp_path, lambda d: d.update(memory_capacity=80))
    with pytest.raises(SpecError, match="memory_capacity.*unit"):
        load_hardware_file(path)


def test_every_number_needs_a_source(tmp_path):
    path = _hw_yaml(tmp_path, lambda d: d["sources"].pop("peak.bf16"))
    with pytest.raises(SpecError, match="sources.*peak.bf16"):
        load_hardware_file(path)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_hardware_file(path)


@pytest.mark.parametrize("name", bundled_model_names())
def test_every_model_yaml_loads(name):
    m = load_model(name)
    assert m.num_layers == len(m.layer_types)


def _model_yaml(tmp_path, name, mutate):
    data = yaml.safe_load(open(f"model_configs/{name}.yaml"))
    mutate(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_misspelled_model_key_in_yaml(tmp_path):
    path = _model_yaml(tmp_path, "llama-3.1-8b", lambda d: d.update(hiden_size=d.pop("hidden_size")))
    with pytest.raises(SpecError, match="unknown field 'hiden_size'.*hidden_size"):
        load_model(str(path))


def write_json(tmp_path, cfg, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def test_user_config_json_ignores_harmless_keys_and_records_them(tmp_path):
    cfg = {k: v for k, v in yaml.safe_load(open("model_configs/llama-3.1-8b.yaml")).items()
           if k != "llmperf"}
    cfg.update(bos_token_id=1, some_future_flag=True)
    m = load_model(str(write_json(tmp_path, cfg)))
    assert "some_future_flag" in m.ignored_keys and "bos_token_id" in m.ignored_keys
    assert m.hidden_size == 4096


def test_missing_required_keys_are_named(tmp_path):
    path = write_json(tmp_path, {"model_type": "llama", "hidden_size": 64})
    with pytest.raises(SpecError, match="missing required config key.*num_hidden_layers"):
        load_model(str(path))


def test_malformed_config_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 4096,,}')
    with pytest.raises(SpecError, match="not valid JSON.*line 1"):
        load_model(str(path))


def test_family_field_names_from_config_json(tmp_path):
    mixtral = {"model_type": "mixtral", "hidden_size": 64, "intermediate_size": 128,
               "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
               "vocab_size": 100, "max_position_embeddings": 256, "num_local_experts": 8,
               "num_experts_per_tok": 2}
    m = load_model(str(write_json(tmp_path, mixtral, "mixtral.json")))
    assert (m.num_experts, m.experts_per_token, m.moe_intermediate_size) == (8, 2, 128)
    qwen_moe = {**mixtral, "model_type": "qwen3_moe", "num_experts": 16, "moe_intermediate_size": 32,
                "mlp_only_layers": [0], "decoder_sparse_step": 1, "head_dim": 16}
    del qwen_moe["num_local_experts"]
    m = load_model(str(write_json(tmp_path, qwen_moe, "qwen.json")))
    assert m.moe_layers == (False, True) and m.qk_norm and m.head_dim == 16
    ds = {**mixtral, "model_type": "deepseek_v3", "n_routed_experts": 8, "moe_intermediate_size": 32,
          "n_shared_experts": 1, "first_k_dense_replace": 1, "q_lora_rank": 24, "kv_lora_rank": 16,
          "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8, "topk_method": "noaux_tc"}
    del ds["num_local_experts"]
    m = load_model(str(write_json(tmp_path, ds, "ds.json")))
    assert m.attention == "mla" and m.head_dim == 12 and m.moe_layers == (False, True)
    assert m.shared_expert_intermediate_size == 32 and m.router_score_bias
    gemma3 = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
              "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6,
                              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                              "sliding_window": 32}}
    m = load_model(str(write_json(tmp_path, gemma3, "g3.json")))
    assert m.model_type == "gemma3_text" and m.vocab_size == 262208  # Gemma3TextConfig default
    assert m.layer_types == ("sliding",) * 5 + ("full",) and m.norms_per_layer == 4
    falcon = {"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "multi_query": True, "vocab_size": 100}
    m = load_model(str(write_json(tmp_path, falcon, "falcon.json")))
    assert m.num_kv_heads == 1 and m.intermediate_size == 256 and m.parallel_attention
    opt = {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "ffn_dim": 96, "vocab_size": 100, "max_position_embeddings": 128}
    m = load_model(str(write_json(tmp_path, opt, "opt.json")))
    assert m.intermediate_size == 96 and m.learned_position_embeddings == 130 and not m.gated_mlp


@pytest.mark.parametrize("cfg,match", [
    ({"num_attention_heads": 5}, "multiple of"),
    ({"hidden_size": -4}, "must be positive"),
    ({"num_hidden_layers": "many"}, "whole number"),
])
def test_inconsistent_configs(tmp_path, cfg, match):
    base = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 100, "max_position_embeddings": 256}
    base.update(cfg)
    with pytest.raises(LlmperfError, match=match):
        load_model(str(write_json(tmp_path, base)))
