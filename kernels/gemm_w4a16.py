"""Weight-only int4 GEMM for the decode regime (W4A16), ``y = x @ dequant(W)^T``.

x [M, K] is bf16/fp16; the weight is read in its packed form and dequantized in registers, so the
bytes streamed from HBM (which bound decode, M <= 16) shrink ~3.9x (int4 + scales). W8A16 lives in
gemm_w8a16.py.

Layout (documented here and in kernels/README.md):
  * W4A16: ``qweight`` uint8 [N, K // 2]; byte ``qweight[n, j]`` holds k = 2j in its LOW nibble and
    k = 2j + 1 in its HIGH nibble, each an unsigned code q in 0..15 with implicit zero point 8;
    ``scales`` [N, K // G] in x's dtype, G = 128 (group size along K); ``W[n, k] = (q - 8) *
    scales[n, k // G]``. K must be a multiple of G. Storage: 4 + 16/128 = 4.125 bits per weight.

Algorithm: the tiled GEMM of gemm.py with BLOCK_K a multiple of G, so each K step covers GPI
whole quantization groups (unrolled). The int4 byte tile [BLOCK_N, BLOCK_K/2] is split into low/high nibbles, which pair with the
even/odd columns of x (two stride-2 loads of the small activation tile), so no interleave is needed.
Nibbles become bf16/fp16 (q - 8) with the magic-number trick (OR the code into the mantissa of
128.0 / 1024.0 and subtract; no int->float converts), and the group scale is applied once per
group to the fp32 partial: ``acc += (W_lo x_e^T + W_hi x_o^T) * s[n]`` -- BLOCK_M*BLOCK_N
multiplies per group instead of BLOCK_N*BLOCK_K (both ideas as in Marlin, Frantar et al.
arXiv:2408.11743). The product is computed transposed, y^T = W x^T, so the dequantized weight tile
is the A operand (from registers) and the tiny activation tile is B. When N / BLOCK_N programs
cannot fill the GPU (e.g. the 4096 x 14336 down projection), SPLIT_K programs share the K range
and add fp32 partials atomically into a zeroed workspace that is then cast to the output dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check, check_activation, check_out, check_tensor, m_bucket
from .harness import Tuner, is_interpreter

GROUP = 128
# W4 configs are tuples (BLOCK_M, BLOCK_N, BLOCK_K = GPI * GROUP, num_warps, num_stages, SPLIT_K[, PATH]).
# PATH (default "mma2", the v3 kernel): "gemv" = CUDA-core kernel (_w4_gemv_kernel, BLOCK_M <= 4),
# "mmat" = tensor cores with x as the A operand (_w4_mmat_kernel). A fourth path tried in v4,
# eight K = 16 dots per group on 32-bit words ("mma8"), never won on the H200 and was removed
# (kernels/NOTES.md keeps its numbers).
_W4_SKINNY = [(16, 64, 128, 4, 4, 1), (16, 128, 128, 4, 4, 1), (16, 64, 256, 4, 4, 1), (16, 128, 256, 4, 3, 1),
              (16, 64, 256, 4, 4, 2), (16, 128, 256, 4, 3, 2), (16, 64, 512, 4, 3, 1), (16, 64, 256, 4, 4, 4)]
# v5 (M <= 4): GEMV on fp32 plane-major x with FADD dequant and in-kernel split-K finish
# (_w4_gemv5_kernel); tuple (BLOCK_M, BLOCK_N, BLOCK_K (unused), warps, stages, SPLIT_K, "gemv5", PF);
# SPLIT_K 0 = auto (about 6 programs per SM, >= 4 groups per slice), PF = groups prefetched ahead.
_W4_GEMV5 = [(4, 64, 128, 4, 1, 0, "gemv5", 1), (4, 64, 128, 4, 1, 1, "gemv5", 1), (4, 64, 128, 4, 1, 2, "gemv5", 1),
             (4, 64, 128, 4, 1, 4, "gemv5", 1), (4, 64, 128, 4, 1, 8, "gemv5", 1), (4, 64, 128, 4, 1, 16, "gemv5", 1),
             (4, 64, 128, 4, 1, 0, "gemv5", 2), (4, 64, 128, 4, 3, 0, "gemv5", 0), (4, 128, 128, 4, 1, 0, "gemv5", 1),
             (4, 32, 128, 2, 1, 0, "gemv5", 1), (4, 128, 128, 8, 1, 0, "gemv5", 1)]
# v4 (M <= 4): GEMV on CUDA cores; (BLOCK_M = next pow2 of M is substituted by the wrapper).
_W4_GEMV = [(4, 64, 256, 4, 3, 4, "gemv"), (4, 32, 256, 4, 3, 2, "gemv"), (4, 128, 256, 4, 3, 4, "gemv"),
            (4, 64, 256, 4, 3, 8, "gemv"), (4, 64, 512, 4, 2, 4, "gemv")]
# v4 (tensor cores, x as the A operand: mma.sync), any M <= 16.
_W4_MMAT = [(16, 64, 256, 4, 3, 2, "mmat"), (16, 64, 128, 4, 3, 1, "mmat"), (16, 128, 256, 8, 3, 4, "mmat")]
# v4 (4 < M <= 16): tensor cores on 32-bit words, eight K = 16 dots per group.
_W4_LARGE = [(64, 64, 128, 4, 4, 1), (64, 128, 128, 4, 4, 1), (128, 128, 128, 8, 3, 1)]
_INTERP4 = [(16, 16, 2 * GROUP, 4, 1, 2)]
_INTERP4_GEMV = [(4, 16, 2 * GROUP, 4, 1, 2, "gemv")]
_INTERP4_GEMV5 = [(4, 16, GROUP, 4, 1, 0, "gemv5", 1)]
_INTERP4_MMAT = [(16, 16, 2 * GROUP, 4, 1, 2, "mmat")]


def w4_candidates(M: int, interpreter: bool = False):
    """Autotuning candidate list of gemm_w4a16 for M tokens (what the Tuner searches)."""
    if interpreter:
        return _INTERP4_GEMV if M <= 4 else (_INTERP4_MMAT if M <= 16 else _INTERP4)
    if M == 1:  # v5 GEMV first (fastest on all four shapes measured, H200, tune_w4a16_v5_h200.csv)
        return _W4_GEMV5 + _W4_GEMV[:2] + _W4_MMAT[:2]
    if M <= 4:  # M = 4 measured: mmat first (3 of 4 shapes), gemv5 with 128 rows won 4096x14336
        return _W4_MMAT[:2] + _W4_GEMV5 + _W4_GEMV[:2]
    if M <= 16:
        return _W4_MMAT + _W4_SKINNY
    return _W4_LARGE


@triton.jit
def _dequant_nibbles(p, IS_BF16: tl.constexpr):
    """uint8 tile of packed codes -> (low, high) nibbles as bf16/fp16 values q - 8.

    Magic-number dequantization (no int->float convert): the bit pattern 0x4300 | c is the bf16
    number 128 + c (0x6400 | c is fp16 1024 + c), so subtracting 136 (1032) gives c - 8."""
    lo = (p & 15).to(tl.int16)
    hi = (p >> 4).to(tl.int16)
    if IS_BF16:
        wl = ((lo | 0x4300).to(tl.bfloat16, bitcast=True) - 136.0).to(tl.bfloat16)
        wh = ((hi | 0x4300).to(tl.bfloat16, bitcast=True) - 136.0).to(tl.bfloat16)
    else:
        wl = ((lo | 0x6400).to(tl.float16, bitcast=True) - 1032.0).to(tl.float16)
        wh = ((hi | 0x6400).to(tl.float16, bitcast=True) - 1032.0).to(tl.float16)
    return wl, wh


@triton.jit
def _token_rows(base, row_stride, m0, M):
    """Pointers to the 4 token rows m0 .. m0 + 3 of a [M, row_stride] matrix; rows past M are
    clamped to M - 1 (computed twice, stored once)."""
    r0 = base + tl.minimum(m0, M - 1).to(tl.int64) * row_stride
    r1 = base + tl.minimum(m0 + 1, M - 1).to(tl.int64) * row_stride
    r2 = base + tl.minimum(m0 + 2, M - 1).to(tl.int64) * row_stride
    r3 = base + tl.minimum(m0 + 3, M - 1).to(tl.int64) * row_stride
    return r0, r1, r2, r3


@triton.jit
def _w4_gemv_kernel(x_ptr, q_ptr, s_ptr, y_ptr, M, N, K, sxm, sqn, ssn, sym, sqw,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GPI: tl.constexpr, SPLIT_K: tl.constexpr):
    """CUDA-core W4A16 GEMV for M <= 4 (no tl.dot, so no register->MMA-operand conversion).

    q_ptr is the packed weight viewed as int32 [N, K // 8] (column stride sqw, = 1): word w of row
    n holds k = 8w + j at bits 4j..4j+3 (little-endian bytes, low nibble = even k), so one 16-byte
    load carries 32 weights. A group of 128 k is 16 words. (Measured on an H200, 2026-11-22: a
    variant with sqw not specialized -- one word column per thread, scalar loads, x reused over
    more rows -- ran 2x slower than this vectorized layout.) Program (pid_n, pid_k, pid_m) owns rows [pid_n*BLOCK_N, +BLOCK_N),
    token rows [pid_m*BLOCK_M, +BLOCK_M) and the pid_k-th of SPLIT_K slices of the K steps.

    Dequantization with no FADD per weight: the code q is shifted into mantissa bits 19..22 and
    OR'd with 1.0f (0x3F800000), giving v = 1 + q/16 exactly; since (q - 8) = 16 (v - 1.5),
    sum_k (q_k - 8) x_k = 16 (sum_k v_k x_k - 1.5 sum_k x_k), and the second sum is per (group, word
    column), shared by every row. Per weight: shift, AND|OR (one LOP3), and one FMA per token row.
    The group scale multiplies the fp32 partial once per group (as Marlin, arXiv:2408.11743).
    Lanes are reduced (tl.sum over the 16 word columns) only at the end.
    """
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    pid_m = tl.program_id(2)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rn = offs_n % N  # ragged N: wrapped rows are computed and not stored
    offs_w = tl.arange(0, 16)
    k_tiles = K // (GPI * 128)
    per = tl.cdiv(k_tiles, SPLIT_K)
    kt0 = pid_k * per
    kt1 = tl.minimum(kt0 + per, k_tiles)
    m0 = pid_m * BLOCK_M
    x0, x1, x2, x3 = _token_rows(x_ptr, sxm, m0, M)
    q_ptrs = q_ptr + rn[:, None].to(tl.int64) * sqn + (kt0 * (GPI * 16) + offs_w[None, :]) * sqw
    s_ptrs = s_ptr + rn.to(tl.int64) * ssn + kt0 * GPI
    xo = kt0 * (GPI * 128) + 8 * offs_w  # x offset of nibble 0 of word column w
    acc0 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    acc1 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    acc2 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    acc3 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    for kt in range(kt0, kt1):
        for g in tl.static_range(GPI):
            w = tl.load(q_ptrs + g * 16 * sqw)
            s = (tl.load(s_ptrs + g).to(tl.float32) * 16.0)[:, None]
            p0 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
            p1 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
            p2 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
            p3 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
            c0 = tl.zeros((16,), dtype=tl.float32)
            c1 = tl.zeros((16,), dtype=tl.float32)
            c2 = tl.zeros((16,), dtype=tl.float32)
            c3 = tl.zeros((16,), dtype=tl.float32)
            for j in tl.static_range(8):
                if 4 * j <= 19:
                    sh = w << (19 - 4 * j)
                else:
                    sh = w >> (4 * j - 19)
                v = ((sh & 0x780000) | 0x3F800000).to(tl.float32, bitcast=True)  # 1 + q/16
                xoff = xo + (g * 128 + j)
                xv = tl.load(x0 + xoff).to(tl.float32)
                p0 += v * xv[None, :]
                c0 += xv
                if BLOCK_M > 1:
                    xv = tl.load(x1 + xoff).to(tl.float32)
                    p1 += v * xv[None, :]
                    c1 += xv
                if BLOCK_M > 2:
                    xv = tl.load(x2 + xoff).to(tl.float32)
                    p2 += v * xv[None, :]
                    c2 += xv
                    xv = tl.load(x3 + xoff).to(tl.float32)
                    p3 += v * xv[None, :]
                    c3 += xv
            acc0 += (p0 - 1.5 * c0[None, :]) * s
            if BLOCK_M > 1:
                acc1 += (p1 - 1.5 * c1[None, :]) * s
            if BLOCK_M > 2:
                acc2 += (p2 - 1.5 * c2[None, :]) * s
                acc3 += (p3 - 1.5 * c3[None, :]) * s
        q_ptrs += GPI * 16 * sqw
        s_ptrs += GPI
        xo += GPI * 128
    nmask = offs_n < N
    mrow = offs_n * 0 + m0  # token row of acc0, as a tensor (the mask must be a tensor)
    y0 = y_ptr + m0.to(tl.int64) * sym + offs_n
    if SPLIT_K == 1:
        tl.store(y0, tl.sum(acc0, axis=1).to(y_ptr.dtype.element_ty), mask=nmask)
        if BLOCK_M > 1:
            tl.store(y0 + sym, tl.sum(acc1, axis=1).to(y_ptr.dtype.element_ty), mask=nmask & (mrow + 1 < M))
        if BLOCK_M > 2:
            tl.store(y0 + 2 * sym, tl.sum(acc2, axis=1).to(y_ptr.dtype.element_ty), mask=nmask & (mrow + 2 < M))
            tl.store(y0 + 3 * sym, tl.sum(acc3, axis=1).to(y_ptr.dtype.element_ty), mask=nmask & (mrow + 3 < M))
    else:  # y is an fp32 workspace zeroed by the wrapper (split-K as in Hoque et al. 2024, SplitK W4A16)
        tl.atomic_add(y0, tl.sum(acc0, axis=1), mask=nmask, sem="relaxed")
        if BLOCK_M > 1:
            tl.atomic_add(y0 + sym, tl.sum(acc1, axis=1), mask=nmask & (mrow + 1 < M), sem="relaxed")
        if BLOCK_M > 2:
            tl.atomic_add(y0 + 2 * sym, tl.sum(acc2, axis=1), mask=nmask & (mrow + 2 < M), sem="relaxed")
            tl.atomic_add(y0 + 3 * sym, tl.sum(acc3, axis=1), mask=nmask & (mrow + 3 < M), sem="relaxed")


@triton.jit
def _w4_xprep_kernel(x_ptr, xp_ptr, K, sxm, GB: tl.constexpr):
    """v5 GEMV prologue: x [M, K] (bf16/fp16) -> xp fp32 [M, K] in the order the packed nibbles
    come out of a 32-bit word, pre-scaled for the FADD dequantization of _w4_gemv5_kernel.

    Group g of 128 k is stored plane-major: xp[m, 128 g + 16 j + w] = x[m, 128 g + 8 w + j] *
    2^(23 - 4 p) (w = word column 0..15 of the group, j = nibble 0..7 of the word, p = j for j < 5
    else j - 3: the bit position the GEMV reads it at), so for
    one nibble position the 16 word columns' activations are contiguous (16-byte vector loads in
    the GEMV, no stride-8 gathers, no bf16 -> fp32 converts). Program (m, pid) covers GB groups."""
    m = tl.program_id(0)
    pid = tl.program_id(1)
    offs_j = tl.arange(0, 8)
    offs_w = tl.arange(0, 16)
    pos = tl.where(offs_j < 5, offs_j, offs_j - 3)  # nibble position p the GEMV reads nibble j at
    sc = tl.where(pos == 0, 8388608.0, tl.where(pos == 1, 524288.0, tl.where(pos == 2, 32768.0,
                  tl.where(pos == 3, 2048.0, 128.0))))  # 2^(23 - 4p)
    for i in tl.static_range(GB):
        g = pid * GB + i
        if g * 128 < K:
            xv = tl.load(x_ptr + m.to(tl.int64) * sxm + g * 128 + 8 * offs_w[None, :] + offs_j[:, None])
            tl.store(xp_ptr + m.to(tl.int64) * K + g * 128 + 16 * offs_j[:, None] + offs_w[None, :],
                     xv.to(tl.float32) * sc[:, None])


@triton.jit
def _w4_gemv5_dot(w, xr, gi, offs_w, ONE):
    """sum_j (q_j - 8) x_j over the 8 nibbles of each word in w [BLOCK_N, 16] (one group), token
    row xr (a pointer into xp). FADD dequant: for a nibble at bits 4p..4p+3 with p <= 4,
    (word & (15 << 4p)) | 0x3F800000 (ONE, a runtime argument so that ptxas keeps it in a register
    instead of re-materializing it before every LOP3) is the float 1 + q 2^(4p - 23) exactly;
    minus 1 + 8 2^(4p - 23) it is (q - 8) 2^(4p - 23), exact (Sterbenz), and the 2^(23 - 4p) is
    already in xp. Nibbles 0..4 are read in place (p = j), nibbles 5..7 from word >> 12 (p = j - 3).
    Per weight: one LOP3 + one FADD + one FFMA, plus one shift per word."""
    xb = xr + gi * 128 + offs_w
    hw = w >> 12
    part = tl.zeros(w.shape, dtype=tl.float32)
    for j in tl.static_range(8):
        if j < 5:
            src = w
        else:
            src = hw
        v = ((src & (15 << (4 * (j if j < 5 else j - 3)))) | ONE).to(tl.float32, bitcast=True)
        if (j if j < 5 else j - 3) == 0:
            d = v - 1.00000095367431640625  # 1 + 8 * 2^-23
        elif (j if j < 5 else j - 3) == 1:
            d = v - 1.0000152587890625  # 1 + 8 * 2^-19
        elif (j if j < 5 else j - 3) == 2:
            d = v - 1.000244140625  # 1 + 8 * 2^-15
        elif (j if j < 5 else j - 3) == 3:
            d = v - 1.00390625  # 1 + 8 * 2^-11
        else:
            d = v - 1.0625  # 1 + 8 * 2^-7
        xv = tl.load(xb + 16 * j)
        part += d * xv[None, :]
    return part


@triton.jit
def _w4_gemv5_kernel(xp_ptr, q_ptr, s_ptr, y_ptr, ws_ptr, cnt_ptr, M, N, K, sqn, ssn, sym, SK, ONE,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT: tl.constexpr, PF: tl.constexpr):
    """v5 CUDA-core W4A16 GEMV (M <= 4 per program) on the int32 view of the packed weight.

    Reads x from the fp32 plane-major copy of _w4_xprep_kernel, so each 16-byte weight load (4
    words = 32 weights of one row) meets its activations as 8 16-byte vector loads with no
    gathers or converts; the dequantization is exact and needs no per-group sum(x) correction (see
    _w4_gemv5_dot). One quantization group per loop iteration, the next PF groups' weights and
    scales loaded ahead in registers (PF = 1 or 2: software prefetch; 0: none). The group scale
    multiplies each [BLOCK_N, 16] partial once per group; the 16 word columns are summed at the end.

    Split-K (SPLIT, SK slices of the groups) without a memset or a cast launch: every slice
    stores its fp32 partial to ws [SK, M, N] (plain stores), then, after a CTA barrier, one
    acq_rel atomic increments the tile's counter (cnt_ptr, zero at launch); the program that
    sees SK - 1 sums the SK partials in a fixed order (deterministic), writes y in its dtype and
    resets the counter to 0 for the next launch (the CUTLASS "serial split-K" semaphore)."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    pid_m = tl.program_id(2)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rn = offs_n % N
    offs_w = tl.arange(0, 16)
    G = K // 128
    per = tl.cdiv(G, SK)
    g0 = pid_k * per
    g1 = tl.minimum(g0 + per, G)
    m0 = pid_m * BLOCK_M
    xr0, xr1, xr2, xr3 = _token_rows(xp_ptr, K, m0, M)
    q_row = q_ptr + rn[:, None].to(tl.int64) * sqn + offs_w[None, :]
    s_row = s_ptr + rn.to(tl.int64) * ssn
    acc0 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    acc1 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    acc2 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    acc3 = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    glast = tl.maximum(tl.minimum(g1, G) - 1, 0)
    ga = tl.minimum(g0, glast)
    wa = tl.load(q_row + ga * 16)
    sa = tl.load(s_row + ga)
    if PF >= 2:
        gb = tl.minimum(g0 + 1, glast)
        wb = tl.load(q_row + gb * 16)
        sb = tl.load(s_row + gb)
    for gi in range(g0, g1):
        if PF == 0:
            w = tl.load(q_row + gi * 16)
            s = tl.load(s_row + gi).to(tl.float32)[:, None]
        else:
            w = wa
            s = sa.to(tl.float32)[:, None]
            if PF >= 2:
                wa = wb
                sa = sb
                gn = tl.minimum(gi + 2, glast)
                wb = tl.load(q_row + gn * 16)
                sb = tl.load(s_row + gn)
            else:
                gn = tl.minimum(gi + 1, glast)
                wa = tl.load(q_row + gn * 16)
                sa = tl.load(s_row + gn)
        acc0 += _w4_gemv5_dot(w, xr0, gi, offs_w, ONE) * s
        if BLOCK_M > 1:
            acc1 += _w4_gemv5_dot(w, xr1, gi, offs_w, ONE) * s
        if BLOCK_M > 2:
            acc2 += _w4_gemv5_dot(w, xr2, gi, offs_w, ONE) * s
            acc3 += _w4_gemv5_dot(w, xr3, gi, offs_w, ONE) * s
    nmask = offs_n < N
    mrow = offs_n * 0 + m0  # token row of acc0 as a tensor (masks must be tensors)
    r0 = tl.sum(acc0, axis=1)
    r1 = tl.sum(acc1, axis=1)
    r2 = tl.sum(acc2, axis=1)
    r3 = tl.sum(acc3, axis=1)
    if SPLIT:
        wrow = ws_ptr + (pid_k * M + m0).to(tl.int64) * N + offs_n
        tl.store(wrow, r0, mask=nmask)
        if BLOCK_M > 1:
            tl.store(wrow + N, r1, mask=nmask & (mrow + 1 < M))
        if BLOCK_M > 2:
            tl.store(wrow + 2 * N, r2, mask=nmask & (mrow + 2 < M))
            tl.store(wrow + 3 * N, r3, mask=nmask & (mrow + 3 < M))
        tl.debug_barrier()
        tile = pid_m * tl.num_programs(0) + pid_n
        arrived = tl.atomic_add(cnt_ptr + tile, 1, sem="acq_rel", scope="gpu")
        if arrived == SK - 1:  # last slice of this tile: reduce, write y, re-arm the counter
            t0 = tl.zeros((BLOCK_N,), dtype=tl.float32)
            t1 = tl.zeros((BLOCK_N,), dtype=tl.float32)
            t2 = tl.zeros((BLOCK_N,), dtype=tl.float32)
            t3 = tl.zeros((BLOCK_N,), dtype=tl.float32)
            for k in range(0, SK):
                rrow = ws_ptr + (k * M + m0).to(tl.int64) * N + offs_n
                t0 += tl.load(rrow, mask=nmask, other=0.0, cache_modifier=".cg")
                if BLOCK_M > 1:
                    t1 += tl.load(rrow + N, mask=nmask & (mrow + 1 < M), other=0.0, cache_modifier=".cg")
                if BLOCK_M > 2:
                    t2 += tl.load(rrow + 2 * N, mask=nmask & (mrow + 2 < M), other=0.0, cache_modifier=".cg")
                    t3 += tl.load(rrow + 3 * N, mask=nmask & (mrow + 3 < M), other=0.0, cache_modifier=".cg")
            _w4_gemv5_store(y_ptr, sym, m0, M, offs_n, nmask, mrow, t0, t1, t2, t3, BLOCK_M)
            tl.atomic_xchg(cnt_ptr + tile, 0, sem="relaxed", scope="gpu")
    else:
        _w4_gemv5_store(y_ptr, sym, m0, M, offs_n, nmask, mrow, r0, r1, r2, r3, BLOCK_M)


