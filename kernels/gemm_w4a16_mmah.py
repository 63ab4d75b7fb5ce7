"""The v8 W4A16 kernel for 2 <= M <= 16 ("mmah"), and since session 11 for M up to 512 in token
blocks of 32 / 64: tensor cores on a repacked, split-halves int4 layout, streamed through a
multi-stage cp.async pipeline, split-K finished in the same launch.

Why (kernels/NOTES.md, "W4A16 M = 16, v8"): the v4 tensor-core paths ("mmat", "mma2") reached only
0.9-1.2x of bf16 cuBLAS at M = 16 while W8A16 -- twice the bytes -- reached 1.2-1.7x. Offline
SASS of "mmat" (triton 3.6, sm_90a): the weight tile is pipelined, but x is read as two stride-2
gathers (even / odd k, matching the public layout's nibble order), 40 dependent 2-byte loads per
thread per step that the pipeliner cannot take (a cp.async needs >= 4 contiguous bytes), and the
weight rows are 64-byte pieces K / 2 bytes apart.

Layout (made once by :func:`repack_mmah` from gemm_w4a16's public packing; R = rows per tile):
  ``qh`` uint8 [T, G, R, 64], T = ceil(N / R), G = K / 128: byte j of (tile t, group g, row r)
  holds the code of k = 128 g + j in its LOW nibble and of k = 128 g + 64 + j in its HIGH nibble
  ("split halves": the low nibbles of a group pair with x[:, 128 g : 128 g + 64], the high ones
  with x[:, 128 g + 64 : 128 g + 128], both contiguous), one (t, g) chunk = R x 64 contiguous
  bytes; ``sh`` [T, G, R] the group scales in x's dtype. Rows past N are zero codes with zero
  scales. W[n, k] = (code - 8) * scale, as in the public layout.

Algorithm: program (t, s, mb) owns row tile t, K slice s of SK (groups [s G / SK, (s + 1) G /
SK)) and token block mb (BLOCK_M = 16 rows of x). Per group: one [R, 64] byte chunk and two
[BLOCK_M, 64] x tiles (cp.async, NS - 1 groups ahead), nibbles to bf16 / fp16 (q - 8) by the
magic-number OR (exact), two K = 64 dots ``x_lo W_lo^T + x_hi W_hi^T`` (mma.sync, x as A), the
group scale applied once to the fp32 partial. SK > 1: every slice stores its [BLOCK_M, R] fp32
partial, then one acq_rel counter per (tile, token block); the last arrival sums the SK partials in
slice order (deterministic), writes y and re-arms the counter (CUTLASS serial split-K, as gemv5).

Config tuple (through gemm_w4a16, path "mmah"): (BLOCK_M, R, GROUP, num_warps, NS, SK, "mmah"[,
DQ]); DQ = 1 dequantizes 8 codes per 12 packed PTX instructions (session 9), DQ = 2 also swaps the
product to y^T = W x^T so the weight is wgmma's register A operand, DQ = 0 by Triton ops.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ._common import cached_repack, check
from .gemm_w4a16_gemv import GROUP, _num_sms, _w4_counters
from .harness import is_interpreter


class MmahWeight(NamedTuple):
    """The split-halves layout: qh uint8 [T, G, R, 64], sh [T, G, R] (x's dtype), N, K."""
    qh: torch.Tensor
    sh: torch.Tensor
    N: int
    K: int


def repack_mmah(qweight: torch.Tensor, scales: torch.Tensor, rows: int = 64) -> MmahWeight:
    """Public (qweight uint8 [N, K / 2], k = 2j low / 2j + 1 high nibble; scales [N, K / 128]) ->
    the split-halves tiles above. Runs once per weight (torch ops, any device)."""
    N, K = qweight.shape[0], qweight.shape[1] * 2
    check(K % GROUP == 0, f"K must be a multiple of {GROUP}, got {K}.")
    check(rows in (16, 32, 64, 128, 256), f"rows must be 16, 32, 64, 128 or 256, got {rows}.")
    G, T = K // GROUP, triton.cdiv(N, rows)
    codes = torch.stack([qweight & 15, qweight >> 4], dim=2).reshape(N, G, 2, 64)  # [n, g, half, j]
    packed = codes[:, :, 0, :] | (codes[:, :, 1, :] << 4)  # [N, G, 64]
    qh = torch.zeros((T * rows, G, 64), dtype=torch.uint8, device=qweight.device)
    qh[:N] = packed
    sh = torch.zeros((T * rows, G), dtype=scales.dtype, device=scales.device)
    sh[:N] = scales
    return MmahWeight(qh.view(T, rows, G, 64).transpose(1, 2).contiguous(),
                      sh.view(T, rows, G).transpose(1, 2).contiguous(), N, K)


def unpack_mmah(w: MmahWeight):
    """Inverse of :func:`repack_mmah`: (qweight uint8 [N, K / 2], scales [N, K / 128])."""
    T, G, R, _ = w.qh.shape
    rows = w.qh.transpose(1, 2).reshape(T * R, G, 64)[: w.N]
    codes = torch.stack([rows & 15, rows >> 4], dim=2).reshape(w.N, w.K)  # k = 128 g + 64 half + j
    qweight = (codes[:, 0::2] | (codes[:, 1::2] << 4)).contiguous()
    return qweight, w.sh.transpose(1, 2).reshape(T * R, G)[: w.N].contiguous()


@triton.jit
def dequant_nibbles(p, IS_BF16: tl.constexpr):
    """uint8 tile of packed codes -> (low, high) nibbles as bf16 / fp16 values q - 8, exact.

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


# Packed dequantization (DQ = 1; GPU only: the interpreter cannot run PTX). One call takes 4 bytes
# (8 codes) in one 32-bit register and returns 4 low-nibble and 4 high-nibble values as bf16x2 /
# fp16x2 pairs: PRMT spreads bytes (b0, b1) to bits 0-7 and 16-23, one LOP3 per pair keeps a nibble
# in each half and ORs the magic exponent (0x4300: bf16 128 + c; 0x6400: fp16 1024 + c), the high
# nibbles take one shift first, and one packed subtract of 136 (1032) per pair gives c - 8, exact.
# 12 instructions per 8 codes (the Triton-generated code of dequant_nibbles: ~4 per code, SASS).
# Elementwise by construction (code i of the pack only feeds output i), so it holds for whatever
# register order Triton packs.
def _dq_asm(magic16: int, sub_op: str, pack: int) -> str:
    """PTX for one pack of 4 (or 2) codes: outputs $0.. (low nibbles), then the high ones, input last.
    magic16 is the 16-bit pattern of 128.0 (bf16, 0x4300) or 1024.0 (fp16, 0x6400) -- the numbers whose
    low mantissa bits take the code -- and magic16 | 8 is 136.0 / 1032.0, the subtrahend that gives c - 8."""
    magic, sub = magic16 * 0x10001, (magic16 | 8) * 0x10001  # the same half in both halves of a pair
    n = pack // 2  # registers per output: pairs of 16-bit values
    src = f"${2 * n}"
    spread = [("t0", "0x1100"), ("t1", "0x3322")][:n]  # bytes (b0, b1) / (b2, b3) to bits 0-7 and 16-23
    lines = [f"prmt.b32 {t}, {src}, 0, {sel};" for t, sel in spread]
    lines += [f"shr.u32 s{i}, t{i}, 4;" for i in range(n)]
    lines += [f"lop3.b32 ${i}, t{i}, 0x000F000F, {magic}, 0xEA;" for i in range(n)]
    lines += [f"lop3.b32 ${n + i}, s{i}, 0x000F000F, {magic}, 0xEA;" for i in range(n)]
    lines += [f"mov.b32 c, {sub};"] + [f"{sub_op} ${i}, ${i}, c;" for i in range(2 * n)]
    return "{\n    .reg .b32 t0, t1, s0, s1, c;\n    " + "\n    ".join(lines) + "\n}"


_DQ_BF16 = tl.constexpr(_dq_asm(0x4300, "sub.rn.bf16x2", 4))
_DQ_FP16 = tl.constexpr(_dq_asm(0x6400, "sub.rn.f16x2", 4))
# Packs of 2 codes (one 16-bit pair in a 32-bit register: 6 instructions per 4 codes), the shape a
# thread's bytes have as the wgmma register A operand (kWidth 2: two consecutive k).
_DQ2_BF16 = tl.constexpr(_dq_asm(0x4300, "sub.rn.bf16x2", 2))
_DQ2_FP16 = tl.constexpr(_dq_asm(0x6400, "sub.rn.f16x2", 2))


@triton.jit
def dequant_nibbles_asm(p, IS_BF16: tl.constexpr, PACK: tl.constexpr = 4):
    """Same values as :func:`dequant_nibbles` through packed PTX, PACK (4 or 2) codes per call (GPU only)."""
    dt = tl.bfloat16 if IS_BF16 else tl.float16
    if PACK == 4:
        wl, wh = tl.inline_asm_elementwise(_DQ_BF16 if IS_BF16 else _DQ_FP16, "=r,=r,=r,=r,r", [p], dtype=(dt, dt),
                                           is_pure=True, pack=4)
    else:
        wl, wh = tl.inline_asm_elementwise(_DQ2_BF16 if IS_BF16 else _DQ2_FP16, "=r,=r,r", [p], dtype=(dt, dt),
                                           is_pure=True, pack=2)
    return wl, wh


@triton.jit
def _w4_mmah_kernel(x_ptr, q_ptr, s_ptr, y_ptr, ws_ptr, cnt_ptr, M, N, sxm, sym,
                    G: tl.constexpr, BLOCK_M: tl.constexpr, ROWS: tl.constexpr, SK: tl.constexpr,
                    NS: tl.constexpr, IS_BF16: tl.constexpr, DQ: tl.constexpr = 0, ASM: tl.constexpr = 0):
    """Program (t, s, mb): y[mb rows, t R .. t R + R) (+)= x[mb rows, groups of slice s] W_t^T.

    x [M, K] (row stride sxm); q_ptr: qh [T, G, R, 64] uint8; s_ptr: sh [T, G, R]; y [M, N] (row
    stride sym); ws fp32 [SK, M, T R] and cnt int32 (zero at launch) used when SK > 1."""
    t = tl.program_id(0)
    s = tl.program_id(1)
    mb = tl.program_id(2)
    offs_m = mb * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_r = tl.arange(0, ROWS)
    offs_j = tl.arange(0, 64)
    rm = tl.minimum(offs_m, M - 1)  # rows past M re-read the last row (masked at the store)
    g0 = s * G // SK
    g1 = (s + 1) * G // SK
    x_rows = x_ptr + rm[:, None].to(tl.int64) * sxm + offs_j[None, :]
    q_tile = q_ptr + t.to(tl.int64) * (G * ROWS * 64) + offs_r[:, None] * 64 + offs_j[None, :]
    s_tile = s_ptr + t.to(tl.int64) * (G * ROWS) + offs_r
    if DQ >= 2:  # y^T tile = W x^T: the dequantized weight is the register A operand of wgmma
        acc_t = tl.zeros((ROWS, BLOCK_M), dtype=tl.float32)
        sc_next = tl.load(s_tile + g0 * ROWS)
        for g in tl.range(g0, g1, num_stages=NS):
            p = tl.load(q_tile + g * (ROWS * 64))
            xl = tl.load(x_rows + g * 128)
            xh = tl.load(x_rows + g * 128 + 64)
            # the scale in this layout is a 2-byte gather the pipeliner will not take: one group ahead by hand
            sc = sc_next
            sc_next = tl.load(s_tile + tl.minimum(g + 1, g1 - 1) * ROWS)
            if ASM:
                wl, wh = dequant_nibbles_asm(p, IS_BF16, 2)
            else:
                wl, wh = dequant_nibbles(p, IS_BF16)
            if DQ == 4:  # as 3 with one K = 128 dot: [W_lo | W_hi] against x[:, 128 g : 128 g + 128]
                w = tl.reshape(tl.permute(tl.join(wl * sc[:, None], wh * sc[:, None]), (0, 2, 1)), (ROWS, 128))
                x2 = tl.reshape(tl.permute(tl.join(xl, xh), (0, 2, 1)), (BLOCK_M, 128))
                acc_t = tl.dot(w, tl.trans(x2), acc_t)
            elif DQ == 3:  # scale folded into the weight (rounded once to x's dtype, as Marlin does): the
                # accumulator chains through both dots, so no wait for the MMA before the next group
                wl = wl * sc[:, None]
                wh = wh * sc[:, None]
                acc_t = tl.dot(wl, tl.trans(xl), acc_t)
                acc_t = tl.dot(wh, tl.trans(xh), acc_t)
            else:  # exact (q - 8) operands, the fp32 partial scaled per group
                part_t = tl.dot(wl, tl.trans(xl))
                part_t = tl.dot(wh, tl.trans(xh), part_t)
                acc_t += part_t * sc.to(tl.float32)[:, None]
        acc = tl.trans(acc_t)
    else:
        acc = tl.zeros((BLOCK_M, ROWS), dtype=tl.float32)
        for g in tl.range(g0, g1, num_stages=NS):
            p = tl.load(q_tile + g * (ROWS * 64))
            sc = tl.load(s_tile + g * ROWS).to(tl.float32)
            xl = tl.load(x_rows + g * 128)
            xh = tl.load(x_rows + g * 128 + 64)
            if DQ == 1 and ASM:
                wl, wh = dequant_nibbles_asm(p, IS_BF16)
            else:
                wl, wh = dequant_nibbles(p, IS_BF16)
            part = tl.dot(xl, tl.trans(wl))
            part = tl.dot(xh, tl.trans(wh), part)
            acc += part * sc[None, :]
    offs_n = t * ROWS + offs_r
    ymask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    y_ptrs = y_ptr + offs_m[:, None].to(tl.int64) * sym + offs_n[None, :]
    if SK == 1:
        tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=ymask)
    else:
        NP = tl.num_programs(0) * ROWS  # ws row length (T R)
        w_ptrs = ws_ptr + (s * M + rm[:, None]).to(tl.int64) * NP + offs_n[None, :]
        tl.store(w_ptrs, acc, mask=offs_m[:, None] < M)
        tl.debug_barrier()
        tile = mb * tl.num_programs(0) + t
        arrived = tl.atomic_add(cnt_ptr + tile, 1, sem="acq_rel", scope="gpu")
        if arrived == SK - 1:  # the last slice of this tile: sum in slice order, write y, re-arm
            tot = tl.zeros((BLOCK_M, ROWS), dtype=tl.float32)
            for k in range(0, SK):
                r_ptrs = ws_ptr + (k * M + rm[:, None]).to(tl.int64) * NP + offs_n[None, :]
                tot += tl.load(r_ptrs, mask=offs_m[:, None] < M, other=0.0, cache_modifier=".cg")
            tl.store(y_ptrs, tot.to(y_ptr.dtype.element_ty), mask=ymask)
            tl.atomic_xchg(cnt_ptr + tile, 0, sem="relaxed", scope="gpu")


def gemm_w4a16_mmah(x: torch.Tensor, w: MmahWeight, y: torch.Tensor, config) -> torch.Tensor:
    """``y = x @ W^T`` for x [M, K] bf16 / fp16 (M <= 16 is the regime; any M runs, in token
    blocks of BLOCK_M) and W in the split-halves layout; y [M, N] written. config = (BLOCK_M, R,
    _, num_warps, NS, SK, "mmah"[, DQ]); SK = 0: auto (about 2 programs per SM, >= 4 groups per
    slice); DQ = 1: packed PTX dequantization, DQ = 2: the same with y^T = W x^T (the weight as the
    register A operand, wgmma on Hopper), DQ = 3 / 4: as 2 with the group scale folded into the weight
    (two chained dots / one K = 128 dot; measured slower, not listed); the interpreter cannot run PTX and
    dequantizes by Triton ops."""
    bm, rows, _, nw, ns, sk = config[:6]
    dq = config[7] if len(config) > 7 else 0
    check(dq in (0, 1, 2, 3, 4), f"DQ (config[7]) must be 0 (Triton dequantization), 1 (packed PTX), 2 (packed PTX, "
          f"weight as the wgmma A operand), 3 (as 2, the group scale folded into the weight) or 4 (as 3, one K = 128 dot), "
          f"got {config}.")
    T, G, R, _ = w.qh.shape
    check(rows == R, f"config {config} is for {rows}-row tiles, the weight has {R}.")
    check(bm in (16, 32, 64, 128), f"BLOCK_M must be 16, 32, 64 or 128 (a tensor-core tile), got {config}.")
    M = x.shape[0]
    grid_m = triton.cdiv(M, bm)
    if sk == 0:
        sk = max(1, min(G // 4, round(2 * _num_sms(x.device) / (T * grid_m))))
    sk = max(1, min(sk, G))
    if x.stride(1) != 1:
        x = x.contiguous()
    if sk > 1:
        ws = torch.empty((sk, M, T * R), dtype=torch.float32, device=x.device)
        cnt = _w4_counters(x.device, T * grid_m)
    else:
        ws, cnt = y, y  # unused
    _w4_mmah_kernel[(T, sk, grid_m)](x, w.qh, w.sh, y, ws, cnt, M, w.N, x.stride(0), y.stride(0),
                                     G=G, BLOCK_M=bm, ROWS=R, SK=sk, NS=ns, IS_BF16=x.dtype == torch.bfloat16, DQ=dq,
                                     ASM=not is_interpreter(),  # the interpreter cannot run PTX: Triton ops instead
                                     num_warps=nw, num_stages=ns)
    return y


# Public-layout entry (gemm_w4a16 path "mmah"): the repack is done once per weight tensor and tile
# height and kept while the tensor lives (weak reference + version counter, as gemv7's).
_REPACKED: dict = {}


def cached_repack_mmah(qweight, scales, rows: int) -> MmahWeight:
    return cached_repack(_REPACKED, qweight, scales, rows, repack_mmah)
