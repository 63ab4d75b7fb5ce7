"""The v7 W4A16 GEMV ("gemv7", M = 1 first): pre-tiled weight slabs, a balanced stream-K grid and a
multi-stage shared-memory pipeline (cp.async or TMA), so that many weight bytes are in flight.

Why (kernels/NOTES.md, "W4A16"): v6 cut a third of v5's instructions and got slower, so the GEMV is
bound by how it reads memory (v5: each warp load reads 64 B from each of 8 rows 2 KiB apart, only
the next group prefetched). v7 changes the weight stream; the math stays v5's or v6's.

Layout (made once by :func:`repack_gemv7` from the public packing of gemm_w4a16.py; R = rows per
tile, a power of two in 16..256; G = K / 128 groups; T = ceil(N / R) row tiles):

* ``qt`` int32 [T, G, R, 16]: ``qt[t, g, r, c]`` is word ``16 g + c`` of weight row ``n = t R + r``
  in the int32 view of the public uint8 [N, K / 2] layout, i.e. it holds k = 128 g + 8 c + j at
  bits 4j..4j+3 (low nibble first), unsigned codes with zero point 8. Rows n >= N are padding
  (code 8, scale 0). Byte order: the weight is one sequence of C = T G *chunks* of R x 64 bytes,
  chunk ``t G + g`` = rows tR..tR+R-1 of group g, 64 B per row; a warp's 16-byte-per-lane load
  reads 512 contiguous bytes and every program streams one contiguous run of chunks.
* ``st`` [T, G, R] in x's dtype: ``st[t, g, r] = scales[t R + r, g]`` (R x 2 bytes per chunk).

Kernel: a stream-K grid (Osama et al., "Stream-K", PPoPP 2023) of P = PER_SM x #SMs programs per
token; program p owns chunks [p C / P, (p + 1) C / P) (floors): one contiguous slab each, slabs
within one chunk of each other. The chunk loop is ``tl.range(num_stages=NS)``: Triton multi-buffers
the chunk loads in shared memory (cp.async when LOAD = 0, TMA when LOAD = 1), NS - 1 chunks ahead.
Math per chunk as v5 (MATH = 0: exact fp32 dequantization, _dot7_exact) or v6 (MATH = 1: the half2
inline PTX of gemm_w4a16_gemv6.py, x rounded to fp16 so |x| < 65504; GPU only, its fp32 twin runs
in the interpreter). At a tile's (or the slab's) end the [R, 16] accumulator becomes R fp32 row
sums: to y if the program holds the whole tile, else to a workspace slot. Only a slab's first and
last tiles can be shared; they are finished after the chunk loop (v7b, FIX = 1: one two-lane
acq_rel atomic counts the program in at both; the last arrival at a tile loads all its partials in
one masked [MAXC, R] load, sums them in a fixed order -- deterministic -- writes y and re-arms the
counter to zero; v7, FIX = 0: per tile an atomic and a loop of partial loads).

Measured on the H200 (session 5, kernels/NOTES.md "v7", "v7b"): v7 faster than v5 on all four M = 1
layer shapes (2.05-2.82x cuBLAS; v5 1.66-1.87x); MATH = 1 beats MATH = 0 by 6-18%. v7b vs v7: -1.5
us on 4096x14336 (14 sharers per tile), +-0.7 us elsewhere; either fix-up still costs 2-4 us
(FIX = 2 control), the fixed cost left between this kernel and 2.5x cuBLAS.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ._common import cached_repack, check, check_activation, check_out, check_tensor
from .gemm_w4a16_gemv import GROUP, _num_sms, _w4_counters
from .gemm_w4a16_gemv6 import _H_MAGIC, _w4_dot6, _w4_dot6_ref, _w4_x_pairs, _x_half
from .gemm_w4a16_gemv7k import launch_gemv7k
from .harness import is_interpreter

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # pragma: no cover - older Triton: LOAD = 1 unavailable
    TensorDescriptor = None

# Config tuples (ROWS, num_warps, NS stages, PER_SM programs per SM, MATH, LOAD[, CHAIN[, FIX[, SPLIT]]];
# CHAIN 4, FIX 1 (v7b fix-up) and SPLIT 0 (the balanced stream-K grid) when left out). ROWS must equal the repacked weight's R. MATH = 1 (half2
# asm) needs ROWS == 32 x num_warps (each thread holds 4 rows x 4 consecutive words: the pack-of-4
# layout the v6 asm assumes). PER_SM stays within one resident wave (registers / shared memory from
# ptxas -v of triton 3.6 for sm_90a), so the balanced slabs run concurrently. Ordered by the geomean
# over the four M = 1 shapes of the mean of two H200 runs (session5_tune_w4a16_v7b_h200.csv;
# kernels/NOTES.md "v7b"): v7b's fix-up won 4096x14336 by 1.5 us, v7's (FIX 0) 28672x4096 and
# 18944x3584 by 0.5-0.7 us, so both are listed. (128, 4, 1, 6, ...): no pipelining, a control.
GEMV7_CONFIGS = [(128, 4, 4, 3, 1, 1, 4), (128, 4, 4, 3, 1, 1, 4, 0), (128, 4, 4, 4, 1, 0, 4), (128, 4, 3, 5, 1, 1, 4),
                 (128, 4, 4, 4, 1, 0, 4, 0), (256, 8, 4, 2, 1, 1, 4, 0), (128, 4, 4, 4, 1, 1, 2), (256, 8, 4, 2, 1, 1, 4),
                 (128, 4, 6, 3, 1, 0, 4), (128, 4, 1, 6, 1, 0, 4), (128, 4, 6, 2, 1, 1, 4, 0), (128, 4, 6, 2, 1, 1, 4),
                 (128, 4, 4, 4, 1, 1, 4), (256, 8, 6, 2, 1, 1, 4), (64, 2, 8, 6, 1, 1, 4), (128, 4, 8, 2, 1, 1, 4),
                 (256, 4, 4, 3, 0, 1), (64, 2, 6, 8, 0, 1), (128, 4, 4, 4, 0, 0), (128, 4, 3, 4, 0, 1), (128, 4, 4, 4, 0, 1),
                 (128, 4, 6, 1, 1, 1, 4), (256, 8, 4, 2, 0, 1), (128, 4, 6, 2, 0, 1)]
# Tile-aligned grids (v7c, session 6; 9th element SPLIT = s >= 1): P = T s programs, tile t split
# into s runs of floor / ceil(G / s) chunks (program p: tile p // s; p C / P = t G + floor(i G / s)
# for p = t s + i), so no program spans two tiles; s = 1
# is a plain data-parallel grid with no shared tile at all, hence no fix-up and no inter-program
# synchronization (the 2-4 us that v7b's FIX = 2 control measured). PER_SM is unused (the grid is
# not limited to one wave: with no spinning, programs need not be co-resident). Small tiles (32 or
# 64 rows, 1 or 2 warps) give enough programs: 14336 x 4096 -> 448 / 224 tiles.
# v7e (session 6, 10th element KS > 1, gemm_w4a16_gemv7k.py): data-parallel, one program per tile
# with KS x R / 32 warps spread over KS groups per step.
GEMV7_KS_CONFIGS = [(32, 4, 4, 0, 1, 1, 4, 1, 1, 4), (32, 4, 6, 0, 1, 1, 4, 1, 1, 4), (32, 4, 4, 0, 1, 0, 4, 1, 1, 4),
                    (64, 8, 4, 0, 1, 1, 4, 1, 1, 4), (128, 8, 4, 0, 1, 1, 4, 1, 1, 2), (32, 8, 4, 0, 1, 1, 4, 1, 1, 8),
                    (32, 8, 3, 0, 1, 0, 4, 1, 1, 8), (32, 2, 8, 0, 1, 1, 4, 1, 1, 2), (64, 4, 6, 0, 1, 1, 4, 1, 1, 2)]
GEMV7_DP_CONFIGS = [(128, 4, 4, 0, 1, 1, 4, 0, 8), (128, 4, 4, 0, 1, 1, 4, 0, 4), (64, 2, 8, 0, 1, 1, 4, 0, 4),
                    (64, 2, 6, 0, 1, 0, 4, 1, 1), (32, 1, 4, 0, 1, 1, 4, 1, 1)]
# v7d (session 6, FIX = 3): shared tiles finished by polling sentinel-filled partials (no fence, no
# atomic; _w4_gemv7_poll), on the leading stream-K grids and on tile-aligned ones.
GEMV7_V7D_CONFIGS = [(128, 4, 4, 3, 1, 1, 4, 3), (128, 4, 4, 4, 1, 0, 4, 3), (256, 8, 4, 2, 1, 1, 4, 3),
                     (128, 4, 3, 5, 1, 1, 4, 3), (128, 4, 4, 0, 1, 1, 4, 3, 8), (128, 4, 4, 0, 1, 1, 4, 3, 4),
                     (64, 2, 8, 0, 1, 1, 4, 3, 4)]
INTERP_CONFIGS = [(16, 4, 2, 2, 0, 0), (16, 4, 3, 2, 1, 1, 4), (16, 4, 2, 0, 0, 0, 4, 1, 1),
                  (16, 4, 2, 0, 1, 1, 4, 0, 3), (16, 4, 2, 0, 0, 0, 4, 1, 2), (16, 4, 2, 2, 1, 1, 4, 3),
                  (16, 4, 2, 0, 0, 0, 4, 3, 3), (16, 4, 2, 0, 1, 1, 4, 1, 1, 4), (32, 2, 2, 0, 1, 0, 4, 1, 1, 2)]


class Gemv7Weight(NamedTuple):
    """A W4A16 weight in the v7 layout (module doc): qt int32 [T, G, R, 16], st [T, G, R], N rows."""
    qt: torch.Tensor
    st: torch.Tensor
    n: int


def repack_gemv7(qweight: torch.Tensor, scales: torch.Tensor, rows: int = 128) -> Gemv7Weight:
    """Public layout (qweight uint8 [N, K / 2], scales [N, K / 128]) -> the v7 tiled layout."""
    check_tensor(qweight, "qweight", 2, (torch.uint8,))
    check_tensor(scales, "scales", 2, (torch.bfloat16, torch.float16))
    check(rows in (16, 32, 64, 128, 256), f"rows must be a power of two in 16..256, got {rows}.")
    N, K = qweight.shape[0], qweight.shape[1] * 2
    check(K % GROUP == 0 and K > 0, f"K must be a positive multiple of {GROUP}, got {K}.")
    G, T = K // GROUP, triton.cdiv(N, rows)
    check(tuple(scales.shape) == (N, G), f"scales must have shape {(N, G)}, got {tuple(scales.shape)}.")
    q = torch.full((T * rows, K // 2), 0x88, dtype=torch.uint8, device=qweight.device)  # code 8 = 0
    q[:N] = qweight
    s = torch.zeros((T * rows, G), dtype=scales.dtype, device=scales.device)
    s[:N] = scales
    qt = q.view(torch.int32).view(T, rows, G, 16).permute(0, 2, 1, 3).contiguous()
    st = s.view(T, rows, G).permute(0, 2, 1).contiguous()
    return Gemv7Weight(qt, st, N)


def unpack_gemv7(w: Gemv7Weight):
    """Inverse of :func:`repack_gemv7`: (qweight uint8 [N, K / 2], scales [N, K / 128])."""
    T, G, R, _ = w.qt.shape
    q = w.qt.permute(0, 2, 1, 3).reshape(T * R, G * 16).contiguous().view(torch.uint8)
    return q[:w.n].contiguous(), w.st.permute(0, 2, 1).reshape(T * R, G)[:w.n].contiguous()


@triton.jit
def _dot7_exact(w, x01, x23, ONE, IS_BF16: tl.constexpr):
    """sum_j (q_j - 8) x_j per word of w [R, 16] (one group) as [R, 16] fp32, exactly; x01 / x23
    (int64 [16]) hold x[8c..8c+3] / x[8c+4..8c+7] of word column c. Dequantization as v5
    (_w4_gemv5_dot): the nibble at bits 4p..4p+3 OR'd into 1.0f (ONE, a runtime argument so that
    ptxas keeps it in a register) is v = 1 + q 2^(4p - 23); here one FFMA, v 2^(23 - 4p) -
    (2^(23 - 4p) + 8), gives q - 8 exactly (v 2^(23 - 4p) = 2^(23 - 4p) + q is an integer < 2^24
    and the sum is exact), so x needs no pre-scaling (v5 kept a pre-scaled fp32 copy of x, made by
    a prologue launch). Nibbles 0..4 are read in place (p = j), 5..7 from w >> 12 (p = j - 3).
    Per weight: LOP3 + FFMA + FFMA; per word one shift; x widened once per thread and group."""
    xs = (x01.to(tl.int32), (x01 >> 32).to(tl.int32), x23.to(tl.int32), (x23 >> 32).to(tl.int32))
    hw = w >> 12
    part = tl.zeros(w.shape, dtype=tl.float32)
    for j in tl.static_range(8):
        src = w if j < 5 else hw
        v = ((src & (15 << (4 * (j - 3 * (j // 5))))) | ONE).to(tl.float32, bitcast=True)
        sc = 1 << (23 - 4 * (j - 3 * (j // 5)))  # 2^(23 - 4p), p = j - 3 (j // 5)
        d = v * sc - (sc + 8)  # contracted to one FFMA
        part += d * _x_half(xs[j // 2], j % 2 == 1, IS_BF16)[None, :]
    return part


@triton.jit
def _w4_gemv7_kernel(x64_ptr, q_ptr, q_desc, s_ptr, y_ptr, ws_ptr, cnt_ptr, N, T, sxm, sym, C, P, ONE, MAGIC,
                     G: tl.constexpr, ROWS: tl.constexpr, NS: tl.constexpr, MATH: tl.constexpr, LOAD: tl.constexpr,
                     CHAIN: tl.constexpr, IS_BF16: tl.constexpr, USE_ASM: tl.constexpr, FIX: tl.constexpr,
                     MAXC: tl.constexpr):
    """Program (m, p): token row m, chunks [p C / P, (p + 1) C / P) (floors) of the v7 layout.

    x64_ptr: x as int64 [M, K / 4] (row stride sxm); q_ptr / q_desc: qt as int32 (pointer, or a
    descriptor over its [C ROWS, 16] view with block [ROWS, 16]); s_ptr: st as int32 (scale pairs);
    y [M, N] (row stride sym); ws fp32 [M, P, 2, ROWS] (slot 0: the slab's first tile, 1: its
    last); cnt_ptr int32 tile counters [M T], zero at launch and left zero. G (groups per tile row)
    is a compile-time constant (c // G, c % G are multiply-shifts). Shared tiles are finished by
    FIX = 1 (v7b, _w4_gemv7_fixup; MAXC partials per load), 0 (v7, _w4_gemv7_finish per tile) or 2:
    not at all (a timing control; their y rows stay unwritten)."""
    m = tl.program_id(0)
    p = tl.program_id(1)
    offs_r = tl.arange(0, ROWS)
    offs_w = tl.arange(0, 16)
    offs_q = offs_r[:, None] * 16 + offs_w[None, :]
    x_row = x64_ptr + m.to(tl.int64) * sxm + 2 * offs_w
    c0 = (p * C) // P
    c1 = ((p + 1) * C) // P
    t_first = c0 // G
    acc = tl.zeros((ROWS, 16), dtype=tl.float32)
    for c in tl.range(c0, c1, num_stages=NS):
        g = c % G
        if LOAD == 1:
            w = q_desc.load([c * ROWS, 0])
        else:
            w = tl.load(q_ptr + c * (ROWS * 16) + offs_q)  # < 2^31 words: checked by the wrapper
        # the chunk's ROWS scales as ROWS / 2 int32 pairs: 4-byte loads, which Triton can pipeline
        sp = tl.load(s_ptr + c * (ROWS // 2) + tl.arange(0, ROWS // 2))
        s = tl.join(_x_half(sp, False, IS_BF16), _x_half(sp, True, IS_BF16)).reshape(ROWS)[:, None]
        x01 = tl.load(x_row + g * 32)
        x23 = tl.load(x_row + g * 32 + 1)
        if MATH == 0:
            acc += _dot7_exact(w, x01, x23, ONE, IS_BF16) * s
        elif USE_ASM:
            p0, p1, p2, p3 = _w4_x_pairs(x01, x23, IS_BF16)
            acc = _w4_dot6(acc, w, p0, p1, p2, p3, tl.broadcast_to(s, (ROWS, 16)), MAGIC, CHAIN)
        else:
            acc += _w4_dot6_ref(w, x01, x23, IS_BF16) * s
        if (g == G - 1) | (c == c1 - 1):  # end of a tile or of the slab: its rows' sums to y or ws
            _w4_gemv7_put(tl.sum(acc, axis=1), y_ptr, ws_ptr, m, p, c // G, c // G == t_first, N, G, sym, C, P, ROWS)
            acc = tl.zeros((ROWS, 16), dtype=tl.float32)
    # only the slab's first and last tiles can be shared: counted after the loop (an atomic inside
    # it would stop Triton's pipelining)
    t_last = (c1 - 1) // G
    if FIX == 3:
        _w4_gemv7_poll(y_ptr, ws_ptr, m, t_first, c0, c1, N, G, sym, C, P, ROWS, MAXC)
    elif FIX == 1:
        _w4_gemv7_fixup(y_ptr, ws_ptr, cnt_ptr, m, t_first, t_last, N, G, T, sym, C, P, ROWS, MAXC)
    elif FIX == 0:
        _w4_gemv7_finish(y_ptr, ws_ptr, cnt_ptr, m, t_first, N, G, T, sym, C, P, ROWS)
        if t_last != t_first:
            _w4_gemv7_finish(y_ptr, ws_ptr, cnt_ptr, m, t_last, N, G, T, sym, C, P, ROWS)


@triton.jit
def _owner(c, C, P):
    """The program whose slab holds chunk c: the largest p with (p C) // P <= c."""
    return ((c + 1) * P - 1) // C


@triton.jit
def _w4_gemv7_put(r, y_ptr, ws_ptr, m, p, t, first, N, G, sym, C, P, ROWS: tl.constexpr):
    """Row sums r [ROWS] of program p's part of tile t: to y if p holds the whole tile, else to
    p's workspace slot (0 for the slab's first tile, 1 for its last). Masked stores, no branches."""
    offs = tl.arange(0, ROWS)
    others = offs * 0 + (_owner((t + 1) * G - 1, C, P) - _owner(t * G, C, P))  # other programs in tile t
    tl.store(y_ptr + m.to(tl.int64) * sym + t * ROWS + offs, r.to(y_ptr.dtype.element_ty),
             mask=(t * ROWS + offs < N) & (others == 0))
    slot = tl.where(first, 0, 1)
    tl.store(ws_ptr + ((m * P + p) * 2 + slot).to(tl.int64) * ROWS + offs, r, mask=others > 0)


@triton.jit
def _w4_gemv7_finish(y_ptr, ws_ptr, cnt_ptr, m, t, N, G, T, sym, C, P, ROWS: tl.constexpr):
    """If tile t is shared by several programs: count this one in (acq_rel, after a CTA barrier
    that orders the workspace stores, as v5's split-K); the last to arrive sums the tile's partials
    in program order, writes y and re-arms the counter to zero (deterministic, no memset launch)."""
    p_lo = _owner(t * G, C, P)
    p_hi = _owner((t + 1) * G - 1, C, P)
    if p_lo != p_hi:
        tl.debug_barrier()
        arrived = tl.atomic_add(cnt_ptr + m * T + t, 1, sem="acq_rel", scope="gpu")
        if arrived == p_hi - p_lo:
            offs = tl.arange(0, ROWS)
            tot = tl.zeros((ROWS,), dtype=tl.float32)
            for q in range(p_lo, p_hi + 1):  # after the chunk loop, so that one stays innermost
                sq = tl.where(t == ((q * C) // P) // G, 0, 1)  # tile t is q's first tile or its last
                tot += tl.load(ws_ptr + ((m * P + q) * 2 + sq).to(tl.int64) * ROWS + offs, cache_modifier=".cg")
            tl.store(y_ptr + m.to(tl.int64) * sym + t * ROWS + offs, tot.to(y_ptr.dtype.element_ty),
                     mask=t * ROWS + offs < N)
            tl.atomic_xchg(cnt_ptr + m * T + t, 0, sem="relaxed", scope="gpu")


@triton.jit
def _w4_gemv7_fixup(y_ptr, ws_ptr, cnt_ptr, m, t_first, t_last, N, G, T, sym, C, P, ROWS: tl.constexpr,
                    MAXC: tl.constexpr):
    """v7b: the slab's shared first / last tiles are counted in by ONE two-lane acq_rel atomic (lane
    0: t_first, 1: t_last; one round trip for both, after a CTA barrier that orders the workspace
    stores); the last arrival at a tile sums it (_w4_gemv7_sum). v7 (_w4_gemv7_finish): per tile,
    one tile after the other, a barrier, an atomic and a loop of partial loads."""
    lo0, hi0 = _owner(t_first * G, C, P), _owner((t_first + 1) * G - 1, C, P)
    lo1, hi1 = _owner(t_last * G, C, P), _owner((t_last + 1) * G - 1, C, P)
    need0, need1 = hi0 > lo0, (hi1 > lo1) & (t_last != t_first)
    if need0 | need1:
        lane = tl.arange(0, 2)  # lane 0: t_first, 1: t_last
        tt = tl.where(lane == 0, t_first, t_last)
        need = tl.where(lane == 0, need0.to(tl.int32), need1.to(tl.int32)) != 0
        tl.debug_barrier()
        arrived = tl.atomic_add(cnt_ptr + m * T + tt, 1, mask=need, sem="acq_rel", scope="gpu")
        last = (need & (arrived == tl.where(lane == 0, hi0 - lo0, hi1 - lo1))).to(tl.int32)
        if tl.sum(tl.where(lane == 0, last, 0), axis=0) > 0:
            _w4_gemv7_sum(y_ptr, ws_ptr, cnt_ptr, m, t_first, lo0, hi0, N, G, T, sym, C, P, ROWS, MAXC)
        if tl.sum(tl.where(lane == 1, last, 0), axis=0) > 0:
            _w4_gemv7_sum(y_ptr, ws_ptr, cnt_ptr, m, t_last, lo1, hi1, N, G, T, sym, C, P, ROWS, MAXC)


@triton.jit
def _w4_gemv7_sum(y_ptr, ws_ptr, cnt_ptr, m, t, lo, hi, N, G, T, sym, C, P, ROWS: tl.constexpr, MAXC: tl.constexpr):
    """Last arrival at tile t (programs lo..hi hold it): partials as [MAXC, ROWS] masked loads (one
    L2 round trip when MAXC >= hi - lo + 1, the launcher's choice up to a register cap), summed by
    tl.sum in a fixed tree order (deterministic); y written, the counter re-armed to zero."""
    offs, j = tl.arange(0, ROWS), tl.arange(0, MAXC)
    tot = tl.zeros((ROWS,), dtype=tl.float32)
    for q0 in tl.range(lo, hi + 1, MAXC, num_stages=1):
        q = q0 + j
        sq = tl.where(t == ((q * C) // P) // G, 0, 1)  # tile t is q's first tile (slot 0) or its last
        row = ws_ptr + ((m * P + q) * 2 + sq).to(tl.int64) * ROWS
        part = tl.load(row[:, None] + offs[None, :], mask=(q <= hi)[:, None], other=0.0, cache_modifier=".cg")
        tot += tl.sum(part, axis=0)
    tl.store(y_ptr + m.to(tl.int64) * sym + t * ROWS + offs, tot.to(y_ptr.dtype.element_ty), mask=t * ROWS + offs < N)
    tl.atomic_xchg(cnt_ptr + m * T + t, 0, sem="relaxed", scope="gpu")


@triton.jit
def _w4_gemv7_poll(y_ptr, ws_ptr, m, t, c0, c1, N, G, sym, C, P, ROWS: tl.constexpr, MAXC: tl.constexpr):
    """v7d (FIX = 3): no fence, no atomic. The workspace holds the bit pattern 0xFFFFFFFF (a NaN
    that fp32 arithmetic never produces: PTX ISA, "floating-point instructions" -- NaN results are
    the canonical 0x7FFFFFFF) wherever no partial is waiting. A shared tile is finished by the
    program holding its last chunk, which is also the highest-numbered of its sharers: after its
    own chunk loop it reloads (volatile, past L1) the sharers' [MAXC, ROWS] partials until no word
    is the sentinel, sums them in a fixed order (deterministic), writes y and stores the sentinel
    back. The contributors (lower program ids, dispatched first: the waiting assumption of
    decoupled look-back scans, Merrill & Garland 2016; the stream-K grid is one resident wave)
    only stored their partials in the loop. Only tile t (the slab's first) can need this program:
    it started before c0 and ends within the slab."""
    if (t * G < c0) & ((t + 1) * G <= c1):
        lo, hi = _owner(t * G, C, P), _owner((t + 1) * G - 1, C, P)
        offs, j = tl.arange(0, ROWS), tl.arange(0, MAXC)
        tl.debug_barrier()  # this program's own partial (stored by other threads of the CTA) first
        tot = tl.zeros((ROWS,), dtype=tl.float32)
        for q0 in tl.range(lo, hi + 1, MAXC, num_stages=1):
            q = q0 + j
            sq = tl.where(t == ((q * C) // P) // G, 0, 1)  # tile t is q's first tile (slot 0) or its last
            ptrs = (ws_ptr + ((m * P + q) * 2 + sq).to(tl.int64) * ROWS)[:, None] + offs[None, :]
            mask = (q <= hi)[:, None]
            bits = tl.load(ptrs.to(tl.pointer_type(tl.int32)), mask=mask, other=0, volatile=True)
            while tl.sum((bits == -1).to(tl.int32)) > 0:
                bits = tl.load(ptrs.to(tl.pointer_type(tl.int32)), mask=mask, other=0, volatile=True)
            tot += tl.sum(bits.to(tl.float32, bitcast=True), axis=0)
            tl.store(ptrs.to(tl.pointer_type(tl.int32)), tl.full((MAXC, ROWS), -1, tl.int32), mask=mask)
        tl.store(y_ptr + m.to(tl.int64) * sym + t * ROWS + offs, tot.to(y_ptr.dtype.element_ty), mask=t * ROWS + offs < N)


def gemv7_programs(C: int, programs: int) -> int:
    """P of the balanced stream-K split of C chunks over about ``programs`` programs: program p
    owns chunks [p C / P, (p + 1) C / P) (floors), so slabs differ by at most one chunk."""
    return max(1, min(programs, C))


@functools.lru_cache(maxsize=256)
def gemv7_sharers(C: int, P: int, G: int) -> int:
    """Most programs holding parts of one tile (G chunks): max over t of owner((t + 1) G - 1) -
    owner(t G) + 1, owner(c) = ((c + 1) P - 1) // C (the kernel's _owner)."""
    own = lambda c: ((c + 1) * P - 1) // C  # noqa: E731
    return max(own((t + 1) * G - 1) - own(t * G) + 1 for t in range(C // G))


def gemv7_maxc(C: int, P: int, G: int, rows: int, warps: int) -> int:
    """MAXC of the v7b fix-up: the sharers of a tile rounded up to a power of two, so that its
    partials are one [MAXC, rows] load; capped at 32 fp32 registers per thread (1024 x warps / rows;
    more sharers than the cap: ceil(sharers / MAXC) loads, one after the other)."""
    return min(triton.next_power_of_2(gemv7_sharers(C, P, G)), max(1, 1024 * warps // rows))


def gemm_w4a16_gemv7(x, w: Gemv7Weight, out=None, config=None, programs=None):
    """``y = x @ W^T`` for x [M, K] bf16/fp16 and W in the v7 layout (:func:`repack_gemv7`); y [M, N]
    in x's dtype. Designed for M = 1 (each token streams the whole weight); config: a GEMV7_CONFIGS
    tuple; ``programs`` (tests) overrides PER_SM x #SMs, the number of programs per token of the
    stream-K grid (SPLIT = 0; a tile-aligned grid, SPLIT = s >= 1, always has T s programs)."""
    interpreter = is_interpreter()
    check(isinstance(w, Gemv7Weight), f"w must be a Gemv7Weight from repack_gemv7, got {type(w).__name__}.")
    check_tensor(w.qt, "w.qt", 4, (torch.int32,))
    T, G, R, W16 = w.qt.shape
    check(W16 == 16 and w.qt.is_contiguous(), f"w.qt must be a contiguous [T, G, R, 16] tensor, got {tuple(w.qt.shape)}.")
    check(0 < w.n <= T * R and T == triton.cdiv(w.n, R), f"w.n = {w.n} does not match {T} tiles of {R} rows.")
    check_activation(x, G * GROUP)
    check_tensor(w.st, "w.st", 3, (x.dtype,))
    check(tuple(w.st.shape) == (T, G, R) and w.st.is_contiguous(), f"w.st must be a contiguous {(T, G, R)} tensor.")
    cfg = config if config is not None else _default_config(R, interpreter)
    rows, nw, ns, per_sm, math, load = cfg[:6]
    chain, fix = cfg[6] if len(cfg) > 6 else 4, cfg[7] if len(cfg) > 7 else 1
    split, ks = cfg[8] if len(cfg) > 8 else 0, cfg[9] if len(cfg) > 9 else 1
    check(fix in (0, 1, 2, 3), f"FIX must be 0 (v7), 1 (v7b), 3 (v7d) or 2 (timing control, wrong results), got {cfg}.")
    check(fix != 3 or split != 1, f"FIX = 3 is for shared tiles, SPLIT = 1 shares none, got {cfg}.")
    check(ks == 1 or split == 1, f"KS > 1 (v7e, gemm_w4a16_gemv7k.py) needs the data-parallel grid, SPLIT = 1, got {cfg}.")
    check(0 <= split <= G, f"SPLIT must be 0 (stream-K) or 1..{G} (runs per tile of {G} groups), got {cfg}.")
    check(rows == R, f"config {cfg} is for {rows}-row tiles, the weight has {R}.")
    check(math == 0 or interpreter or R * ks == 32 * nw, f"MATH = 1 needs ROWS x KS == 32 x num_warps, got {cfg}.")
    check(load == 0 or TensorDescriptor is not None, "LOAD = 1 needs triton.tools.tensor_descriptor.")
    check(w.qt.numel() < 2**31, "the weight must have fewer than 2^31 int32 words (32-bit offsets).")
    M, N = x.shape[0], w.n
    y = check_out(out, (M, N), x.dtype, x.device)
    if x.stride(1) != 1 or x.stride(0) % 4 or x.storage_offset() % 4:
        x = x.contiguous()  # the int64 view needs 8-byte aligned rows
    x64, C = x.view(torch.int64), T * G
    if ks > 1:  # v7e: one program per tile, warps over KS groups (no shared tile, no workspace)
        launch_gemv7k(x64, w.qt, w.st.view(torch.int32), y, N, (*cfg[:8], split, ks), interpreter, TensorDescriptor)
        return y
    if split:  # tile-aligned: P = T s, program p owns chunks [p G / s, (p + 1) G / s) of tile p // s
        P = T * split
        fix = 2 if split == 1 else fix  # s = 1: no tile is shared, so the fix-up is dead code (compiled out)
    else:
        P = gemv7_programs(C, programs or per_sm * _num_sms(x.device))
    maxc = gemv7_maxc(C, P, G, R, nw)
    check((C + 1) * (P + maxc) < 2**31, "C x P must stay below 2^31 (32-bit slab arithmetic).")
    if fix == 3:  # persistent, sentinel-filled (0xFFFFFFFF) and left so by every launch
        ws = _sentinel_workspace(x.device, M * P * 2 * R).view(torch.float32)
    else:
        ws = torch.empty((M, P, 2, R) if split != 1 else (1,), dtype=torch.float32, device=x.device)
    cnt = _w4_counters(x.device, M * T)
    s32 = w.st.view(torch.int32)  # pairs of scales (rows 2i, 2i + 1)
    desc = TensorDescriptor.from_tensor(w.qt.view(C * R, 16), [R, 16]) if load == 1 else w.qt
    _w4_gemv7_kernel[(M, P)](x64, w.qt, desc, s32, y, ws, cnt, N, T, x64.stride(0), y.stride(0), C, P,
                             0x3F800000, _H_MAGIC, G=G, ROWS=R, NS=ns, MATH=math, LOAD=load, CHAIN=chain,
                             IS_BF16=x.dtype == torch.bfloat16, USE_ASM=not interpreter, FIX=fix, MAXC=maxc,
                             num_warps=nw, num_stages=ns)
    return y


_SENTINEL_WS: dict = {}


def _sentinel_workspace(device, n: int) -> torch.Tensor:
    """int32 workspace of at least n words, all 0xFFFFFFFF (v7d's 'no partial yet'); allocated and
    filled once per device (outside any graph capture if the first call is eager), like the tile
    counters of gemm_w4a16_gemv._w4_counters; every FIX = 3 launch leaves it filled again."""
    key = str(device)
    w = _SENTINEL_WS.get(key)
    if w is None or w.numel() < n:
        w = torch.full((max(n, 1 << 16),), -1, dtype=torch.int32, device=device)
        _SENTINEL_WS[key] = w
    return w


def _default_config(rows: int, interpreter: bool):
    """The first listed config for this tile height (the measured best order), else a MATH = 0 one."""
    return next((c for c in (INTERP_CONFIGS if interpreter else GEMV7_CONFIGS) if c[0] == rows), (rows, 4, 3, 2, 0, 0))


# Public-layout entry for gemm_w4a16 (path "gemv7"): the repack is done once per weight tensor and
# kept while that tensor object lives (keyed by id, checked by a weak reference and the tensor's
# version counter, so an in-place update or a new tensor at the same address repacks).
_REPACKED: dict = {}


def _cached_repack(qweight, scales, rows: int) -> Gemv7Weight:
    return cached_repack(_REPACKED, qweight, scales, rows, repack_gemv7)


def launch_gemv7_public(x, qweight, scales, y, cfg):
    """gemm_w4a16's "gemv7" path: cfg = (ROWS, warps, stages, PER_SM, MATH, LOAD[, CHAIN[, FIX[, SPLIT]]])."""
    gemm_w4a16_gemv7(x, _cached_repack(qweight, scales, cfg[0]), out=y, config=cfg)
