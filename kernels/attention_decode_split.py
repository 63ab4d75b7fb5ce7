"""Persistent ("flat") split kernel of decode attention (v7; used by :mod:`.attention_decode`).

The grid kernel of :mod:`.attention_decode` launches (B*Hkv) x splits programs, one KV slice each.
This kernel launches P = ``DecodeConfig.persist`` x #SMs programs over the FLATTENED tile space
instead: tile t in [0, T), T = B*Hkv*TPH, TPH = ceil(max_kv_len / BLOCK_N) tiles per
(sequence, KV head) ``bh``; program p takes the contiguous range [floor(p*T/P), floor((p+1)*T/P)),
so every program gets the same number of tiles (+-1) whatever B*Hkv is -- the Stream-K partition
of GEMM (Osama, Merrill, Cecka, Garland, Owens, "Stream-K: Work-centric Parallel Decomposition for
Dense Matrix-Matrix Multiplication on the GPU", PPoPP 2023) applied to Flash-Decoding's split
(Dao et al., 2023): no wave quantisation when B*Hkv does not divide the SM count (the grid
kernel's 264/32 = 8.25 splits at B4 becomes 288 programs for 264 slots), and all of a program's
tiles go through ONE software-pipelined loop. FlashInfer's decode scheduler balances the same way
(fixed-size KV chunks spread over a persistent grid; Ye et al., "FlashInfer", MLSys 2025); the
range is static here (the CUDA block scheduler places all P programs at once, P <= resident slots).

Inside the loop a program's range may cross from one (sequence, KV head) into the next: at the
last tile of each segment it writes the segment's partial (normalised output, base-2 log-sum-exp)
and restarts its online softmax. Segment of program p in ``bh`` goes to slot p - owner(bh*TPH),
owner(x) = ((x+1)*P - 1) // T being the program that holds tile x, so the partials of ``bh`` are
slots 0 .. n(bh)-1, n(bh) = owner(bh*TPH + TPH - 1) - owner(bh*TPH) + 1 <= NS (:func:`flat_slots`).
A second launch (:func:`_flat_combine_kernel`, optionally a programmatic dependent launch) merges
them per output row with the one-pass merge of :mod:`.attention_decode_combine`.

Shorter start-up chain than the grid kernel (offline sm_90 SASS of the grid kernel, Triton 3.6:
its first K/V load waits for ``kv_lens[b]`` (loop bounds and masks) and for q (scaled and stored
to shared memory before the loop), one dependent global-memory round trip per program):
  * the loop bounds come from host integers (T, P); with ``EAGER`` (contiguous K/V, B == 1 by
    default) the load masks do too (``kn < MAXLEN``, the host's max_kv_len), so the first tiles
    are requested by the first instructions; kv_lens only masks the scores (``kn <= pos``). For
    B > 1 a sequence shorter than max_kv_len would stream dead tokens, so the loads are masked by
    its kv_len there (paged K/V always: block-table entries past a sequence's end may be garbage);
  * q is loaded inside the loop (it changes with ``bh``; 1-4 KiB per tile from L2, pipelined with
    K/V) and the softmax scale is applied to the scores, so nothing in front of the loop waits.

Measured (NOTES.md, decode v7; tune_decode run 5, H200): correct in the 14 GPU tests of it (58 GPU decode tests passed),
but not faster than the grid kernel -- B1 L32k 39.2 vs 37.9 us, L131k 126.9 vs 127.3 us, paged16
144.5 vs 130.8 us, B16 L4k 69.2 vs 64.8 us -- so the wrapper uses it only when asked (``persist``).

Layouts and dtypes as :func:`.attention_decode.attention_decode`: q [B, Hq, Lq, D]; contiguous
K/V [B, Hkv, S, D] or paged [blocks, page, Hkv, D] + block_table [B, max_blocks]; bf16/fp16 or
fp8 e4m3 K/V (scales folded as in the grid kernel). Partials: op fp32 [B*Hq*Lq rows, NS, D],
lse fp32 [rows, NS].
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .attention_decode_combine import _combine_row, e4m3_to_f16, gdc_launch_dependents, gdc_wait
from .attention_decode_step import update_keys, update_rows


@triton.jit
def _owner(x, P, T):
    """Program holding flat tile x under the floor partition start(p) = p*T // P."""
    return ((x + 1) * P - 1) // T  # int32 (wrapper: (P + 1) * T < 2**31)