@triton.jit
def _w4_gemv5_store(y_ptr, sym, m0, M, offs_n, nmask, mrow, r0, r1, r2, r3, BLOCK_M: tl.constexpr):
    y0 = y_ptr + m0.to(tl.int64) * sym + offs_n
    tl.store(y0, r0.to(y_ptr.dtype.element_ty), mask=nmask)
    if BLOCK_M > 1:
        tl.store(y0 + sym, r1.to(y_ptr.dtype.element_ty), mask=nmask & (mrow + 1 < M))
    if BLOCK_M > 2:
        tl.store(y0 + 2 * sym, r2.to(y_ptr.dtype.element_ty), mask=nmask & (mrow + 2 < M))
        tl.store(y0 + 3 * sym, r3.to(y_ptr.dtype.element_ty), mask=nmask & (mrow + 3 < M))


@triton.jit
def _w4_kernel(x_ptr, q_ptr, s_ptr, y_ptr, M, N, K, sxm, sqn, ssn, sym,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
               SPLIT_K: tl.constexpr, IS_BF16: tl.constexpr, GPI: tl.constexpr):
    # Computes the transposed tile y^T[BLOCK_N, BLOCK_M] = W[BLOCK_N, :] @ x^T so that the
    # dequantized weights (in registers) are the MMA's A operand (wgmma reads A from registers on
    # Hopper) and the tiny activation tile is B (N = BLOCK_M >= 16).
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    pid_m = tl.program_id(2)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    GS: tl.constexpr = BLOCK_K // GPI  # quantization group size
    offs_h = tl.arange(0, GS // 2)
    rm = offs_m % M
    rn = offs_n % N
    k_tiles = K // BLOCK_K
    per = tl.cdiv(k_tiles, SPLIT_K)
    kt0 = pid_k * per
    kt1 = tl.minimum(kt0 + per, k_tiles)
    q_ptrs = q_ptr + rn[:, None] * sqn + kt0 * (BLOCK_K // 2) + offs_h[None, :]
    xe_ptrs = x_ptr + rm[None, :] * sxm + kt0 * BLOCK_K + 2 * offs_h[:, None]
    s_ptrs = s_ptr + rn * ssn + kt0 * GPI
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for kt in range(kt0, kt1):
        for g in tl.static_range(GPI):  # GPI quantization groups per K step: more bytes in flight
            p = tl.load(q_ptrs + g * (GS // 2))
            xe = tl.load(xe_ptrs + g * GS)
            xo = tl.load(xe_ptrs + g * GS + 1)
            s = tl.load(s_ptrs + g).to(tl.float32)
            wl, wh = _dequant_nibbles(p, IS_BF16)
            part = tl.dot(wl, xe)
            part = tl.dot(wh, xo, part)
            acc += part * s[:, None]
        q_ptrs += BLOCK_K // 2
        xe_ptrs += BLOCK_K
        s_ptrs += GPI
    y_ptrs = y_ptr + offs_m[None, :].to(tl.int64) * sym + offs_n[:, None]
    ymask = (offs_m[None, :] < M) & (offs_n[:, None] < N)
    if SPLIT_K == 1:
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=ymask)
    else:  # y is an fp32 workspace zeroed by the wrapper
        tl.atomic_add(y_ptrs, acc, mask=ymask, sem="relaxed")


@triton.jit
def _w4_mmat_kernel(x_ptr, q_ptr, s_ptr, y_ptr, M, N, K, sxm, sqn, ssn, sym,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GPI: tl.constexpr,
                    SPLIT_K: tl.constexpr, IS_BF16: tl.constexpr):
    """Tensor-core W4A16 with x as the A operand: y[BLOCK_M, BLOCK_N] = x W^T (uint8 layout).

    With BLOCK_M = 16 rows of A, Triton on Hopper uses mma.sync (both operands in registers), the
    path the W8A16 kernel streams well with; the weight tile is loaded transposed, [64 bytes of k,
    BLOCK_N], its low/high nibbles (even/odd k) dequantized with the magic numbers and multiplied
    with the even/odd columns of x: two K = 64 dots per group, scale applied per group.
    """
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    pid_m = tl.program_id(2)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_h = tl.arange(0, 64)
    rn = offs_n % N
    rm = offs_m % M
    k_tiles = K // (GPI * 128)
    per = tl.cdiv(k_tiles, SPLIT_K)
    kt0 = pid_k * per
    kt1 = tl.minimum(kt0 + per, k_tiles)
    q_ptrs = q_ptr + rn[None, :].to(tl.int64) * sqn + kt0 * (GPI * 64) + offs_h[:, None]
    x_ptrs = x_ptr + rm[:, None].to(tl.int64) * sxm + kt0 * (GPI * 128) + 2 * offs_h[None, :]
    s_ptrs = s_ptr + rn.to(tl.int64) * ssn + kt0 * GPI
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(kt0, kt1):
        for g in tl.static_range(GPI):
            p = tl.load(q_ptrs + g * 64)
            xe = tl.load(x_ptrs + g * 128)
            xo = tl.load(x_ptrs + g * 128 + 1)
            s = tl.load(s_ptrs + g).to(tl.float32)
            wl, wh = _dequant_nibbles(p, IS_BF16)
            part = tl.dot(xe, wl)
            part = tl.dot(xo, wh, part)
            acc += part * s[None, :]
        q_ptrs += GPI * 64
        x_ptrs += GPI * 128
        s_ptrs += GPI
    y_ptrs = y_ptr + offs_m[:, None].to(tl.int64) * sym + offs_n[None, :]
    ymask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    if SPLIT_K == 1:
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=ymask)
    else:
        tl.atomic_add(y_ptrs, acc, mask=ymask, sem="relaxed")


_t4 = Tuner("gemm_w4a16")
# device -> int32 tile counters of the v5 split-K, zero between launches. Shared by all streams of
# a device: two split-K GEMV launches must not run concurrently on different streams.
_COUNTERS: dict = {}


def _num_sms(device) -> int:
    if device.type != "cuda":
        return 132
    if device not in _SMS:
        _SMS[device] = torch.cuda.get_device_properties(device).multi_processor_count
    return _SMS[device]


_SMS: dict = {}


def _w4_counters(device, n: int):
    """Zeroed int32 counters (at least n) for _w4_gemv5_kernel's split-K; every launch leaves them
    zero again, so they are allocated and zeroed once per device (outside any graph capture if
    the first call is eager)."""
    key = str(device)  # not per stream: a CUDA-graph capture runs on a side stream and must reuse them
    c = _COUNTERS.get(key)
    if c is None or c.numel() < n:
        c = torch.zeros(max(n, 4096), dtype=torch.int32, device=device)
        _COUNTERS[key] = c
    return c


def _launch_gemv5(x, q32, scales, y, c):
    """v5 GEMV: x -> fp32 plane-major copy (one tiny launch), then the GEMV (split-K finished in
    the same launch by the last-arriving slice). c = (BLOCK_M, BLOCK_N, _, warps, stages, SPLIT_K,
    "gemv5"[, PF])."""
    M, K = x.shape
    N = y.shape[1]
    _, bn, _, nw, ns, sk = c[:6]
    pf = c[7] if len(c) > 7 else 1
    bm = 1 if M == 1 else (2 if M == 2 else 4)
    G = K // GROUP
    grid_n, grid_m = triton.cdiv(N, bn), triton.cdiv(M, bm)
    if sk == 0:  # auto: about 6 programs per SM, at least 4 groups per slice
        sk = max(1, min(G // 4, round(6 * _num_sms(x.device) / (grid_n * grid_m))))
    sk = max(1, min(sk, G))
    xp = torch.empty((M, K), dtype=torch.float32, device=x.device)
    _w4_xprep_kernel[(M, triton.cdiv(G, 2))](x, xp, K, x.stride(0), GB=2, num_warps=1)
    grid = (grid_n, sk, grid_m)
    if sk > 1:
        ws = torch.empty((sk, M, N), dtype=torch.float32, device=x.device)
        cnt = _w4_counters(x.device, grid[0] * grid[2])
    else:
        ws, cnt = xp, q32  # unused
    _w4_gemv5_kernel[grid](xp, q32, scales, y, ws, cnt, M, N, K, q32.stride(0), scales.stride(0), y.stride(0), sk, 0x3F800000,
                           BLOCK_M=bm, BLOCK_N=bn, SPLIT=sk > 1, PF=pf, num_warps=nw, num_stages=ns)


def gemm_w4a16(x, qweight, scales, group_size: int = GROUP, out=None, config=None):
    """``y = x @ W^T`` with W int4 (uint8-packed, see module doc), group-wise scales [N, K // 128]."""
    check(group_size == GROUP, f"only group_size {GROUP} is implemented, got {group_size}.")
    check_tensor(qweight, "qweight", 2, (torch.uint8,))
    N, K = qweight.shape[0], qweight.shape[1] * 2
    check_activation(x, K)
    check(K % GROUP == 0, f"K must be a multiple of the group size {GROUP}, got {K}.")
    check_tensor(scales, "scales", 2, (x.dtype,))
    check(tuple(scales.shape) == (N, K // GROUP), f"scales must have shape {(N, K // GROUP)}, got {tuple(scales.shape)}.")
    M = x.shape[0]
    y = check_out(out, (M, N), x.dtype, x.device)
    # 32-bit view of the packed weight for the v4 paths (8 nibbles per word, k = 8w + j at bits
    # 4j..4j+3); a view when the row stride and base are 4-byte aligned, else one copy.
    aligned = qweight.stride(0) % 4 == 0 and qweight.data_ptr() % 16 == 0
    q32 = (qweight if aligned else qweight.clone(memory_format=torch.contiguous_format)).view(torch.int32)

    def launch(c):
        bm, bn, bk, nw, ns, sk = c[:6]
        path = c[6] if len(c) > 6 else "mma2"
        if path == "gemv5":
            _launch_gemv5(x, q32, scales, y, c)
            return
        if K % bk:  # a K step must hold whole groups
            bk = GROUP
        sk = max(1, min(sk, K // bk))
        dst = y if sk == 1 else torch.zeros((M, N), dtype=torch.float32, device=x.device)
        common = (x, qweight if path == "mma2" else q32, scales, dst, M, N, K, x.stride(0),
                  qweight.stride(0) if path == "mma2" else q32.stride(0), scales.stride(0), dst.stride(0))
        if path == "gemv":
            bm = 1 if M == 1 else (2 if M == 2 else 4)
            grid = (triton.cdiv(N, bn), sk, triton.cdiv(M, bm))
            _w4_gemv_kernel[grid](*common, q32.stride(1), BLOCK_M=bm, BLOCK_N=bn, GPI=bk // GROUP, SPLIT_K=sk,
                                  num_warps=nw, num_stages=ns)
        elif path == "mmat":
            grid = (triton.cdiv(N, bn), sk, triton.cdiv(M, bm))
            _w4_mmat_kernel[grid](x, qweight, scales, dst, M, N, K, x.stride(0), qweight.stride(0),
                                  scales.stride(0), dst.stride(0), BLOCK_M=bm, BLOCK_N=bn, GPI=bk // GROUP,
                                  SPLIT_K=sk, IS_BF16=x.dtype == torch.bfloat16, num_warps=nw, num_stages=ns)
        else:
            check(path == "mma2", f"unknown W4A16 path {path!r}.")
            grid = (triton.cdiv(N, bn), sk, triton.cdiv(M, bm))
            _w4_kernel[grid](*common, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SPLIT_K=sk,
                             IS_BF16=x.dtype == torch.bfloat16, GPI=bk // GROUP, num_warps=nw, num_stages=ns)
        if sk > 1:
            y.copy_(dst)

    if config is None:
        config = _t4.pick((m_bucket(M) if M > 16 else M, N, K, x.dtype),
                          w4_candidates(M, is_interpreter()), launch)
    launch(config)
    return y


def quantize_w4(w: torch.Tensor, group_size: int = GROUP):
    """Symmetric int4 group quantization of W [N, K] -> (qweight uint8 [N, K//2], scales [N, K//G])."""
    N, K = w.shape
    check(K % group_size == 0 and K % 2 == 0, f"K must be a multiple of {group_size}, got {K}.")
    wg = w.float().view(N, K // group_size, group_size)
    s = wg.abs().amax(dim=2).clamp(min=1e-8) / 7.0
    q = (torch.round(wg / s[:, :, None]).clamp(-8, 7) + 8).to(torch.uint8).view(N, K)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()
    return packed, s.to(w.dtype).contiguous()


def dequant_w4(qweight, scales, group_size: int = GROUP):
    """fp32 W [N, K] from the int4 layout above."""
    N = qweight.shape[0]
    q = torch.stack([qweight & 15, qweight >> 4], dim=2).view(N, -1).float() - 8.0
    return q * scales.float().repeat_interleave(group_size, dim=1)


def gemm_w4a16_ref(x, qweight, scales, group_size: int = GROUP):
    """fp32 reference: dequantize W, then ``x @ W^T``."""
    return x.float() @ dequant_w4(qweight, scales, group_size).t()
