"""The v7e W4A16 GEMV ("gemv7" with KS > 1, M = 1 first): gemv7's tiled weight layout on a plain
data-parallel grid -- one program per row tile, no inter-program synchronization at all -- with the
program's warps spread over KS consecutive groups of its tile instead of over more rows.

Why (kernels/NOTES.md, "v7c" .. "v7e"): gemv7's stream-K grid needs a fix-up of shared tiles that
costs 1.2-2.9 us per call (FIX = 2 control, session 5 and 6), but a data-parallel grid of gemv7's
kernel (one program per tile, SPLIT = 1) was slower still (14.6-16 us vs 13.1 on 14336 x 4096):
with MATH = 1 a warp always covers 32 rows, so a data-parallel grid has only N / 32 warps
(3.4 per SM on 14336 rows) and too few bytes in flight. Here a program holding R rows runs
KS x R / 32 warps: each step loads KS consecutive chunks of its tile (contiguous in the v7 layout:
one [KS, R, 16] int32 TMA box or cp.async block), warps take different groups, and the KS x R
partial row sums are added across groups once, at the tile's end (a CTA reduction through shared
memory). Same per-thread work per step as gemv7 (16 words = 128 weights).

Layout: gemv7's (gemm_w4a16_gemv7.repack_gemv7, rows R): qt int32 [T, G, R, 16], st [T, G, R].
Config (as gemv7's tuple, SPLIT = 1, then KS): (R, num_warps, NS, _, MATH, LOAD, CHAIN, _, 1, KS);
num_warps must equal KS x R / 32 on the GPU (MATH = 1's pack-of-4 layout), KS a power of two
dividing G = K / 128.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl  # noqa: F401 (triton: the jit decorator)

from .gemm_w4a16_gemv6 import _DOT6_CHAIN2, _DOT6_CHAIN4, _DOT6_CONS, _H_MAGIC, _w4_x_pairs, _x_half


@triton.jit
def _dot7k_ref(w, x01, x23, IS_BF16: tl.constexpr):
    """fp32 twin of the half2 asm dot for any tile rank (the interpreter cannot run PTX): sum_j
    (q_j - 8) x_j per word of w, x01 / x23 (int64, broadcastable to w) holding x[8c..8c+3] /
    x[8c+4..8c+7] of the word column c of the group."""
    xs = (x01.to(tl.int32), (x01 >> 32).to(tl.int32), x23.to(tl.int32), (x23 >> 32).to(tl.int32))
    part = tl.zeros(w.shape, dtype=tl.float32)
    for j in tl.static_range(8):
        part += (((w >> (4 * j)) & 15).to(tl.float32) - 8.0) * _x_half(xs[j // 2], j % 2 == 1, IS_BF16)
    return part


@triton.jit
def _w4_gemv7k_kernel(x64_ptr, q_ptr, q_desc, s_ptr, y_ptr, N, sxm, sym, MAGIC,
                      G: tl.constexpr, ROWS: tl.constexpr, KS: tl.constexpr, NS: tl.constexpr,
                      LOAD: tl.constexpr, CHAIN: tl.constexpr, IS_BF16: tl.constexpr, USE_ASM: tl.constexpr):
    """Program (m, t): token row m, row tile t (rows t R .. t R + R - 1), all G groups, KS per step.

    x64_ptr: x as int64 [M, K / 4] (row stride sxm); q_ptr / q_desc: qt as int32 (pointer, or a
    descriptor over its [T G, R, 16] view with block [KS, R, 16]); s_ptr: st as int32 scale pairs;
    y [M, N] (row stride sym). acc [KS, R, 16] fp32; y[t R + r] = sum over groups and words."""
    m = tl.program_id(0)
    t = tl.program_id(1)
    offs_k = tl.arange(0, KS)
    offs_r = tl.arange(0, ROWS)
    offs_w = tl.arange(0, 16)
    offs_q = (offs_k[:, None, None] * ROWS + offs_r[None, :, None]) * 16 + offs_w[None, None, :]
    offs_s = offs_k[:, None] * (ROWS // 2) + tl.arange(0, ROWS // 2)[None, :]
    x_row = x64_ptr + m.to(tl.int64) * sxm
    acc = tl.zeros((KS, ROWS, 16), dtype=tl.float32)
    for g0 in tl.range(0, G, KS, num_stages=NS):
        c = t * G + g0  # first chunk of the step; chunks c .. c + KS - 1 are contiguous
        if LOAD == 1:
            w = q_desc.load([c, 0, 0])
        else:
            w = tl.load(q_ptr + c * (ROWS * 16) + offs_q)
        sp = tl.load(s_ptr + c * (ROWS // 2) + offs_s)  # [KS, R / 2] int32 pairs (rows 2i, 2i + 1)
        s = tl.join(_x_half(sp, False, IS_BF16), _x_half(sp, True, IS_BF16)).reshape(KS, ROWS)[:, :, None]
        xo = (g0 + offs_k)[:, None] * 32 + 2 * offs_w[None, :]  # [KS, 16]: group g0 + k, word column w
        x01 = tl.load(x_row + xo)[:, None, :]
        x23 = tl.load(x_row + xo + 1)[:, None, :]
        if USE_ASM:
            p0, p1, p2, p3 = _w4_x_pairs(x01, x23, IS_BF16)
            sf = tl.broadcast_to(s, (KS, ROWS, 16))
            args = [acc, w, p0, p1, p2, p3, sf, tl.full(w.shape, MAGIC, tl.int32)]
            if CHAIN == 4:
                acc = tl.inline_asm_elementwise(_DOT6_CHAIN4, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)
            else:
                acc = tl.inline_asm_elementwise(_DOT6_CHAIN2, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)
        else:
            acc += _dot7k_ref(w, x01, x23, IS_BF16) * s
    r = tl.sum(tl.sum(acc, axis=2), axis=0)
    tl.store(y_ptr + m.to(tl.int64) * sym + t * ROWS + offs_r, r.to(y_ptr.dtype.element_ty), mask=t * ROWS + offs_r < N)


def launch_gemv7k(x64, qt, st32, y, N: int, cfg, interpreter: bool, tensor_descriptor) -> None:
    """Launch the v7e kernel on gemv7's layout (qt [T, G, R, 16] int32, st32 the scales as int32
    pairs [T, G, R / 2]); x64: x as int64 [M, K / 4]; y [M, N]. Checks are gemm_w4a16_gemv7's, plus
    KS's: a power of two dividing G, and num_warps == KS x R / 32 for the half2 asm."""
    T, G, R, _ = qt.shape
    rows, nw, ns, _, math, load = cfg[:6]
    chain, ks = cfg[6], cfg[9]
    if ks & (ks - 1) or G % ks:
        raise ValueError(f"KS must be a power of two dividing the {G} groups per row, got {cfg}.")
    if math != 1 or chain not in (2, 4):
        raise ValueError(f"KS > 1 runs the half2 dot only (MATH = 1, CHAIN 2 or 4), got {cfg}.")
    if not interpreter and nw * 32 != ks * R:
        raise ValueError(f"KS > 1 needs num_warps == KS x ROWS / 32 (pack-of-4 layout), got {cfg}.")
    C = T * G
    desc = tensor_descriptor.from_tensor(qt.view(C, R, 16), [ks, R, 16]) if load == 1 else qt
    M = x64.shape[0]
    _w4_gemv7k_kernel[(M, T)](x64, qt, desc, st32, y, N, x64.stride(0), y.stride(0), _H_MAGIC,
                              G=G, ROWS=R, KS=ks, NS=ns, LOAD=load, CHAIN=chain,
                              IS_BF16=y.dtype == torch.bfloat16,
                              USE_ASM=not interpreter, num_warps=nw, num_stages=ns)

