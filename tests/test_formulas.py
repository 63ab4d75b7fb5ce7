"""Closed forms of the shared formulas against brute-force enumeration."""

import numpy as np
from hypothesis import given, settings, strategies as st

from llmperf.ops.formulas import attention_flops, causal_pairs, gemm_flops


def brute_pairs(q, kv, window=None):
    total = 0
    for i in range(q):
        p = kv - q + i
        lo = 0 if window is None else max(0, p - window + 1)
        total += p - lo + 1
    return total


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(0, 60), st.one_of(st.none(), st.integers(1, 70)))
def test_causal_pairs_matches_enumeration(q, past, window):
    kv = past + q
    assert causal_pairs(q, kv, window) == brute_pairs(q, kv, window)


def test_prefill_and_decode_special_cases():
    assert causal_pairs(2048, 2048) == 2048 * 2049 / 2
    assert causal_pairs(1, 5000) == 5000
    assert causal_pairs(1, 5000, 4096) == 4096


def test_gemm_and_attention_flops_closed_forms():
    assert gemm_flops(3, 5, 7) == 2 * 3 * 5 * 7
    # non-causal: 2*b*h*q*kv*(d_qk + d_v)
    assert attention_flops(2, 4, 8, 16, 64, 64, causal=False) == 2 * 2 * 4 * 8 * 16 * 128
    # causal prefill of s tokens: s(s+1)/2 pairs
    s = 100
    assert attention_flops(1, 1, s, s, 64, 64) == 2 * s * (s + 1) / 2 * 128
    assert np.shape(attention_flops(np.ones((3, 2)), 1, 1, 10, 8, 8)) == (3, 2)
