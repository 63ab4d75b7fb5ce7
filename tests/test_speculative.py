"""Speculative decoding (llmperf/speculative.py). Expected values: the acceptance process
simulated here (Monte Carlo), Leviathan et al.'s speed-up formula (arXiv:2211.17192 §3.3),
and compositions of plain step costs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import llmperf
from llmperf import Speculation, Workload
from llmperf.catalog import load_hardware, load_model
from llmperf.cli import app
from llmperf.engines import is_decode
from llmperf.errors import LlmperfError
from llmperf.estimators.latency import engine_ops, step_cost
from llmperf.estimators.memory import kv_bytes, weight_bytes
from llmperf.specs.workload import Step

H100 = load_hardware("h100-sxm")
L8 = load_model("llama-3.1-8b")
L1 = load_model("llama-3.2-1b")


@pytest.mark.parametrize("k, a", [(1, 0.5), (3, 0.7), (4, 0.8), (7, 0.9), (5, 0.0), (4, 1.0)])
def test_tokens_per_round_matches_a_simulation(k, a):
    # each round: draft tokens accepted one by one until the first rejection; the target then
    # adds one token of its own (the correction, or a bonus token after k acceptances)
    rng = np.random.default_rng(0)
    rounds = 200_000
    accepted = np.argmin(np.concatenate([rng.random((rounds, k)) < a, np.zeros((rounds, 1), bool)],
                                        axis=1), axis=1)
    simulated = (accepted + 1).mean()
    assert Speculation(k, a).tokens_per_round == pytest.approx(simulated, rel=0.01)


def _plain(batch=1, context=2047):
    return float(step_cost(L8, H100, Workload(), Step.decode(batch, context)).step_time_s)


def test_tpot_is_the_round_over_the_expected_tokens():
    k, a, ctx = 4, 0.8, 2047
    spec = Speculation(k, a, L1)
    verify = float(step_cost(L8, H100, Workload(), Step.decode(1, ctx, q_len=k + 1)).step_time_s)
    draft = sum(float(step_cost(L1, H100, Workload(), Step.decode(1, ctx + j)).step_time_s)
                for j in range(k))
    r = llmperf.estimate(L8, H100, batch=1, prompt_len=1024, output_len=1024, speculation=spec)
    assert r["tpot_s"] == pytest.approx((verify + draft) / ((1 - a ** (k + 1)) / (1 - a)), rel=1e-12)
    assert r["tokens_per_round"] == pytest.approx((1 - a ** 5) / (1 - a))


def test_speedup_matches_leviathan_formula_at_batch_one():
    # Leviathan et al. §3.3: walltime improvement = (1 - a^(k+1)) / ((1 - a)(k c + 1)), c = the
    # draft's step time over the target's; it assumes the verification costs one target step,
    # which holds at batch 1 (memory-bound: k + 1 tokens read the same weights as one)
    k, a = 4, 0.8
    c = float(step_cost(L1, H100, Workload(), Step.decode(1, 2047)).step_time_s) / _plain()
    expected = (1 - a ** (k + 1)) / ((1 - a) * (k * c + 1))
    r = llmperf.estimate(L8, H100, batch=1, prompt_len=1024, output_len=1024,
                         speculation=Speculation(k, a, L1))
    assert _plain() / r["tpot_s"] == pytest.approx(expected, rel=0.03)


def test_no_acceptance_only_costs_time_and_full_acceptance_with_free_drafts():
    r0 = llmperf.estimate(L8, H100, batch=1, prompt_len=1024, output_len=1024,
                          speculation=Speculation(3, 0.0, L1))
    assert r0["tpot_s"] > _plain()  # every round yields one token and pays the drafts
    r1 = llmperf.estimate(L8, H100, batch=1, prompt_len=1024, output_len=1024,
                          speculation=Speculation(3, 1.0, "ngram"))
    verify = float(step_cost(L8, H100, Workload(), Step.decode(1, 2047, q_len=4)).step_time_s)
    assert r1["tpot_s"] == pytest.approx(verify / 4, rel=1e-12) and r1["draft_model"] == "ngram"


def test_memory_adds_the_draft_and_the_speculative_slots():
    b, p, o, k = 8, 1000, 200, 5
    plain = llmperf.estimate(L8, H100, batch=b, prompt_len=p, output_len=o)
    r = llmperf.estimate(L8, H100, batch=b, prompt_len=p, output_len=o, speculation=Speculation(k, 0.7, L1))
    assert r["weight_bytes"] == plain["weight_bytes"] + weight_bytes(L1, Workload())
    # 131072 B/token for Llama-3.1-8B bf16 (32 layers x 8 KV heads x 128 x 2 x 2 B), 32768 for 1B
    assert r["kv_cache_bytes"] == b * (p + o + k) * (131072 + 32768)
    assert float(kv_bytes(L1, Workload(), b, p + o + k)) == b * (p + o + k) * 32768


def test_ttft_adds_the_draft_prefill_and_request_counts_rounds():
    spec = Speculation(4, 0.6, L1)
    plain = llmperf.estimate(L8, H100, batch=2, prompt_len=512, output_len=65)
    r = llmperf.estimate(L8, H100, batch=2, prompt_len=512, output_len=65, speculation=spec)
    draft_prefill = float(step_cost(L1, H100, Workload(), Step.prefill(2, 512)).step_time_s)
    assert r["ttft_s"] == pytest.approx(plain["ttft_s"] + draft_prefill, rel=1e-12)
    assert r["request_latency_s"] == pytest.approx(r["ttft_s"] + 64 * r["mean_tpot_s"], rel=1e-12)
    assert r["throughput_tokens_per_s"] == pytest.approx(2 * 65 / r["request_latency_s"], rel=1e-12)


def test_verification_is_a_decode_step_for_the_engine():
    # vLLM replays uniform verification batches from CUDA graphs: no eager host floor
    cal = llmperf.resolve_calibration("auto", H100)
    ops, _, host = engine_ops(L8, Workload(engine="fused"), Step.decode(4, 100, q_len=5), cal, decode=True)
    assert host == (0.0, 0.0)
    assert engine_ops(L8, Workload(engine="fused"), Step.decode(4, 100, q_len=5), cal)[2] != (0.0, 0.0)
    assert not is_decode(ops) and is_decode(engine_ops(L8, Workload(), Step.decode(4, 100), cal)[0])


@pytest.mark.parametrize("engine", ["reference", "fused"])
def test_a_prefix_cached_prefill_stays_a_prefill(engine):
    # a prefill of 16 or fewer new tokens over a cached prefix is not a CUDA-graph decode step:
    # TTFT must not drop 14x between 17 and 16 uncached tokens (found by review)
    q05 = load_model("qwen2.5-0.5b")
    ttft = [llmperf.estimate(q05, H100, Workload(engine=engine), calibration="auto", prompt_len=1024,
                             output_len=2, cached_prompt_len=c)["ttft_s"] for c in (1007, 1008)]
    assert ttft[1] <= ttft[0] and ttft[1] > 0.8 * ttft[0]


def test_draft_context_limit_and_api_types():
    opt = load_model("opt-6.7b")  # max_position_embeddings 2048
    with pytest.raises(LlmperfError, match="opt-6.7b's max_position_embeddings"):
        llmperf.estimate(L8, H100, prompt_len=4096, output_len=16, speculation=Speculation(4, 0.6, opt))
    with pytest.raises(LlmperfError, match="speculation needs a number"):
        Speculation(4, "half")
    assert Speculation(4, "0.5").acceptance_rate == 0.5
    # speculative slots are not held against the target's limit (engines shorten speculation)
    l2 = load_model("llama-2-7b")
    llmperf.estimate(l2, H100, prompt_len=3840, output_len=256, speculation=Speculation(4, 0.5))


def test_calibrated_interval_contains_the_speculative_estimate():
    r = llmperf.estimate("llama-3.1-8b", "h100-sxm", Workload(engine="fused"), calibration="auto",
                         batch=4, prompt_len=1024, output_len=64,
                         speculation=Speculation(4, 0.7, "llama-3.2-1b"))
    for key in ("ttft_s", "tpot_s", "request_latency_s"):
        assert r[f"{key}_low"] < r[key] < r[f"{key}_high"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(tokens=0, acceptance_rate=0.5), "--spec-tokens must be"),
    (dict(tokens=16, acceptance_rate=0.5), "--spec-tokens must be"),
    (dict(tokens=2, acceptance_rate=-0.1), "--acceptance must be"),
    (dict(tokens=2, acceptance_rate=float("nan")), "--acceptance must be"),
])
def test_bad_speculation(kwargs, message):
    with pytest.raises(LlmperfError, match=message):
        Speculation(**kwargs)


def test_speculation_with_pipeline_is_refused():
    with pytest.raises(LlmperfError, match="without pipeline parallelism"):
        llmperf.estimate(L8, H100, Workload(pipeline_parallel=2), speculation=Speculation(2, 0.5))


@pytest.fixture
def runner():
    return CliRunner(env={"COLUMNS": None, "LINES": None})


def test_cli_speculation(runner):
    res = runner.invoke(app, ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--spec-tokens", "4",
                              "--draft", "llama-3.2-1b", "--acceptance", "0.8", "-f", "json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)
    assert (row["draft_model"], row["speculative_tokens"], row["acceptance_rate"]) == ("llama-3.2-1b", 4, 0.8)
    plain = json.loads(runner.invoke(app, ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", "-f", "json"]).output)
    assert plain["draft_model"] is None and plain["speculative_tokens"] == 0
    assert plain["acceptance_rate"] is None and plain["tokens_per_round"] == 1
    table = runner.invoke(app, ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--spec-tokens", "4",
                                "--draft", "ngram", "--acceptance", "0.6"])
    assert table.exit_code == 0 and "4 by ngram" in table.output and "rounds" in table.output


@pytest.mark.parametrize("args, message", [
    (["--spec-tokens", "4"], "needs --spec-tokens K, --draft MODEL|ngram and --acceptance P"),
    (["--spec-tokens", "4", "--draft", "ngram", "--acceptance", "2"], "--acceptance must be"),
    (["--spec-tokens", "x", "--draft", "ngram", "--acceptance", "0.5"], "--spec-tokens"),
    (["--spec-tokens", "4", "--draft", "llama-9", "--acceptance", "0.5"], "unknown model 'llama-9'"),
])
def test_cli_bad_speculation_is_one_line_exit_2(runner, args, message):
    res = runner.invoke(app, ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", *args])
    assert res.exit_code == 2 and message in res.output
    assert len(res.output.strip().splitlines()) == 1


# -- prefix caching (the same request path: a prefill step with past > 0) ----------------------
def test_prefix_cached_prefill_flops_closed_form():
    # causal pairs of q new tokens over C cached: qC + q(q+1)/2 = pairs(P) - pairs(C), and every
    # per-token GEMM is linear: so FLOPs(P with C cached) = FLOPs(P) - FLOPs(C), except that the
    # lm_head runs on the last token of each sequence in both (added back once)
    b, p, c = 3, 4096, 3000
    full = llmperf.estimate(L8, H100, batch=b, prompt_len=p, output_len=2)
    head = llmperf.estimate(L8, H100, batch=b, prompt_len=c, output_len=2)
    cached = llmperf.estimate(L8, H100, batch=b, prompt_len=p, output_len=2, cached_prompt_len=c)
    lm_head = 2 * b * 128256 * 4096
    assert cached["prefill_flops"] == pytest.approx(full["prefill_flops"] - head["prefill_flops"] + lm_head,
                                                    rel=1e-12)
    assert cached["ttft_s"] < full["ttft_s"] and cached["cached_prompt_len"] == c
    assert cached["kv_cache_bytes"] == full["kv_cache_bytes"]  # the cache still holds the prompt
    assert cached["tpot_s"] == full["tpot_s"]


def test_prefix_cache_bounds():
    with pytest.raises(LlmperfError, match="cached prompt tokens must be"):
        llmperf.estimate(L8, H100, prompt_len=100, cached_prompt_len=100)
    with pytest.raises(LlmperfError, match="cached prompt tokens must be"):
        llmperf.estimate(L8, H100, prompt_len=100, cached_prompt_len=-1)


def test_cli_prefix_cache(runner):
    res = runner.invoke(app, ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--prompt", "8k",
                              "--cached-prompt", "6k"])
    assert res.exit_code == 0 and "prefix cache" in res.output and "other 2,048" in res.output
    bad = runner.invoke(app, ["estimate", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--prompt", "8k",
                              "--cached-prompt", "8k"])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
