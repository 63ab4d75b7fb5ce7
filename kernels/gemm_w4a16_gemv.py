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
* ``gemv6`` (v6, M = 1): packed half2 math in inline PTX, in ``gemm_w4a16_gemv6.py``.
* ``gemv7`` (v7, M = 1, the default since session 5): a repacked, tiled weight streamed by a
  stream-K grid through a cp.async / TMA pipeline, in ``gemm_w4a16_gemv7.py``.

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