@triton.jit
def _flat_kernel(q_ptr, k_ptr, v_ptr, bt_ptr, lens_ptr, op_ptr, lse_ptr,
                 Hq, Hkv, Lq, G, qk_scale, v_scale, TPH, T, P, NS, MAXLEN,
                 sqb, sqh, sqm, skb, skh, skn, svb, svh, svn, sbt,
                 D: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, PAGED: tl.constexpr,
                 PAGE: tl.constexpr, KV_FP8: tl.constexpr, PDL: tl.constexpr, SWAP: tl.constexpr,
                 CVT: tl.constexpr, EAGER: tl.constexpr):
    """Program p: online softmax over flat tiles [p*T//P, (p+1)*T//P) (BLOCK_N tokens each) for the
    G*Lq query rows of each tile's KV head; one partial per (program, bh) segment (module doc).
    qk_scale = softmax scale * k_scale * log2(e) multiplies the scores; v_scale the partials."""
    if PDL:
        gdc_launch_dependents()  # the combine kernel's programs may be scheduled now (they wait)
    p = tl.program_id(0)
    t0 = p * T // P  # int32: the wrapper checks (P + 1) * T < 2**31
    t1 = (p + 1) * T // P
    bh = t0 // TPH  # the tile's (sequence b, KV head hk) and tile index j in it: carried, not divided
    j = t0 - bh * TPH
    b = bh // Hkv
    hk = bh - b * Hkv
    r = tl.arange(0, BLOCK_R)
    g = r // Lq
    i = r % Lq
    rvalid = r < G * Lq
    offs_d = tl.arange(0, D)
    offs_n = tl.arange(0, BLOCK_N)
    # loop-invariant parts of the addresses (int32); per tile only scalar bases change
    q_in = g[:, None] * sqh + i[:, None] * sqm + offs_d[None, :]
    k_in = offs_n[:, None] * skn + offs_d[None, :]
    v_in = offs_n[:, None] * svn + offs_d[None, :]
    m_i = tl.full((BLOCK_R,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_R,), dtype=tl.float32)
    if SWAP:
        acc = tl.zeros((D, BLOCK_R), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_R, D), dtype=tl.float32)
    for t in range(t0, t1):
        b64 = b.to(tl.int64)
        s = j * BLOCK_N
        kv_len = tl.load(lens_ptr + b)
        kn = s + offs_n
        if EAGER:  # masks from host integers only: the first loads wait for nothing
            inb = kn < MAXLEN
        else:
            inb = kn < kv_len
        if PAGED:
            if PAGE >= BLOCK_N:  # the tile lies in one page: one scalar block-table load
                pg = tl.load(bt_ptr + b64 * sbt + s // PAGE).to(tl.int64)
                kp = k_ptr + (pg * skb + hk * skh + (s % PAGE) * skn) + k_in
                vp = v_ptr + (pg * svb + hk * svh + (s % PAGE) * svn) + v_in
            else:
                page = tl.load(bt_ptr + b64 * sbt + kn // PAGE, mask=inb, other=0).to(tl.int64)
                kp = k_ptr + (page * skb + hk * skh + (kn % PAGE) * skn)[:, None] + offs_d[None, :]
                vp = v_ptr + (page * svb + hk * svh + (kn % PAGE) * svn)[:, None] + offs_d[None, :]
        else:
            kp = k_ptr + (b64 * skb + hk * skh + s.to(tl.int64) * skn) + k_in
            vp = v_ptr + (b64 * svb + hk * svh + s.to(tl.int64) * svn) + v_in
        q = tl.load(q_ptr + (b64 * sqb + (hk * G) * sqh) + q_in, mask=rvalid[:, None], other=0.0)
        k = tl.load(kp, mask=inb[:, None], other=0.0)
        v = tl.load(vp, mask=inb[:, None], other=0.0)
        if KV_FP8:  # compute in fp16 (as the grid kernel)
            q = q.to(tl.float16)
            k = e4m3_to_f16(k, CVT >= 2)
            v = e4m3_to_f16(v, CVT >= 1)
        else:
            k = k.to(q.dtype)
            v = v.to(q.dtype)
        pos = kv_len - Lq + i  # kn <= pos implies kn < kv_len: the only score mask needed
        if SWAP:  # S^T = K Q^T, O^T += V^T P^T (keys as the MMA's rows)
            m_i, l_i, acc = update_keys(tl.trans(q), k, v, kn, inb, pos, m_i, l_i, acc, qk_scale, True)
        else:
            m_i, l_i, acc = update_rows(q, k, v, kn, inb, pos, m_i, l_i, acc, qk_scale, True)
        wrap = j + 1 == TPH  # this tile ends its (sequence, KV head)
        if wrap | (t + 1 == t1):  # end of this program's segment of bh: write its partial, restart
            seg = p - _owner((b * Hkv + hk) * TPH, P, T)
            row = (b64 * Hq + hk * G + g) * Lq + i  # [BLOCK_R] rows of [B, Hq, Lq]
            has = l_i > 0
            inv = tl.where(has, v_scale / tl.where(has, l_i, 1.0), 0.0)
            if SWAP:
                tl.store(op_ptr + (row[None, :] * NS + seg) * D + offs_d[:, None], acc * inv[None, :],
                         mask=rvalid[None, :])
            else:
                tl.store(op_ptr + (row[:, None] * NS + seg) * D + offs_d[None, :], acc * inv[:, None],
                         mask=rvalid[:, None])
            lse = tl.where(has, m_i + tl.log2(tl.where(has, l_i, 1.0)), float("-inf"))
            tl.store(lse_ptr + row * NS + seg, lse, mask=rvalid)
            m_i = tl.full((BLOCK_R,), float("-inf"), dtype=tl.float32)
            l_i = tl.zeros((BLOCK_R,), dtype=tl.float32)
            acc = tl.zeros_like(acc)
        j = tl.where(wrap, 0, j + 1)
        hk = tl.where(wrap, hk + 1, hk)
        b = tl.where(hk == Hkv, b + 1, b)
        hk = tl.where(hk == Hkv, 0, hk)


@triton.jit
def _flat_combine_kernel(op_ptr, lse_ptr, o_ptr, GLq, TPH, T, P, NS, D: tl.constexpr, SB: tl.constexpr,
                         PDL: tl.constexpr):
    """One program per output row (b, h, i): merges the n(bh) partials of its (sequence, KV head);
    the group's G*Lq rows are consecutive, so bh = row // (G*Lq)."""
    if PDL:
        gdc_wait()  # launched early (programmatic dependent launch): wait for the split kernel
    row = tl.program_id(0).to(tl.int64)
    first = row // GLq * TPH
    n = _owner(first + TPH - 1, P, T) - _owner(first, P, T) + 1
    _combine_row(op_ptr + row * NS * D, lse_ptr + row * NS, o_ptr + row * D, 0, n, D, SB)


def flat_slots(tiles_per_head: int, total_tiles: int, programs: int) -> int:
    """NS, an upper bound of the partials one (sequence, KV head) gets: programs hold >= m =
    T // P tiles each, so TPH consecutive tiles meet at most (TPH - 2) // m + 2 of them (the
    programs strictly inside hold >= m tiles each, the two at the ends >= 1)."""
    if tiles_per_head <= 1:
        return 1
    return int(min(tiles_per_head, (tiles_per_head - 2) // (total_tiles // programs) + 2))


# Tuning candidates (block_n, warps, stages, swap, programs per SM), fastest first as measured (tune_decode
# run 5, H200); resident programs per SM must be >= persist, else the launch runs in two waves. Registers /
# shared memory per program of the H200 build (Triton 3.6, D=128, G*Lq=4): contiguous (64,4,3) 168 / 80 KiB
# -> 2 per SM; (64,8,3) 128 / 80 KiB -> 2; (32,4,4) 128 / 68 KiB -> 3; (64,8,5) 128 / 152 KiB -> 1; swap
# (64,4,3) 192 / 52 KiB -> 2. Paged16: (32,4,4) 118 / 28 KiB -> 4; (64,4,3) 168 / 44 KiB -> 2; (64,8,5)
# 120 / 80 KiB -> 1; swap (64,4,3) 186 / 34 KiB -> 2.
FLAT_TILES = [(64, 4, 3, False, 2), (64, 8, 3, False, 2), (32, 4, 4, False, 3), (64, 8, 5, False, 1),
              (64, 4, 3, True, 2)]
FLAT_TILES_PAGED = [(32, 4, 4, False, 4), (64, 4, 3, False, 2), (32, 4, 4, False, 3), (64, 8, 5, False, 1),
                    (64, 4, 3, True, 2)]
_EAGER_MAX_BATCH = 1  # EAGER (host-bounded load masks) for contiguous K/V when B <= this
# the last flat launch: programs P, partial slots NS, EAGER, and (GPU) the compiled kernel's registers per
# thread and shared memory per program (benchmarks check P against the resident programs per SM)
LAST_FLAT: dict = {}


def flat_candidates(paged: bool) -> list:
    """The flat tiles as DecodeConfig fields (block_n, warps, stages, splits, combine, swap, cvt, persist)."""
    return [(bn, nw, ns, None, "kernel", sw, 0, pe) for bn, nw, ns, sw, pe in (FLAT_TILES_PAGED if paged else FLAT_TILES)]


def flat_launch(q, k, v, kv_lens, bt, out, c, Hkv, paged, page, max_len, qk_scale, v_scale, ks, vs, block_r, cvt,
                num_sms, pdl):
    """Launch the flat split kernel + its combine for config ``c`` (a DecodeConfig: block_n, num_warps,
    num_stages, swap, persist = programs per SM; P = persist * num_sms, at most T). ``ks``/``vs``:
    (batch, head, token) element strides of K/V; ``max_len``: host bound of kv_lens (tiles per head =
    ceil(max_len / block_n)); ``qk_scale`` includes log2(e). Returns the number of programs P."""
    B, Hq, Lq, D = q.shape
    G = Hq // Hkv
    tph = triton.cdiv(max_len, c.block_n)
    T = B * Hkv * tph
    P = max(1, min(int(c.persist) * num_sms, T))
    if (P + 1) * T >= 2**31:
        raise ValueError(f"persistent decode: {P} programs x {T} tiles overflow int32; use persist=0.")
    ns = flat_slots(tph, T, P)
    rows = B * Hq * Lq
    op = torch.empty((rows, ns, D), dtype=torch.float32, device=q.device)
    lse = torch.empty((rows, ns), dtype=torch.float32, device=q.device)
    eager = not paged and B <= _EAGER_MAX_BATCH
    kern = _flat_kernel[(P,)](
        q, k, v, bt, kv_lens, op, lse, Hq, Hkv, Lq, G, qk_scale, v_scale, tph, T, P, ns, max_len,
        q.stride(0), q.stride(1), q.stride(2), *ks, *vs, bt.stride(0),
        D=D, BLOCK_R=block_r, BLOCK_N=c.block_n, PAGED=paged, PAGE=page, KV_FP8=k.dtype == torch.float8_e4m3fn,
        PDL=pdl, SWAP=bool(c.swap), CVT=cvt, EAGER=eager, num_warps=c.num_warps, num_stages=c.num_stages)
    LAST_FLAT.update(programs=P, slots=ns, eager=eager, regs=getattr(kern, "n_regs", None),
                     shared=getattr(getattr(kern, "metadata", None), "shared", None))
    sb = min(64, 8192 // D, triton.next_power_of_2(ns))
    _flat_combine_kernel[(rows,)](op, lse, out, G * Lq, tph, T, P, ns, D=D, SB=sb, PDL=pdl, num_warps=4,
                                  **({"launch_pdl": True} if pdl else {}))
    return P
