"""Reference decoder (kernels/reference_model.py): decode after prefill == full prefill (CPU, fp32).

The decode step reads K/V from the static cache written by the prefill, while the full prefill of the
same sequence recomputes everything with a causal mask: equal last-token logits (fp32 tolerance)
check the cache write positions, the RoPE position of the decode token, the GQA head mapping, the
q/k bias and q/k-norm placement and the MoE routing in one go.
"""

import pytest
import torch

from llmperf.specs.model import ModelSpec
from llmperf_kernels.reference_model import ReferenceDecoder, grouped_mm_available


def _spec(moe: bool) -> ModelSpec:
    L = 2
    return ModelSpec(
        name="tiny-moe" if moe else "tiny-dense", architecture="test", model_type="test",
        num_layers=L, hidden_size=64, vocab_size=96, max_position_embeddings=64,
        num_attention_heads=4, num_kv_heads=2, head_dim=16, v_head_dim=16,
        qkv_bias=True, qk_norm=True, layer_types=("full",) * L, intermediate_size=96,
        num_experts=4 if moe else 0, experts_per_token=2 if moe else 0,
        moe_intermediate_size=32 if moe else 0, moe_layers=(moe,) * L, tie_word_embeddings=moe)


def _decode_matches_prefill(model, B=3, T=11):
    torch.manual_seed(1)
    tokens = torch.randint(0, model.V, (B, T))
    full = model.prefill(tokens, model.new_cache(B, T))
    cache = model.new_cache(B, T + 5)          # random-filled: positions >= T must not be read
    model.prefill(tokens[:, :T - 1], cache)
    step = model.decode(tokens[:, T - 1], cache, T - 1)
    assert step.shape == (B, model.V) and torch.isfinite(step).all()
    torch.testing.assert_close(step, full, rtol=1e-4, atol=1e-4)
    return full


def test_dense_gqa_bias_qknorm_decode_equals_prefill():
    m = ReferenceDecoder(_spec(False), "cpu", torch.float32, seed=3)
    full = _decode_matches_prefill(m)
    assert full.std() > 0  # random weights, not zeros


@pytest.mark.parametrize("impl", ["dense", "grouped_mm"])
def test_moe_decode_equals_prefill(impl):
    if impl == "grouped_mm" and not grouped_mm_available("cpu"):
        pytest.skip("torch._grouped_mm does not run on this CPU build")
    m = ReferenceDecoder(_spec(True), "cpu", torch.float32, seed=4, moe_impl=impl)
    _decode_matches_prefill(m)


def test_grouped_mm_moe_equals_dense_moe():
    if not grouped_mm_available("cpu"):
        pytest.skip("torch._grouped_mm does not run on this CPU build")
    a = ReferenceDecoder(_spec(True), "cpu", torch.float32, seed=5, moe_impl="dense")
    b = ReferenceDecoder(_spec(True), "cpu", torch.float32, seed=5, moe_impl="grouped_mm")
    tokens = torch.randint(0, a.V, (2, 9))
    torch.testing.assert_close(b.prefill(tokens, b.new_cache(2, 9)), a.prefill(tokens, a.new_cache(2, 9)),
                               rtol=1e-4, atol=1e-4)


def test_sizes_and_unsupported():
    m = ReferenceDecoder(_spec(False), "cpu", torch.float32)
    assert m.kv_cache_bytes(3, 10) == 2 * 2 * 3 * 2 * 10 * 16 * 4
    h, i, v, qkv = 64, 96, 96, (4 + 2 * 2) * 16
    per_layer = 2 * h + qkv * h + qkv + 2 * 16 + h * 4 * 16 + 2 * i * h + h * i
    assert m.weight_bytes() == 4 * (2 * per_layer + h + 2 * v * h)
    with pytest.raises(NotImplementedError):
        ReferenceDecoder(_spec(False).model_copy(update=dict(norm="layernorm")), "cpu", torch.float32)


def test_routing_helpers_group_pairs_by_expert():
    """route_topk / sort_by_expert (also timed whole by the calibration's routing sweep): the
    sorted pairs are grouped by expert, each group's rows are the tokens that chose it, and the
    offsets are the running counts -- checked against a Python loop."""
    from llmperf_kernels.reference_model import route_topk, sort_by_expert

    torch.manual_seed(3)
    tokens, experts, k = 37, 8, 3
    weights, chosen = route_topk(torch.randn(tokens, experts), k)
    assert chosen.shape == (tokens, k) and weights.shape == (tokens, k)
    torch.testing.assert_close(weights.sum(-1), torch.ones(tokens))
    assert all(len(set(row.tolist())) == k for row in chosen)     # k distinct experts per token
    order, rows, offs = sort_by_expert(chosen, experts)
    flat = chosen.reshape(-1)
    assert torch.equal(rows, order // k) and offs.dtype == torch.int32
    expected_ends, start = [], 0
    for e in range(experts):
        members = [(t, s) for t in range(tokens) for s in range(k) if int(chosen[t, s]) == e]
        group = order[start:start + len(members)]
        assert sorted(group.tolist()) == sorted(t * k + s for t, s in members)
        assert bool((flat[group] == e).all())
        start += len(members)
        expected_ends.append(start)
    assert offs.tolist() == expected_ends


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_host_probe_and_routing_sweep_on_the_gpu():
    """The tiny-model host probe gives a positive per-kernel rate that repeats, and the routing
    sweep writes one row per (model, tokens, op) with the op model's bytes and a kernel count;
    a point measured by measure_e2e's runner carries the rate sampled between its repetitions."""
    from llmperf_kernels.calibrate_common import Recorder
    from llmperf_kernels.calibrate_extra import GROUPED_TOKENS, reference_host_probe, sweep_routing

    probe = reference_host_probe()
    small, large = probe.kernels
    assert 0 < small < large
    rates = [probe.measure(rounds=3, calls=5)[0] for _ in range(2)]
    assert all(0 < r < 1e-3 for r in rates) and max(rates) < 2 * min(rates)
    rec = Recorder("h100-sxm5-80gb", 5.0, lambda *_: None)
    sweep_routing(rec)
    assert not rec.failures
    names = [r["name"] for r in rec.rows]
    for op in ("router_topk", "experts_sort", "experts_permute", "experts_unpermute", "experts_combine"):
        assert names.count(f"torch_{op}") == 2 * len(GROUPED_TOKENS)
    assert all(r["time_s"] > 0 and r["bytes"] > 0 and r["kernels"] >= 1 for r in rec.rows)
