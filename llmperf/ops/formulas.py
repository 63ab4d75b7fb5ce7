"""Closed-form FLOP and byte counts shared by the op builder and the kernel harness.

Everything here is a pure function of shapes (ints or numpy arrays, broadcast together) and
returns floats/arrays. FLOPs count 2 per multiply-add (never MACs). Bytes are the compulsory
traffic to device memory: each operand read once, each result written once (the roofline floor,
Williams, Waterman & Patterson, "Roofline", CACM 2009).
"""

from __future__ import annotations

import numpy as np


def gemm_flops(m, n, k):
    """FLOPs of ``y[m, n] = x[m, k] @ w[n, k]^T``: 2·m·n·k (one multiply and one add per MAC)."""
    return 2.0 * np.asarray(m, dtype=float) * n * k


def gemm_bytes(m, n, k, x_bytes_per_elem, w_bytes_per_elem, y_bytes_per_elem):
    """Compulsory bytes of one GEMM: read x (m·k) and w (n·k) once, write y (m·n) once.

    Bytes per element may be fractional (int4 with group-128 fp16 scales = 4.125/8 bytes).
    """
    m = np.asarray(m, dtype=float)
    return m * k * x_bytes_per_elem + float(n) * k * w_bytes_per_elem + m * n * y_bytes_per_elem


def causal_pairs(q_len, kv_len, window=None):
    """Number of (query, key) pairs a causal mask keeps.

    The q_len queries sit at the last q_len absolute positions of a kv_len-long sequence, i.e.
    query i (0-based in the chunk) is at position p = kv_len - q_len + i and sees keys
    max(0, p - window + 1) .. p, that is min(p + 1, window) keys. Summed in closed form:
    sum_{p=a}^{b} min(p + 1, W) with a = kv_len - q_len, b = kv_len - 1.
    Prefill (q_len = kv_len = s, no window) gives s(s+1)/2; a decode step (q_len = 1) gives
    min(kv_len, window).
    """
    q = np.asarray(q_len, dtype=float)
    kv = np.asarray(kv_len, dtype=float)
    a = kv - q  # first query position
    b = kv - 1  # last query position

    def tri(lo, hi):  # sum_{p=lo}^{hi} (p + 1) for hi >= lo - 1 (empty when hi < lo)
        n = np.maximum(hi - lo + 1, 0)
        return n * (lo + 1 + hi + 1) / 2.0

    if window is None or not np.isfinite(window):
        return tri(a, b)
    w = float(window)
    # positions p <= w - 1 see p + 1 keys; positions p >= w see exactly w keys.
    split = np.clip(w - 1, a - 1, b)
    return tri(a, split) + np.maximum(b - np.maximum(split, a - 1), 0) * w


def attention_flops(batch, num_q_heads, q_len, kv_len, qk_head_dim, v_head_dim, causal=True,
                    window=None):
    """Matmul FLOPs of attention: S = Q K^T (2·pairs·d_qk) and O = P V (2·pairs·d_v) per head.

    ``pairs`` is q_len·kv_len without a mask and :func:`causal_pairs` with one (a FlashAttention
    kernel skips fully masked tiles; Dao, FlashAttention-2, arXiv:2307.08691 §3.1). Softmax
    arithmetic is not counted (convention of the FlashAttention papers).
    """
    if causal:
        pairs = causal_pairs(q_len, kv_len, window)
    else:
        pairs = np.asarray(q_len, dtype=float) * np.asarray(kv_len, dtype=float)
    return 2.0 * np.asarray(batch, dtype=float) * num_q_heads * pairs * (qk_head_dim + v_head_dim)


def attention_io_bytes(batch, num_q_heads, num_kv_heads, q_len, kv_len, qk_head_dim, v_head_dim,
                       act_bytes_per_elem, kv_bytes_per_elem, window=None):
    """Compulsory bytes of a fused (flash) attention call.

    Reads Q (b·q·Hq·d_qk) and the visible K/V (b·kv_eff·Hkv·(d_qk + d_v), each KV head once for
    its whole query group: GQA/MQA never expand K/V) and writes O (b·q·Hq·d_v). ``kv_eff`` is
    min(kv_len, window + q_len - 1) when a sliding window bounds what any query can see.
    """
    b = np.asarray(batch, dtype=float)
    q = np.asarray(q_len, dtype=float)
    kv = np.asarray(kv_len, dtype=float)
    if window is not None and np.isfinite(window):
        kv = np.minimum(kv, window + q - 1)
    q_bytes = b * q * num_q_heads * qk_head_dim * act_bytes_per_elem
    o_bytes = b * q * num_q_heads * v_head_dim * act_bytes_per_elem
    kv_bytes = b * kv * num_kv_heads * (qk_head_dim + v_head_dim) * kv_bytes_per_elem
    return q_bytes + kv_bytes + o_bytes


def expert_sort_bytes(tokens, num_experts: int, top_k: int):
    """Compulsory bytes of grouping a step's (token, expert) pairs by expert for grouped GEMMs.

    Reads the t·k int64 expert ids, writes the t·k int64 pair order and the t·k int64 source
    rows of the gather, and the E int32 group ends (what ``torch._grouped_mm`` takes as
    ``offs``; vLLM's ``moe_align_block_size`` writes the same kind of table).
    """
    pairs = np.asarray(tokens, dtype=float) * top_k
    return 24.0 * pairs + 4.0 * num_experts
