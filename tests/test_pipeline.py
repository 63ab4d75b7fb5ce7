"""Pipeline parallelism (llmperf/pipeline.py): layer split, per-stage memory, the pipeline's step
time, and the CLI's --pp. Expected values are closed forms written here from the model's
config.json facts (shared/reference/models.csv) and the GPipe schedule, not llmperf's output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import llmperf
from llmperf.catalog import bundled_model_names, load_hardware, load_model
from llmperf.cli import app
from llmperf.errors import LlmperfError
from llmperf.estimators.latency import step_cost
from llmperf.estimators.memory import (max_batch, max_context, memory_breakdown,
                                       stage_kv_bytes, stage_weight_bytes, weight_bytes)
from llmperf.ops.builder import build_step_ops
from llmperf.pipeline import micro_batches, op_stage_counts, stage_layer_counts
from llmperf.specs.workload import Step, Workload

H100 = load_hardware("h100-sxm")
L70 = load_model("llama-3.1-70b")


# -- layer split -------------------------------------------------------------------------------
@pytest.mark.parametrize("layers, stages, expected", [
    (32, 4, [8, 8, 8, 8]),
    (10, 4, [2, 3, 3, 2]),    # 2 left over: stages P-2 and P-3 (vLLM get_pp_indices)
    (11, 4, [3, 3, 3, 2]),    # 3 left over: every stage but the last
    (80, 3, [27, 27, 26]),
    (61, 4, [15, 15, 16, 15]),  # DeepSeek-V3: the one extra layer on stage P-2
    (5, 5, [1, 1, 1, 1, 1]),
])
def test_stage_layer_counts_follow_vllm(layers, stages, expected):
    assert stage_layer_counts(layers, stages) == expected


@given(layers=st.integers(1, 200), stages=st.integers(1, 64))
def test_stage_layer_counts_properties(layers, stages):
    if stages > layers:
        with pytest.raises(LlmperfError, match="exceeds the model's"):
            stage_layer_counts(layers, stages)
        return
    counts = stage_layer_counts(layers, stages)
    assert sum(counts) == layers and len(counts) == stages
    assert max(counts) - min(counts) <= 1
    assert counts[-1] == layers // stages  # the lm_head stage never gets an extra layer


@pytest.mark.parametrize("name", bundled_model_names())
@pytest.mark.parametrize("stages", [1, 2, 3, 4, 7])
def test_every_op_runs_on_some_stage(name, stages):
    model = load_model(name)
    wl = Workload(pipeline_parallel=stages)
    ops = build_step_ops(model, wl, Step.decode(3, 100))
    counts = op_stage_counts(ops, model, stages)
    assert np.array_equal(counts.sum(axis=1), [o.count for o in ops])
    sends = [o for o in ops if o.name == "pipeline_send"]
    assert sum(o.count for o in sends) == stages - 1
    # the decoder layers of each stage add up to vLLM's split
    layer_rows = [i for i, o in enumerate(ops) if o.name == "input_layernorm"]
    assert list(counts[layer_rows].sum(axis=0)) == stage_layer_counts(model.num_layers, stages)


# -- memory ------------------------------------------------------------------------------------
def _llama70b_params():
    """Llama-3.1-70B config.json: hidden 8192, 80 layers, 64 heads, 8 KV heads, head_dim 128,
    intermediate 28672, vocab 128256, untied embeddings, RMSNorm (2 per layer + final)."""
    h, inter, kv, vocab = 8192, 28672, 8 * 128, 128256
    layer = h * h + 2 * h * kv + h * h + 3 * h * inter + 2 * h
    return layer, vocab * h


def test_stage_weights_closed_form_llama70b():
    layer, embed = _llama70b_params()
    w = stage_weight_bytes(L70, Workload(pipeline_parallel=2))
    assert w[0] == 2 * (40 * layer + embed)            # embeddings + layers 0-39
    assert w[1] == 2 * (40 * layer + 8192 + embed)     # layers 40-79 + final norm + lm_head
    assert weight_bytes(L70, Workload(pipeline_parallel=2)) == w[1]
    w4 = stage_weight_bytes(L70, Workload(pipeline_parallel=4, tensor_parallel=2))
    # a middle stage: 20 layers, TP-sharded except the two RMSNorm weights (replicated)
    assert w4[1] == 20 * (2 * (layer - 2 * 8192) / 2 + 2 * 2 * 8192)


@pytest.mark.parametrize("name", ["llama-3.1-8b", "gemma-2-9b", "deepseek-v3", "mixtral-8x7b",
                                  "llama-3.2-1b"])
@pytest.mark.parametrize("stages", [2, 3, 5])
def test_stage_weights_add_up_to_the_whole_model(name, stages):
    # untied: the stages split the model; tied (Gemma-2, Llama-3.2-1B): the last stage also holds
    # the embedding table for its lm_head (vocab x hidden, bf16)
    model = load_model(name)
    whole = stage_weight_bytes(model, Workload())
    split = stage_weight_bytes(model, Workload(pipeline_parallel=stages))
    table = model.vocab_size * model.hidden_size * 2 if model.tie_word_embeddings else 0
    assert split.sum() == pytest.approx(whole[0] + table, rel=1e-12)
    assert split.max() < whole[0]


def test_stage_kv_closed_form():
    # 20 layers per stage x (K + V) x 8 KV heads x 128 dims x 2 bytes, per token and sequence
    kv = stage_kv_bytes(L70, Workload(pipeline_parallel=4), 3, 1000)
    assert np.allclose(kv, 3 * 1000 * 20 * 2 * 8 * 128 * 2, rtol=0, atol=0)
    # Gemma-2: alternating sliding (4096) and full layers; 42 layers over 2 stages -> 21 each,
    # stage 0 holds layers 0..20 (11 sliding, 10 full), stage 1 layers 21..41 (10 sliding, 11 full)
    gemma = load_model("gemma-2-9b")
    per_layer_token = 2 * 8 * 256 * 2
    kv = stage_kv_bytes(gemma, Workload(pipeline_parallel=2), 1, 8192)
    assert kv[0] == per_layer_token * (11 * 4096 + 10 * 8192)
    assert kv[1] == per_layer_token * (10 * 4096 + 11 * 8192)


def test_memory_reports_the_fullest_stage():
    wl = Workload(pipeline_parallel=2)
    mem = memory_breakdown(L70, H100, wl, np.array([1.0, 64.0]), 512, 4096)
    w = stage_weight_bytes(L70, wl)
    assert np.all(mem["weight_bytes"] == w.max())
    assert np.all(mem["total_memory_bytes"] == mem["weight_bytes"] + mem["kv_cache_bytes"]
                  + mem["activation_bytes"])


def test_max_batch_and_context_are_the_largest_that_fit():
    wl = Workload(pipeline_parallel=2, tensor_parallel=2)
    ctx = 8192.0
    b = float(max_batch(L70, H100, wl, np.array([ctx]))[0])
    assert b > 1
    fits = memory_breakdown(L70, H100, wl, np.array([b, b + 1]), 1, ctx)["fits"]
    assert list(fits) == [True, False]
    c = float(max_context(L70, H100, wl, np.array([16.0]))[0])
    fits = memory_breakdown(L70, H100, wl, 16.0, 1, np.array([c, c + 1]))["fits"]
    assert list(fits) == [True, False]


def test_pipeline_lets_a_model_fit_that_does_not_on_one_node():
    l405 = load_model("llama-3.1-405b")
    tp8 = memory_breakdown(l405, H100, Workload(tensor_parallel=8), 1, 1024, 2048)
    tp8pp2 = memory_breakdown(l405, H100, Workload(tensor_parallel=8, pipeline_parallel=2), 1, 1024, 2048)
    assert not tp8["fits"] and tp8pp2["fits"]


# -- latency -----------------------------------------------------------------------------------
def _send_s(hidden: int, tokens: float) -> float:
    """One stage-to-stage send at TP 1 on the H100's NVLink (per direction): vLLM's intermediate
    tensors, the hidden states and the residual, bf16."""
    return 2 * tokens * hidden * 2 / H100.interconnect.per_direction_bytes_per_s


def _per_op(model, batch, past, q_len):
    """Ideal time of the embedding, of one decoder layer and of the head at one micro-batch,
    from the pp=1 op list (no pipeline logic involved)."""
    cost = step_cost(model, H100, Workload(), Step.of(batch, q_len, past))
    embed = layer = head = 0.0
    for op, t in zip(cost.ops, cost.time_s):
        if op.group == "embedding":
            embed += float(t) * op.count
        elif op.group == "head":
            head += float(t) * op.count
        else:
            layer += float(t)  # one layer (count = 80 identical layers)
    return embed, layer, head


def test_batch_one_decode_pays_only_the_sends():
    tpot1 = float(step_cost(L70, H100, Workload(), Step.decode(1, 2048)).step_time_s)
    for stages in (2, 4, 8):
        tpot = float(step_cost(L70, H100, Workload(pipeline_parallel=stages), Step.decode(1, 2048)).step_time_s)
        assert tpot == pytest.approx(tpot1 + (stages - 1) * _send_s(8192, 1), rel=1e-12)


def test_decode_steady_state_is_the_gpipe_cycle():
    # batch 8 over 2 stages: 2 micro-batches of 4; a micro-batch's next token waits for its
    # traversal and for both micro-batches at the slower stage: max(T, 2 S)
    embed, layer, head = _per_op(L70, 4, 2048, 1)
    send = _send_s(8192, 4)
    traversal = embed + 80 * layer + send + head
    slowest = max(embed + 40 * layer + send, 40 * layer + head)
    cost = step_cost(L70, H100, Workload(pipeline_parallel=2), Step.decode(8, 2048))
    assert float(cost.step_time_s) == pytest.approx(max(traversal, 2 * slowest), rel=1e-9)
    assert float(cost.traversal_s) == pytest.approx(traversal, rel=1e-9)


def test_prefill_is_the_gpipe_fill():
    # 3 stages, batch 7: micro-batches of ceil(7/3) = 3, ceil(7/3) = 3 of them; 80 = 27+27+26
    embed, layer, head = _per_op(L70, 3, 0, 512)
    send = _send_s(8192, 3 * 512)
    stages = [embed + 27 * layer + send, 27 * layer + send, 26 * layer + head]
    traversal = embed + 80 * layer + 2 * send + head
    cost = step_cost(L70, H100, Workload(pipeline_parallel=3), Step.prefill(7, 512))
    assert float(cost.step_time_s) == pytest.approx(traversal + 2 * max(stages), rel=1e-9)


def test_sends_under_tensor_parallelism():
    # TP 4: each rank sends a quarter of (hidden + residual), the next stage all-gathers them
    ops = build_step_ops(L70, Workload(tensor_parallel=4, pipeline_parallel=3), Step.decode(5, 100))
    send, gather = (next(o for o in ops if o.name == n) for n in ("pipeline_send", "pipeline_all_gather"))
    values = 2 * 5 * 8192
    assert float(send.comm_bytes) == values / 4 * 2 and send.count == 2
    assert float(gather.comm_bytes) == 3 / 4 * values * 2 and gather.count == 2
    counts = op_stage_counts(ops, L70, 3)
    assert list(counts[ops.index(send)]) == [1, 1, 0] and list(counts[ops.index(gather)]) == [0, 1, 1]


def test_ops_table_shares_are_of_one_traversal():
    from llmperf.estimators.report import ops_frame

    frame = ops_frame(L70, H100, Workload(pipeline_parallel=2), Step.decode(8, 2048))
    assert frame["time_share"].sum() == pytest.approx(1.0, rel=1e-9)
    assert set(frame["m"].dropna()) == {4.0}  # the ops are one micro-batch's (8 sequences / 2)


def test_micro_batches():
    m, n = micro_batches(np.array([1, 2, 7, 8, 9, 64]), 4)
    assert list(m) == [1, 1, 2, 2, 3, 16] and list(n) == [1, 2, 4, 4, 3, 4]


def test_estimate_under_pipeline_parallelism():
    one = llmperf.estimate(L70, H100, Workload(tensor_parallel=8), batch=64, prompt_len=1024,
                           output_len=128, price_usd_per_hour=2.0)
    pp = llmperf.estimate(L70, H100, Workload(tensor_parallel=4, pipeline_parallel=2), batch=64,
                          prompt_len=1024, output_len=128, price_usd_per_hour=2.0)
    assert pp["pipeline_parallel"] == 2 and pp["tensor_parallel"] == 4
    # FLOPs of the step on one device: the whole batch's over tp x pp devices, like TP 8
    assert pp["decode_flops"] == pytest.approx(one["decode_flops"], rel=0.02)
    # cost is over all tp x pp devices
    assert pp["cost_usd_per_1m_output_tokens"] == pytest.approx(
        2.0 * 8 / 3600 / pp["throughput_tokens_per_s"] * 1e6, rel=1e-12)
    # decode re-reads each stage's weights once per micro-batch: TP 8 streams less per token
    assert pp["tpot_s"] > one["tpot_s"]
    for key in ("ttft_s", "tpot_s", "mean_tpot_s", "request_latency_s"):
        assert np.isfinite(pp[key]) and pp[key] > 0
    # the request's decode time is the closed form scaled by the pipeline ratio: between the
    # TPOT at the prompt and at the last step
    first = float(step_cost(L70, H100, Workload(tensor_parallel=4, pipeline_parallel=2),
                            Step.decode(64, 1024)).step_time_s)
    assert first <= pp["mean_tpot_s"] <= pp["tpot_s"] * (1 + 1e-12)


def test_calibrated_intervals_scale_with_the_pipeline():
    r = llmperf.estimate("llama-3.1-70b", "h100-sxm", Workload(tensor_parallel=4, pipeline_parallel=2),
                         calibration="auto", batch=16, prompt_len=1024, output_len=64)
    for key in ("ttft_s", "tpot_s", "request_latency_s"):
        assert r[f"{key}_low"] < r[key] < r[f"{key}_high"]


def test_workload_rejects_bad_stage_counts():
    with pytest.raises(LlmperfError, match="--pp must be a positive whole number"):
        Workload(pipeline_parallel=0)
    with pytest.raises(LlmperfError, match="--pp 81 exceeds the model's 80 layers"):
        build_step_ops(L70, Workload(pipeline_parallel=81), Step.decode(1, 1))


# -- CLI ---------------------------------------------------------------------------------------
@pytest.fixture
def runner():
    return CliRunner(env={"COLUMNS": None, "LINES": None})  # as tests/test_cli.py: no wrapping


def test_cli_pp_json_and_table(runner):
    res = runner.invoke(app, ["estimate", "-m", "llama-3.1-405b", "-g", "h100-sxm", "--tp", "8",
                              "--pp", "2", "--batch", "4", "--format", "json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)
    assert row["pipeline_parallel"] == 2 and row["fits"]
    res = runner.invoke(app, ["estimate", "-m", "llama-3.1-405b", "-g", "h100-sxm", "--tp", "8",
                              "--pp", "2", "--price", "2"])
    assert res.exit_code == 0 and "PP 2" in res.output and "x 16 devices" in res.output


@pytest.mark.parametrize("pp, message", [
    ("0", "--pp must be"), ("-2", "--pp"), ("two", "--pp"), ("100", "exceeds the model's 32 layers")])
def test_cli_bad_pp_is_one_line_exit_2(runner, pp, message):
    res = runner.invoke(app, ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--pp", pp])
    assert res.exit_code == 2
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    assert "Traceback" not in res.output


def test_cli_sweep_and_memory_show_pp_only_when_used(runner):
    res = runner.invoke(app, ["sweep", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "4",
                              "--pp", "1,2", "--batch", "8", "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    header = lines[0].split(",")
    assert header[header.index("tensor_parallel") + 1] == "pipeline_parallel"
    assert [line.split(",")[header.index("pipeline_parallel")] for line in lines[1:]] == ["1", "2"]
    table = runner.invoke(app, ["memory", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--pp", "2",
                                "--batch", "1", "--context", "4k"])
    assert table.exit_code == 0 and " pp " in table.output
    plain = runner.invoke(app, ["memory", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "2",
                                "--batch", "1", "--context", "4k"])
    assert plain.exit_code == 0 and " pp " not in plain.output


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 300), stages=st.integers(1, 8), context=st.integers(1, 20000))
def test_pipeline_times_are_finite_and_never_below_the_traversal_share(batch, stages, context):
    wl = Workload(pipeline_parallel=stages)
    cost = step_cost(L70, H100, wl, Step.decode(batch, context))
    t = float(cost.step_time_s)
    assert np.isfinite(t) and t > 0
    if stages > 1:
        assert t >= float(cost.traversal_s) * (1 - 1e-12)
        # a full pipeline never beats the slowest stage times the micro-batches
        n = micro_batches(batch, stages)[1]
        assert t >= float(n * cost.stage_time_s.max()) * (1 - 1e-12)


@pytest.mark.parametrize("engine", ["fused", "hf-transformers"])
@pytest.mark.parametrize("stages", [1, 4])
def test_calibrated_interval_contains_the_estimate(engine, stages):
    # an eager engine's decode is host-bound: the interval of the device times alone (found
    # 10.9-13.5 ms around an 83 ms TPOT) must be raised to the host's floor
    r = llmperf.estimate("qwen3-30b-a3b", "h100-sxm", Workload(pipeline_parallel=stages, engine=engine),
                         calibration="auto", batch=3, prompt_len=1024, output_len=16)
    for key in ("ttft_s", "tpot_s", "request_latency_s"):
        assert r[f"{key}_low"] <= r[key] * (1 + 1e-12) and r[key] <= r[f"{key}_high"] * (1 + 1e-12), key
