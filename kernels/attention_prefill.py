"""Prefill attention forward (FlashAttention-2 style): ``O = softmax(Q K^T * scale + mask) V``.

Layout: q [B, Hq, Sq, D], k and v [B, Hkv, Skv, D] (any strides, D contiguous), output
[B, Hq, Sq, D] contiguous. Hq must be a multiple of Hkv (GQA; Hkv = 1 is MQA): query head h reads
KV head ``h // (Hq // Hkv)`` directly -- K/V are never expanded in memory. D in {64, 128, 256}
(any power of two 16..256 works). Sq, Skv need not be multiples of the block sizes.

Masking: query i (0-based) sits at absolute position ``p = Skv - Sq + i`` (bottom-right aligned,
so chunked prefill with a KV prefix works; Sq == Skv is ordinary causal prefill). Causal: key j is
visible iff j <= p. Sliding window W (causal only): additionally j > p - W, so each query sees
min(p + 1, W) keys -- the same convention as ``llmperf.ops.formulas.causal_pairs``.

Algorithm: FlashAttention-2 (Dao, arXiv:2307.08691, Alg. 1): one program per (BLOCK_M query rows,
query head); it streams K/V tiles of BLOCK_N keys, keeps the running row max m, row sum l and the
unnormalised fp32 accumulator in registers (online softmax, Milakov & Gimelshein 2018), and
divides by l once at the end. The softmax scale is folded with log2(e) into Q so the inner loop
uses exp2. The key range of a query tile is split into fully-visible tiles (no mask arithmetic)
and boundary tiles (causal diagonal, window edge, ragged end), and tiles that are fully masked are
never visited, so causal costs ~half of non-causal (FA2 §3.1). Causal programs are launched
heaviest-first for load balance. On Hopper, candidates that fetch K/V tiles through tensor
descriptors (TMA; the approach of Triton's fused-attention tutorial) join the autotuned set, and
at D 128 a warp-specialized one (Triton's Hopper autoWS: a producer warpgroup for the copies, two
consumer warpgroups; one key loop with a cheap mask; kernels/NOTES.md sessions 8-9).
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

from ._common import LOG2E, check, check_tensor
from .attention_prefill_fa3 import FA3_CONFIGS, FA3_DEFAULT, attention_prefill_fa3, fa3_supported
from .gemm_tma import TensorDescriptor, tma_ok
from .harness import Tuner, is_interpreter

# (BLOCK_M, BLOCK_N, num_warps, num_stages) per head dim
_CONFIGS = {
    64: [(128, 64, 4, 3), (128, 128, 8, 3), (64, 64, 4, 3)],
    128: [(128, 64, 8, 3), (128, 128, 8, 3), (128, 64, 4, 3), (64, 64, 4, 3)],
    256: [(64, 64, 4, 2), (128, 64, 8, 2), (64, 32, 4, 2)],
}
_INTERP = [(16, 16, 4, 1)]
# K/V through tensor descriptors (Hopper copy engine); needs contiguous k/v (a [B*Hkv*Skv, D] view)
_TMA_CONFIGS = {
    64: [(128, 64, 4, 3, "tma"), (128, 128, 8, 3, "tma")],
    128: [(128, 64, 8, 3, "tma"), (128, 128, 8, 3, "tma"), (64, 64, 4, 3, "tma"), (128, 64, 4, 3, "tma")],
    256: [(64, 64, 4, 2, "tma"), (128, 64, 8, 2, "tma")],
}
# Warp-specialized (Q, K, V, O through device-side descriptors; needs contiguous q and out too):
# num_warps is per warpgroup role -- the compiled kernel runs 3 warpgroups (1 producer + 2 consumers
# of BLOCK_M / 2 rows). Two stages only: with 3 or 4 every row tile whose loop runs past two key
# tiles came out NaN on the H100 (Triton 3.6; kernels/NOTES.md session 8). Session 9 (H100, GPU tests
# of every entry passed; tune_prefill.py): (128, 128, 4, 2) with the cheaper mask of _tiles ties the
# TMA kernel at D 128 causal (1144.8 vs 1144.0 us at B4 S4k, 4027 vs 4022 us at 16k, 0.73 vs 0.75 of
# cuDNN at 2k) and beats it without a mask (1865 vs 2013 us: 0.904 vs 0.838 of cuDNN), so it is a
# default D 128 candidate on Hopper (_WS_DEFAULT); LLMPERF_PREFILL_WS=1 adds the other entries
# (never faster where timed), LLMPERF_PREFILL_WS=0 removes them all.
_WS_ENV = os.environ.get("LLMPERF_PREFILL_WS", "")
_WS_CONFIGS = {
    64: [(128, 128, 4, 2, "ws"), (128, 64, 4, 2, "ws")],
    128: [(128, 128, 4, 2, "ws"), (128, 64, 4, 2, "ws")],
    256: [(128, 32, 4, 2, "ws")],
}
_WS_DEFAULT = {128: [(128, 128, 4, 2, "ws")]}


# The Gluon FA3-style kernel (attention_prefill_fa3.py; Hopper, D 64 / 128, no window): its measured
# entries (FA3_DEFAULT) are tuning candidates wherever it runs; LLMPERF_PREFILL_FA3=1 adds every entry,
# LLMPERF_PREFILL_FA3=0 removes them all. A forced config (config=(.., "fa3"[, flags])) always runs it.
_FA3_ENV = os.environ.get("LLMPERF_PREFILL_FA3", "")


def fa3_candidates(D: int, env: str = _FA3_ENV) -> list:
    """Gluon FA3 tuning candidates for head_dim D: the measured default, all (env "1"), none ("0")."""
    return [] if env == "0" else list((FA3_CONFIGS if env == "1" else FA3_DEFAULT).get(D, []))


def ws_candidates(D: int, env: str = _WS_ENV) -> list:
    """Warp-specialized tuning candidates for head_dim D: the measured default, all (env "1"), none ("0")."""
    return [] if env == "0" else list((_WS_CONFIGS if env == "1" else _WS_DEFAULT).get(D, []))


@triton.jit
def _tiles(acc, l_i, m_i, q, k_base, v_base, skn, svn, start, end, pos, offs_n, offs_d, Skv, WINDOW,
           k_desc, v_desc, row0,
           MASKED: tl.constexpr, CAUSAL: tl.constexpr, HAS_WINDOW: tl.constexpr, BLOCK_N: tl.constexpr,
           USE_TMA: tl.constexpr, WS: tl.constexpr, EVEN_N: tl.constexpr = False):
    for s in tl.range(start, end, BLOCK_N, warp_specialize=WS):
        kn = s + offs_n
        if MASKED:
            inb = kn < Skv
        if USE_TMA:  # rows past Skv belong to the next head (finite) or are zero-filled: masked below
            k = k_desc.load([row0 + s, 0])
            v = v_desc.load([row0 + s, 0])
        elif MASKED:
            k = tl.load(k_base + kn[:, None] * skn + offs_d[None, :], mask=inb[:, None], other=0.0)
            v = tl.load(v_base + kn[:, None] * svn + offs_d[None, :], mask=inb[:, None], other=0.0)
        else:
            k = tl.load(k_base + kn[:, None] * skn + offs_d[None, :])
            v = tl.load(v_base + kn[:, None] * svn + offs_d[None, :])
        qk = tl.dot(q, tl.trans(k))
        if MASKED and WS:  # per score one compare per bound against a per-row limit (kn = s + offs_n);
            # the in-bounds test only for a ragged Skv (EVEN_N: Skv a multiple of BLOCK_N)
            rel = pos - s
            if CAUSAL:
                valid = offs_n[None, :] <= rel[:, None]
                if HAS_WINDOW:
                    valid = valid & (offs_n[None, :] > (rel - WINDOW)[:, None])
                if not EVEN_N:
                    valid = valid & inb[None, :]
            else:
                valid = inb[None, :]
            qk = tl.where(valid, qk, float("-inf"))
        elif MASKED:
            valid = inb[None, :]
            if CAUSAL:
                valid = valid & (kn[None, :] <= pos[:, None])
            if HAS_WINDOW:
                valid = valid & (kn[None, :] > pos[:, None] - WINDOW)
            qk = tl.where(valid, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        if MASKED:  # a row may have seen no key yet: avoid (-inf) - (-inf)
            m_sub = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:
            m_sub = m_new
        p = tl.exp2(qk - m_sub[:, None])
        alpha = tl.exp2(m_i - m_sub)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _prefill_kernel(q_ptr, k_ptr, v_ptr, o_ptr, k_desc, v_desc, Sq, Skv, Hq, Hkv, GROUP, qk_scale, WINDOW,
                    sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sob, soh, som,
                    D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    CAUSAL: tl.constexpr, HAS_WINDOW: tl.constexpr, USE_TMA: tl.constexpr,
                    WS: tl.constexpr, WS_MASKED: tl.constexpr, EVEN_M: tl.constexpr,
                    EVEN_N: tl.constexpr):
    if CAUSAL:
        pid_m = tl.num_programs(0) - 1 - tl.program_id(0)
    else:
        pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // Hq).to(tl.int64)
    h = bh % Hq
    hk = (h // GROUP).to(tl.int64)
    h = h.to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    if WS:  # device-side descriptors (host-built ones hang under autoWS, Triton 3.6 on H100):
        # q / o as [B*Hq*Sq, D] (rows past Sq belong to the next head: never stored), k / v as
        # [B*Hkv*Skv, D]; every tensor contiguous (the wrapper checks). (Rank-3 boxes that would clip
        # at Sq need a reshape that the autoWS pass rejects: "unsupported op type".)
        q_desc = tl.make_tensor_descriptor(q_ptr, shape=[tl.num_programs(1) * Sq, D], strides=[D, 1],
                                           block_shape=[BLOCK_M, D])
        o_desc = tl.make_tensor_descriptor(o_ptr, shape=[tl.num_programs(1) * Sq, D], strides=[D, 1],
                                           block_shape=[BLOCK_M, D])
        kv_rows = (tl.num_programs(1) // Hq) * Hkv * Skv
        k_desc = tl.make_tensor_descriptor(k_ptr, shape=[kv_rows, D], strides=[D, 1], block_shape=[BLOCK_N, D])
        v_desc = tl.make_tensor_descriptor(v_ptr, shape=[kv_rows, D], strides=[D, 1], block_shape=[BLOCK_N, D])
        q = q_desc.load([bh * Sq + pid_m * BLOCK_M, 0])
    else:
        q = tl.load(q_ptr + b * sqb + h * sqh + offs_m[:, None] * sqm + offs_d[None, :],
                    mask=offs_m[:, None] < Sq, other=0.0)
    q = (q * qk_scale).to(q.dtype)
    k_base = k_ptr + b * skb + hk * skh
    v_base = v_ptr + b * svb + hk * svh
    pos = offs_m + (Skv - Sq)
    # first row of this KV head in the [B*Hkv*Skv, D] view (int32: TMA coordinates)
    row0 = ((bh // Hq) * Hkv + (bh % Hq) // GROUP) * Skv
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, D), dtype=tl.float32)
    # Key range [lo, hi) any row of the tile sees, and [ulo, uhi) that every row sees.
    lo = 0
    hi = Skv
    ulo = 0
    uhi = Skv
    if CAUSAL:
        p0 = pid_m * BLOCK_M + (Skv - Sq)
        p1 = p0 + BLOCK_M - 1
        hi = tl.minimum(Skv, p1 + 1)
        uhi = tl.minimum(Skv, p0 + 1)
        if HAS_WINDOW:
            lo = tl.maximum(0, p0 - WINDOW + 1)
            ulo = tl.maximum(0, p1 - WINDOW + 1)
    lo_b = (lo // BLOCK_N) * BLOCK_N
    hi_b = tl.cdiv(hi, BLOCK_N) * BLOCK_N
    a = tl.minimum(tl.maximum(tl.cdiv(ulo, BLOCK_N) * BLOCK_N, lo_b), hi_b)
    z = tl.minimum(tl.maximum((uhi // BLOCK_N) * BLOCK_N, a), hi_b)
    if WS:
        # Warp-specialized (Triton's Hopper autoWS: one producer warpgroup issues the K/V copies, two
        # consumer warpgroups own BLOCK_M / 2 query rows each): it compiles for one key loop only
        # (Triton 3.6 fails on two), so every tile is masked when any may need it (WS_MASKED).
        acc, l_i, m_i = _tiles(acc, l_i, m_i, q, k_base, v_base, skn, svn, lo_b, hi_b, pos, offs_n, offs_d,
                               Skv, WINDOW, k_desc, v_desc, row0, WS_MASKED, CAUSAL, HAS_WINDOW, BLOCK_N, True, True, EVEN_N)
    else:
        acc, l_i, m_i = _tiles(acc, l_i, m_i, q, k_base, v_base, skn, svn, lo_b, a, pos, offs_n, offs_d,
                               Skv, WINDOW, k_desc, v_desc, row0, True, CAUSAL, HAS_WINDOW, BLOCK_N, USE_TMA, False)
        acc, l_i, m_i = _tiles(acc, l_i, m_i, q, k_base, v_base, skn, svn, a, z, pos, offs_n, offs_d,
                               Skv, WINDOW, k_desc, v_desc, row0, False, CAUSAL, HAS_WINDOW, BLOCK_N, USE_TMA, False)
        acc, l_i, m_i = _tiles(acc, l_i, m_i, q, k_base, v_base, skn, svn, z, hi_b, pos, offs_n, offs_d,
                               Skv, WINDOW, k_desc, v_desc, row0, True, CAUSAL, HAS_WINDOW, BLOCK_N, USE_TMA, False)
    o = acc / l_i[:, None]
    if WS and EVEN_M:  # whole tiles only: a ragged last tile would overwrite the next head's rows
        o_desc.store([bh * Sq + pid_m * BLOCK_M, 0], o.to(o_ptr.dtype.element_ty))
    else:
        tl.store(o_ptr + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :],
                 o.to(o_ptr.dtype.element_ty), mask=offs_m[:, None] < Sq)


_tuner = Tuner("attention_prefill")


def _set_allocator(device):
    """Device-side tensor descriptors need scratch memory from Triton's (process-wide) allocator hook."""
    triton.set_allocator(lambda size, align, stream: torch.empty(size, dtype=torch.int8, device=device))


