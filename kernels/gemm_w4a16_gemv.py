"""The CUDA-core GEMV paths of the W4A16 GEMM (kernels/gemm_w4a16.py) for M <= 4 tokens.

Same packed layout as gemm_w4a16.py (``qweight`` uint8 [N, K // 2], low nibble = even k, codes
0..15 with zero point 8, ``scales`` [N, K // 128]); here the packed weight is read as int32 words
(one 16-byte load = 32 weights) and multiplied on the CUDA cores, no tensor cores:

* ``gemv`` (v4, ``_w4_gemv_kernel``): dequant ``1 + q/16`` by OR into the fp32 mantissa with the
  ``-8`` folded into a per-group correction; split-K by fp32 atomics into a zeroed workspace.
* ``gemv5`` (v5, ``_w4_gemv5_kernel``): x first copied as fp32 in the order the nibbles come out
  of a word (``_w4_xprep_kernel``), so each weight load meets its x in 16-byte vectors; exact
  FADD dequant (LOP3 + FADD + FFMA per weight); the next groups prefetched; split-K finished in
  the same launch by the last-arriving slice (per-tile arrival counters, reset by the winner).
* ``gemv6`` (v6, ``_w4_gemv6_kernel``, M = 1 target): x read in place as int64 (no prologue
  launch), packed half2 math in inline PTX (two nibbles per LOP3 with the 0x6400 magic, HFMA2 into
  an fp16x2 partial per 4 words, fp32 across words/groups), U groups' loads issued per iteration;
  2.2-2.5 SASS instructions per weight (v5: 3.7). Measured slower than v5 on the H200 (session 4),
  so it is not in the tuner's lists; kept for the benchmark and as the base of the next attempt.

Measured speed and every version's prediction: kernels/NOTES.md ("W4A16").
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

GROUP = 128  # quantization group along K (the packed layout's, see gemm_w4a16.py)
# device -> int32 tile counters of the v5 split-K, zero between launches. Shared by all streams of
# a device: two split-K GEMV launches must not run concurrently on different streams.
_COUNTERS: dict = {}


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


# ------------------------------------------------------------------------------------------------
# v6 (M = 1 first): packed half2 math, x read in place (no prologue launch)
# ------------------------------------------------------------------------------------------------
# fp16 bit patterns used by the half2 dequantization (see _w4_dot6_asm)
_H_MAGIC = 0x64006400  # half2 (1024, 1024): OR a nibble into bits 0..3 (or 4..7) of its mantissa
_H_1032 = 0x64086408  # half2 (1032, 1032) = 1024 + zero point 8
_H_SIXTEENTH = 0x2C002C00  # half2 (1/16, 1/16)
_H_M72 = 0xD480D480  # half2 (-72, -72) = -(1024 / 16 + 8)


def _x_pairs_asm(is_bf16: bool) -> str:
    """PTX for two int32 words a = (x[2t], x[2t+1]), b = (x[2t+4], x[2t+5]) (bf16 or fp16 pairs,
    low half first) -> ($0, $1) = fp16x2 (x[2t], x[2t+4]) and (x[2t+1], x[2t+5]): the activation
    pairs that meet nibbles t and t+4 of a weight word after one LOP3 (_w4_dot6_asm). fp16 input:
    two byte permutes; bf16 input: widen each half to fp32 (shift / mask), then one round-to-
    nearest pack to fp16x2 per pair (values beyond +-65504 become inf: the fp16-math limit)."""
    if not is_bf16:
        return "prmt.b32 $0, $2, $3, 0x5410; prmt.b32 $1, $2, $3, 0x7632;"
    return ("{ .reg .b32 al, ah, bl, bh;\n"
            "shl.b32 al, $2, 16; and.b32 ah, $2, 0xffff0000;\n"
            "shl.b32 bl, $3, 16; and.b32 bh, $3, 0xffff0000;\n"
            "cvt.rn.f16x2.f32 $0, bl, al; cvt.rn.f16x2.f32 $1, bh, ah; }")


def _w4_dot6_asm(chain: int) -> str:
    """PTX for one pack of 4 consecutive words of one weight row (tl.inline_asm_elementwise,
    pack=4): ``acc0 += s * sum_{words, nibbles} (q - 8) x``; acc1..acc3 pass through.

    Operands: $0..$3 outputs (acc'), $4..$7 acc, $8..$11 words w, $12..$27 x pairs P0..P3 (4 words
    each, fp16x2 from _x_pairs_asm), $28..$31 the group scale (fp32, same value 4 times), $32..$35
    the half2 magic 0x64006400 (a register operand: ptxas would re-materialize an immediate).

    Dequantization two nibbles per instruction (the lop3 + magic-number trick of FasterTransformer
    and Marlin, here on the public layout): (w & 0x000F000F) | 0x6400_6400 is the half2 (1024 + q_t,
    1024 + q_{t+4}) for nibbles t = 0 (bits 0..3 and 16..19); minus 1032 gives q - 8 exactly.
    Mask 0x00F000F0 gives 1024 + 16 q for nibble 1 / 5, and fma(v, 1/16, -72) = q - 8 exactly;
    w >> 8 yields nibbles 2/6 and 3/7 the same way. The products are accumulated by HFMA2 in fp16
    over ``chain`` words (8 products per word, 4 per half lane), then both halves are widened to
    fp32 and summed, and the scale is applied in fp32 (fp32 across chains and groups). Per word:
    1 shift + 4 LOP3 + 4 dequant + 4 HFMA2, plus (3 + 1) per chain."""
    lines = ["{", ".reg .b32 hw, v, d, h, c1032, c16, cm72;", ".reg .f16 lo, hi;", ".reg .f32 flo, fhi, t;",
             f"mov.b32 c1032, {_H_1032:#x}; mov.b32 c16, {_H_SIXTEENTH:#x}; mov.b32 cm72, {_H_M72:#x};"]
    for i in range(4):
        w, p = f"${8 + i}", [f"${12 + 4 * t + i}" for t in range(4)]
        first = i % chain == 0
        lines.append(f"shr.u32 hw, {w}, 8;")
        for t, (src, mask) in enumerate([(w, "0x000f000f"), (w, "0x00f000f0"), ("hw", "0x000f000f"), ("hw", "0x00f000f0")]):
            lines.append(f"lop3.b32 v, {src}, {mask}, ${32 + i}, 0xea;")  # (a & b) | c
            lines.append("sub.f16x2 d, v, c1032;" if mask.endswith("0f") else "fma.rn.f16x2 d, v, c16, cm72;")
            if first and t == 0:
                lines.append(f"mul.rn.f16x2 h, d, {p[t]};")
            else:
                lines.append(f"fma.rn.f16x2 h, d, {p[t]}, h;")
        if (i + 1) % chain == 0:  # end of a chain: widen both lanes, add into the fp32 sum
            lines += ["mov.b32 {lo, hi}, h;", "cvt.f32.f16 flo, lo;", "cvt.f32.f16 fhi, hi;",
                      "add.f32 t, flo, fhi;" if i + 1 == chain else "add.f32 flo, flo, fhi;\nadd.f32 t, t, flo;"]
    lines += ["fma.rn.f32 $0, t, $28, $4;", "mov.b32 $1, $5;", "mov.b32 $2, $6;", "mov.b32 $3, $7;", "}"]
    return "\n".join(lines)


# the PTX strings as compile-time constants of the jit functions below
_DOT6_CHAIN4 = tl.constexpr(_w4_dot6_asm(4))
_DOT6_CHAIN2 = tl.constexpr(_w4_dot6_asm(2))
_DOT6_CHAIN1 = tl.constexpr(_w4_dot6_asm(1))
_DOT6_CONS = tl.constexpr("=f,=f,=f,=f," + ",".join(["f"] * 4 + ["r"] * 20 + ["f"] * 4 + ["r"] * 4))
_PAIRS_BF16 = tl.constexpr(_x_pairs_asm(True))
_PAIRS_FP16 = tl.constexpr(_x_pairs_asm(False))


@triton.jit
def _w4_x_pairs(x01, x23, IS_BF16: tl.constexpr):
    """x as int64 (x[8w..8w+3]) and (x[8w+4..8w+7]) per word column -> the 4 fp16x2 pairs
    P_t = (x[8w+t], x[8w+t+4]) as int32 (GPU only: inline PTX)."""
    x0 = x01.to(tl.int32)  # truncation keeps the low 32 bits: (x[8w], x[8w+1])
    x1 = (x01 >> 32).to(tl.int32)
    x2 = x23.to(tl.int32)
    x3 = (x23 >> 32).to(tl.int32)
    if IS_BF16:
        p0, p1 = tl.inline_asm_elementwise(_PAIRS_BF16, "=r,=r,r,r", [x0, x2],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
        p2, p3 = tl.inline_asm_elementwise(_PAIRS_BF16, "=r,=r,r,r", [x1, x3],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
    else:
        p0, p1 = tl.inline_asm_elementwise(_PAIRS_FP16, "=r,=r,r,r", [x0, x2],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
        p2, p3 = tl.inline_asm_elementwise(_PAIRS_FP16, "=r,=r,r,r", [x1, x3],
                                           dtype=(tl.int32, tl.int32), is_pure=True, pack=1)
    return p0, p1, p2, p3


@triton.jit
def _x_half(v, HI: tl.constexpr, IS_BF16: tl.constexpr):
    """fp32 value of the low (HI=False) or high 16-bit half of int32 v holding two bf16/fp16."""
    if IS_BF16:
        if HI:
            return (v & -65536).to(tl.float32, bitcast=True)
        return (v << 16).to(tl.float32, bitcast=True)
    if HI:
        return (v >> 16).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
    return v.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)


@triton.jit
def _w4_dot6_ref(w, x01, x23, IS_BF16: tl.constexpr):
    """Portable fp32 twin of the asm dot (the CPU interpreter cannot run PTX): sum_j (q_j - 8) x_j
    per word of w [BLOCK_N, 16] with x given as in _w4_x_pairs; returns [BLOCK_N, 16] fp32."""
    xs = (x01.to(tl.int32), (x01 >> 32).to(tl.int32), x23.to(tl.int32), (x23 >> 32).to(tl.int32))
    part = tl.zeros(w.shape, dtype=tl.float32)
    for j in tl.static_range(8):
        q = ((w >> (4 * j)) & 15).to(tl.float32) - 8.0
        part += q * _x_half(xs[j // 2], j % 2 == 1, IS_BF16)[None, :]
    return part


@triton.jit
def _w4_g6_load(q_row, s_row, x_row, g, live):
    """Loads of one group g for _w4_gemv6_kernel: words [BLOCK_N, 16] int32, scale [BLOCK_N, 16]
    fp32 (row scale repeated along the word columns, so it arrives in the word tile's layout with
    one load per row and no shared-memory layout conversion; 0 where not live), and x as two
    int64 [16] (x[8w..8w+3], x[8w+4..8w+7])."""
    w = tl.load(q_row + g * 16)
    s = tl.where(live, tl.load(s_row + g).to(tl.float32), 0.0)  # g is clamped in range by the caller
    return w, s, tl.load(x_row + g * 32), tl.load(x_row + g * 32 + 1)


@triton.jit
def _w4_g6_math(acc, w, s, x01, x23, MAGIC, CHAIN: tl.constexpr, IS_BF16: tl.constexpr, USE_ASM: tl.constexpr):
    """acc [BLOCK_N, 16] fp32 += s * dot of one group (half2 asm on the GPU, fp32 twin else)."""
    if USE_ASM:
        p0, p1, p2, p3 = _w4_x_pairs(x01, x23, IS_BF16)
        return _w4_dot6(acc, w, p0, p1, p2, p3, s, MAGIC, CHAIN)
    return acc + _w4_dot6_ref(w, x01, x23, IS_BF16) * s


@triton.jit
def _w4_gemv6_kernel(x64_ptr, q_ptr, s_ptr, y_ptr, ws_ptr, cnt_ptr, M, N, K, sxm, sqn, ssn, sym, SK, PER, MAGIC,
                     BLOCK_N: tl.constexpr, SPLIT: tl.constexpr, U: tl.constexpr, CHAIN: tl.constexpr,
                     IS_BF16: tl.constexpr, USE_ASM: tl.constexpr):
    """v6 W4A16 GEMV: one token row per program (grid axis 2), half2 math on the CUDA cores.

    x64_ptr: x viewed as int64 [M, K / 4] (row stride sxm), so word w of a weight row (k = 8w..8w+7)
    meets its activations as two 8-byte loads, read in place -- no prologue launch (v5 had one).
    q_ptr: the packed weight as int32 [N, K / 8] (row stride sqn); s_ptr scales [N, K / 128].
    U groups of 128 k per loop iteration: all their loads are issued first, then the math, so
    U x 64 bytes of weights per thread are in flight (a register "prefetch" across iterations, as
    in v5, is undone by ptxas: it sinks the loads next to their use). Per group the [BLOCK_N, 16]
    word tile meets the 4 fp16x2 x pairs of each word column (built once, shared by the BLOCK_N /
    32 rows each thread holds) in the pack-of-4-words asm dot (_w4_dot6_asm), which adds scale *
    dot into the fp32 accumulator. USE_ASM=False computes the same sum in fp32 without PTX
    (interpreter / reference path). The pack-of-4 asm assumes the 4 consecutive registers it gets
    are one row's 4 consecutive words (sizePerThread [1, 4] of the word tile): true for the
    configs in _W4_GEMV6, checked on the GPU by the tests; BLOCK_N 256 with 4 warps broke it under
    triton 3.6 (wrong results, H200, session 4). Split-K as v5 (_w4_gemv5_kernel): fp32 partials, an acq_rel
    tile counter, the last slice reduces them in a fixed order and re-arms the counter; slices
    hold PER groups (a multiple of U, the wrapper's choice), a ragged last iteration gets scale 0."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    m = tl.program_id(2)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rn = offs_n % N
    offs_w = tl.arange(0, 16)
    G = K // 128
    g0 = pid_k * PER
    g1 = tl.minimum(g0 + PER, G)
    q_row = q_ptr + rn[:, None].to(tl.int64) * sqn + offs_w[None, :]
    s_row = s_ptr + rn[:, None].to(tl.int64) * ssn + 0 * offs_w[None, :]
    x_row = x64_ptr + m.to(tl.int64) * sxm + 2 * offs_w
    acc = tl.zeros((BLOCK_N, 16), dtype=tl.float32)
    glast = tl.maximum(g1 - 1, 0)
    for gb in range(g0, g1, U):
        w0, s0, xa0, xb0 = _w4_g6_load(q_row, s_row, x_row, gb, gb < g1)
        if U >= 2:
            w1, s1, xa1, xb1 = _w4_g6_load(q_row, s_row, x_row, tl.minimum(gb + 1, glast), gb + 1 < g1)
        if U >= 4:
            w2, s2, xa2, xb2 = _w4_g6_load(q_row, s_row, x_row, tl.minimum(gb + 2, glast), gb + 2 < g1)
            w3, s3, xa3, xb3 = _w4_g6_load(q_row, s_row, x_row, tl.minimum(gb + 3, glast), gb + 3 < g1)
        acc = _w4_g6_math(acc, w0, s0, xa0, xb0, MAGIC, CHAIN, IS_BF16, USE_ASM)
        if U >= 2:
            acc = _w4_g6_math(acc, w1, s1, xa1, xb1, MAGIC, CHAIN, IS_BF16, USE_ASM)
        if U >= 4:
            acc = _w4_g6_math(acc, w2, s2, xa2, xb2, MAGIC, CHAIN, IS_BF16, USE_ASM)
            acc = _w4_g6_math(acc, w3, s3, xa3, xb3, MAGIC, CHAIN, IS_BF16, USE_ASM)
    r = tl.sum(acc, axis=1)
    nmask = offs_n < N
    if SPLIT:
        wrow = ws_ptr + (pid_k * M + m).to(tl.int64) * N + offs_n
        tl.store(wrow, r, mask=nmask)
        tl.debug_barrier()
        tile = m * tl.num_programs(0) + pid_n
        arrived = tl.atomic_add(cnt_ptr + tile, 1, sem="acq_rel", scope="gpu")
        if arrived == SK - 1:  # last slice of this tile: fixed-order reduction, then re-arm
            t = tl.zeros((BLOCK_N,), dtype=tl.float32)
            for k in range(0, SK):
                t += tl.load(ws_ptr + (k * M + m).to(tl.int64) * N + offs_n, mask=nmask, other=0.0, cache_modifier=".cg")
            tl.store(y_ptr + m.to(tl.int64) * sym + offs_n, t.to(y_ptr.dtype.element_ty), mask=nmask)
            tl.atomic_xchg(cnt_ptr + tile, 0, sem="relaxed", scope="gpu")
    else:
        tl.store(y_ptr + m.to(tl.int64) * sym + offs_n, r.to(y_ptr.dtype.element_ty), mask=nmask)


@triton.jit
def _w4_dot6(acc, w, p0, p1, p2, p3, sf, MAGIC, CHAIN: tl.constexpr):
    """acc [BLOCK_N, 16] fp32 += scale * (half2 dot of each pack of 4 words), see _w4_dot6_asm.
    p0..p3 [16] are broadcast to acc's shape by inline_asm_elementwise."""
    mg = tl.full(w.shape, MAGIC, tl.int32)
    args = [acc, w, p0[None, :], p1[None, :], p2[None, :], p3[None, :], sf, mg]
    if CHAIN == 4:
        return tl.inline_asm_elementwise(_DOT6_CHAIN4, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)
    elif CHAIN == 2:
        return tl.inline_asm_elementwise(_DOT6_CHAIN2, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)
    else:
        return tl.inline_asm_elementwise(_DOT6_CHAIN1, _DOT6_CONS, args, dtype=tl.float32, is_pure=True, pack=4)


def _gemv6_split(G: int, grid_n: int, M: int, sk: int, u: int, per_sm: int, sms: int):
    """(slices, groups per slice) of the v6 split-K: sk = 0 picks about per_sm programs per SM
    (one resident wave at the occupancy of the config) with at least u groups per slice; the
    slice length is rounded up to a multiple of u and the slice count re-derived from it."""
    if sk == 0:
        sk = max(1, round(per_sm * sms / (grid_n * M)))
    sk = max(1, min(sk, G // u if G >= u else 1))
    per = triton.cdiv(triton.cdiv(G, sk), u) * u
    return triton.cdiv(G, per), per


def _launch_gemv6(x, q32, scales, y, c, interpreter: bool):
    """v6 GEMV (half2 asm dot, x read in place, in-kernel split-K finish); one launch.
    c = (BLOCK_M (unused), BLOCK_N, _, warps, stages, SPLIT_K (0 = auto), "gemv6", U, CHAIN, PER_SM).
    x must be bf16/fp16 with |x| < 65504 (it is rounded to fp16 for the half2 products)."""
    M, K = x.shape
    N = y.shape[1]
    _, bn, _, nw, ns, sk, _, u, chain, per_sm = c[:10]
    if x.stride(1) != 1 or x.stride(0) % 4 or x.storage_offset() % 4:
        x = x.contiguous()  # the int64 view needs 8-byte aligned rows
    x64 = x.view(torch.int64)
    G = K // GROUP
    grid_n = triton.cdiv(N, bn)
    sk, per = _gemv6_split(G, grid_n, M, sk, u, per_sm, _num_sms(x.device))
    grid = (grid_n, sk, M)
    if sk > 1:
        ws = torch.empty((sk, M, N), dtype=torch.float32, device=x.device)
        cnt = _w4_counters(x.device, grid_n * M)
    else:
        ws, cnt = y, q32  # unused
    _w4_gemv6_kernel[grid](x64, q32, scales, y, ws, cnt, M, N, K, x64.stride(0), q32.stride(0), scales.stride(0),
                           y.stride(0), sk, per, _H_MAGIC, BLOCK_N=bn, SPLIT=sk > 1, U=u, CHAIN=chain,
                           IS_BF16=x.dtype == torch.bfloat16, USE_ASM=not interpreter, num_warps=nw, num_stages=ns)
