"""Fuzzing spec loading and workloads: bad input gives LlmperfError, never another exception."""

import json

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from llmperf import Workload, estimate, load_hardware, load_model
from llmperf.errors import LlmperfError
from llmperf.specs.hardware import load_hardware_file

BASE_MODEL = {k: v for k, v in yaml.safe_load(open("model_configs/qwen3-30b-a3b.yaml")).items()
              if k != "llmperf"}
BASE_HW = yaml.safe_load(open("hardware/h100-sxm5-80gb.yaml"))
values = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=12), st.lists(st.integers(0, 3), max_size=3))
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(st.sampled_from(sorted(BASE_MODEL)), values, st.booleans())
def test_fuzz_config_json(tmp_path_factory, key, value, drop):
    cfg = dict(BASE_MODEL)
    if drop:
        cfg.pop(key)
    else:
        cfg[key] = value
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(json.dumps(cfg))
    try:
        m = load_model(str(path))
    except LlmperfError as exc:
        assert "\n" not in str(exc)
        return
    try:
        estimate(m, load_hardware("h200"), batch=2, prompt_len=64, output_len=4)
    except LlmperfError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(st.sampled_from(["memory_capacity", "memory_bandwidth", "peak", "interconnect", "sources",
                        "name", "tdp", "l2_cache"]), values)
def test_fuzz_hardware_yaml(tmp_path_factory, key, value):
    data = dict(BASE_HW)
    data[key] = value
    path = tmp_path_factory.mktemp("hw") / "gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_hardware_file(path)
    except LlmperfError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


@FUZZ
@given(st.integers(-3, 10**5), st.integers(-3, 10**6), st.integers(-3, 10**4),
       st.sampled_from(["bf16", "fp8", "int4", "int3"]), st.sampled_from([1, 2, 3, 4, 8, 0]),
       st.sampled_from([1, 2, 3, 5, 32, 33, 0, -1]))
def test_fuzz_workloads(batch, prompt, output, weights, tp, pp):
    m, hw = load_model("mixtral-8x7b"), load_hardware("h100-sxm")
    try:
        acts = "fp8" if weights == "fp8" else "bf16"
        e = estimate(m, hw, Workload(weights=weights, activations=acts, tensor_parallel=tp,
                                     pipeline_parallel=pp),
                     batch=batch, prompt_len=prompt, output_len=output)
    except LlmperfError as exc:
        assert "\n" not in str(exc)
        return
    for key in ("ttft_s", "tpot_s", "request_latency_s", "total_memory_bytes"):
        assert e[key] >= 0 and e[key] == e[key]