def _bucket(s: int) -> int:
    return 1 << max(7, min(15, (max(s, 1) - 1).bit_length()))


def attention_prefill(q, k, v, causal: bool = True, window: int | None = None,
                      sm_scale: float | None = None, out=None, config=None):
    """FlashAttention-2 forward. q [B, Hq, Sq, D]; k, v [B, Hkv, Skv, D]; returns o [B, Hq, Sq, D]."""
    dts = (torch.bfloat16, torch.float16)
    check_tensor(q, "q", 4, dts)
    check_tensor(k, "k", 4, (q.dtype,))
    check_tensor(v, "v", 4, (q.dtype,))
    B, Hq, Sq, D = q.shape
    Hkv, Skv = k.shape[1], k.shape[2]
    check(tuple(k.shape) == tuple(v.shape), f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}.")
    check(k.shape[0] == B and k.shape[3] == D, f"k must be [B={B}, Hkv, Skv, D={D}], got {tuple(k.shape)}.")
    check(Hkv > 0 and Hq % Hkv == 0, f"Hq ({Hq}) must be a multiple of Hkv ({Hkv}).")
    check(D in (16, 32, 64, 128, 256), f"head_dim must be one of 16, 32, 64, 128, 256, got {D}.")
    check(Sq > 0 and Skv > 0, "Sq and Skv must be positive.")
    check(not causal or Sq <= Skv, f"causal attention needs Sq <= Skv (queries are the last Sq positions), got {Sq} > {Skv}.")
    check(window is None or (causal and window >= 1), "window needs causal=True and window >= 1.")
    scale = (1.0 / math.sqrt(D)) if sm_scale is None else float(sm_scale)
    if out is None:
        out = torch.empty((B, Hq, Sq, D), dtype=q.dtype, device=q.device)
    check(tuple(out.shape) == (B, Hq, Sq, D) and out.dtype == q.dtype and out.stride(-1) == 1,
          f"out must be a {q.dtype} tensor of shape {(B, Hq, Sq, D)} contiguous in D.")

    def launch(c):
        bm, bn, nw, ns = c[:4]
        if len(c) > 4 and c[4] == "fa3":
            check(fa3_supported(q, k, v, window),
                  f"config {c} (Gluon FA3) needs a Hopper GPU, D in {sorted(FA3_CONFIGS)}, bf16/fp16, contiguous "
                  f"q, k, v and no window.")
            check(out.is_contiguous(), f"config {c} (Gluon FA3) needs a contiguous out.")
            attention_prefill_fa3(q, k, v, out, causal, scale, c)
            return
        tma = len(c) > 4
        ws = tma and c[4] == "ws"
        if ws:  # the kernel builds its own descriptors over the contiguous tensors
            check(all(t.is_contiguous() for t in (q, k, v, out)),
                  f"config {c} (warp-specialized) needs contiguous q, k, v and out.")
            _set_allocator(q.device)
            kd, vd = k, v
        elif tma:
            kd = TensorDescriptor.from_tensor(k.view(B * Hkv * Skv, D), [bn, D])
            vd = TensorDescriptor.from_tensor(v.view(B * Hkv * Skv, D), [bn, D])
        else:
            kd, vd = k, v
        grid = (triton.cdiv(Sq, bm), B * Hq)
        _prefill_kernel[grid](q, k, v, out, kd, vd, Sq, Skv, Hq, Hkv, Hq // Hkv, scale * LOG2E,
                              0 if window is None else int(window),
                              q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
                              v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(1), out.stride(2),
                              D=D, BLOCK_M=bm, BLOCK_N=bn, CAUSAL=causal, HAS_WINDOW=window is not None,
                              USE_TMA=tma, WS=ws, WS_MASKED=ws and (causal or window is not None or Skv % bn != 0),
                              EVEN_M=ws and Sq % bm == 0, EVEN_N=ws and Skv % bn == 0,
                              num_warps=nw, num_stages=ns)

    if config is None:
        cands = _INTERP if is_interpreter() else list(_CONFIGS.get(D, _CONFIGS[128 if D > 64 else 64]))
        if not is_interpreter() and k.is_contiguous() and v.is_contiguous() and tma_ok(k.view(-1, D), v.view(-1, D)):
            cands += _TMA_CONFIGS.get(D, [])
            if q.is_contiguous() and out.is_contiguous() and tma_ok(q.view(-1, D), out.view(-1, D)):
                cands += ws_candidates(D)
                if fa3_supported(q, k, v, window):
                    cands += fa3_candidates(D)
        key = (D, causal, window is not None, q.dtype, _bucket(Sq), _bucket(Skv))
        config = _tuner.pick(key, cands, launch)
    launch(config)
    return out


def attention_mask(sq: int, skv: int, causal: bool, window, device) -> torch.Tensor:
    """Boolean [Sq, Skv] visibility mask with the bottom-right-aligned convention above."""
    pos = torch.arange(sq, device=device)[:, None] + (skv - sq)
    j = torch.arange(skv, device=device)[None, :]
    m = torch.ones(sq, skv, dtype=torch.bool, device=device)
    if causal:
        m &= j <= pos
    if window is not None:
        m &= j > pos - window
    return m


def attention_prefill_ref(q, k, v, causal: bool = True, window=None, sm_scale=None):
    """fp32 reference (expands K/V per query head -- fine for a reference, never in the kernel)."""
    B, Hq, Sq, D = q.shape
    g = Hq // k.shape[1]
    kf = k.float().repeat_interleave(g, dim=1)
    vf = v.float().repeat_interleave(g, dim=1)
    scale = (1.0 / math.sqrt(D)) if sm_scale is None else sm_scale
    s = (q.float() @ kf.transpose(-1, -2)) * scale
    s = s.masked_fill(~attention_mask(Sq, k.shape[2], causal, window, q.device), float("-inf"))
    return torch.softmax(s, dim=-1) @ vf
