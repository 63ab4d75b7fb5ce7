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

import os

import torch
import triton
import triton.language as tl

from ._common import check, check_activation, check_out, check_tensor, m_bucket
from .gemm_w4a16_gemv import GROUP, _launch_gemv5, _w4_gemv_kernel
from .gemm_w4a16_gemv6 import _launch_gemv6
from .gemm_w4a16_dq import gemm_w4a16_dq
from .gemm_w4a16_mmah import cached_repack_mmah, dequant_nibbles as _dequant_nibbles, gemm_w4a16_mmah
from .gemm_w4a16_gemv7 import (GEMV7_CONFIGS, GEMV7_DP_CONFIGS, GEMV7_KS_CONFIGS, GEMV7_V7D_CONFIGS, INTERP_CONFIGS,
                               launch_gemv7_public)
from .harness import Tuner, is_interpreter

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
# v6 (M = 1): half2 asm GEMV, x read in place (_w4_gemv6_kernel); tuple (BLOCK_M (unused), BLOCK_N,
# BLOCK_K (unused), warps, stages, SPLIT_K (0 = auto), "gemv6", U (groups per loop iteration),
# CHAIN (words summed in fp16 before fp32), PER_SM (auto split: programs per SM)). Measured on the
# H200 (session4_tune_w4a16_v6_h200.csv): slower than gemv5 on all four shapes (best 21.2 / 21.7 /
# 33.2 / 22.0 us vs 17.9 / 19.4 / 31.5 / 20.0), so NOT in w4_candidates; benchmarks/tune_w4a16.py
# still times it. BLOCK_N 256 with 4 warps gave wrong results there (triton 3.6: the pack-of-4
# asm met a layout whose 4 consecutive registers are not one row's 4 words) and was removed.
_W4_GEMV6 = [(1, 128, 128, 4, 1, 0, "gemv6", 2, 4, 6), (1, 128, 128, 4, 1, 0, "gemv6", 2, 4, 4),
             (1, 128, 128, 4, 1, 0, "gemv6", 4, 4, 4), (1, 128, 128, 4, 1, 0, "gemv6", 1, 4, 6),
             (1, 256, 128, 8, 1, 0, "gemv6", 2, 4, 2), (1, 128, 128, 4, 1, 0, "gemv6", 2, 1, 4),
             (1, 128, 128, 4, 1, 0, "gemv6", 2, 2, 4), (1, 64, 128, 2, 1, 0, "gemv6", 2, 4, 8)]
# v7 (M = 1): pre-tiled weight slabs, stream-K grid, multi-stage cp.async / TMA pipeline
# (gemm_w4a16_gemv7.py); tuple (BLOCK_M (unused), ROWS, BLOCK_K (unused), warps, stages, SPLIT_K
# (unused), "gemv7", PER_SM, MATH, LOAD, CHAIN, FIX). Through gemm_w4a16 the public layout is repacked
# once per weight tensor and ROWS (a second copy of the weight, cached while the tensor lives);
# callers that hold the repacked weight call gemm_w4a16_gemv7 directly. Measured on the H200
# (session5_tune_w4a16_v7_h200.csv): faster than gemv5 on all four M = 1 shapes (best 13.8 / 15.9 /
# 21.3 / 15.9 us vs 17.7 / 19.5 / 32.2 / 20.1). The tuner's M = 1 list takes the four best 128-row
# configs (one repacked copy per weight; 256 rows won 14336x4096 and 28672x4096 by 0.2-0.7 us);
# all are MATH = 1 (half2 asm: x is rounded to fp16, so |x| must stay below 65504). FIX (v7b,
# session5_tune_w4a16_v7b_h200.csv, two runs): the list holds the v7b (1) and v7 (0) slab-end fix-ups
# of the best config -- v7b won 4096x14336 by 1.5 us, v7 28672x4096 / 18944x3584 by 0.5-0.7 us --
# so the per-shape Tuner picks; with tuning off the first (v7b, best geomean) runs.
def _public7(c):
    """A gemv7 config tuple (ROWS, warps, NS, PER_SM, MATH, LOAD[, CHAIN[, FIX[, SPLIT]]]) as a
    gemm_w4a16 config (defaults filled in; SPLIT only when given, so older tuples stay as they were)."""
    return (1, c[0], GROUP, c[1], c[2], 0, "gemv7", c[3], c[4], c[5], c[6] if len(c) > 6 else 4,
            c[7] if len(c) > 7 else 1, *c[8:10])


_W4_GEMV7 = [_public7(c) for c in GEMV7_CONFIGS + GEMV7_DP_CONFIGS + GEMV7_V7D_CONFIGS + GEMV7_KS_CONFIGS]
# The M = 1 tuner list (session 7, H100 run 1, two tuner runs, benchmarks/results/kernels/session7/):
# v7d (FIX = 3) led every shape's stream-K configs (geomean 17.7 us vs v7b 19.0); the tile-aligned
# v7d (SPLIT 8) won the down projection (14.0 us); v7b kept as the fallback; the two v7e (KS)
# configs were not timed there (a wrapper check rejected them on the GPU) and are tuner candidates.
_W4_GEMV7_M1 = [_public7(c) for c in [(128, 4, 4, 3, 1, 1, 4, 3), (128, 4, 4, 4, 1, 0, 4, 3), (128, 4, 4, 0, 1, 1, 4, 3, 8),
                                      (128, 4, 4, 3, 1, 1, 4, 1), (32, 4, 4, 0, 1, 1, 4, 1, 1, 4), (32, 8, 4, 0, 1, 1, 4, 1, 1, 8)]]
_INTERP4_GEMV7 = [_public7(c) for c in INTERP_CONFIGS]
# v4 (M <= 4): GEMV on CUDA cores; (BLOCK_M = next pow2 of M is substituted by the wrapper).
_W4_GEMV = [(4, 64, 256, 4, 3, 4, "gemv"), (4, 32, 256, 4, 3, 2, "gemv"), (4, 128, 256, 4, 3, 4, "gemv"),
            (4, 64, 256, 4, 3, 8, "gemv"), (4, 64, 512, 4, 2, 4, "gemv")]
# v4 (tensor cores, x as the A operand: mma.sync), any M <= 16.
_W4_MMAT = [(16, 64, 256, 4, 3, 2, "mmat"), (16, 64, 128, 4, 3, 1, "mmat"), (16, 128, 256, 8, 3, 4, "mmat")]
# v8 (session 7, 2 <= M <= 16): tensor cores on the split-halves repack, cp.async pipeline, in-launch
# split-K (gemm_w4a16_mmah.py); tuple (BLOCK_M, ROWS, GROUP, warps, stages, SK (0 = auto), "mmah"[, DQ]).
# Session 9: each of the first six also with DQ = 1 (8th element: packed PTX dequantization, 242 instead
# of 371 SASS instructions per group step at (64, 4 warps, 4 stages) offline; listed first: faster than its
# DQ = 0 twin in all 48 pairs timed (1.02-1.48x), best against best 1.29-1.37x at M = 16 on the H100, NOTES v8b).
_W4_MMAH_DQ0 = [(16, 64, GROUP, 4, 4, 0, "mmah"), (16, 64, GROUP, 4, 6, 0, "mmah"), (16, 128, GROUP, 4, 4, 0, "mmah"),
                (16, 128, GROUP, 8, 4, 0, "mmah"), (16, 32, GROUP, 4, 6, 0, "mmah"), (16, 64, GROUP, 2, 6, 0, "mmah"),
                (16, 64, GROUP, 4, 4, 2, "mmah"), (16, 32, GROUP, 2, 8, 2, "mmah")]
_W4_MMAH = [(*c, 1) for c in _W4_MMAH_DQ0[:6]] + _W4_MMAH_DQ0
# DQ = 2 (session 9: the weight as wgmma's register A operand, y^T = W x^T; 217 SASS per group step
# offline). Session 10, H100: GPU tests passed (exact codes, bf16 / fp16, every config below at four
# shapes); in the full bench's tuning (LLMPERF_W4_DQ2=1 then) (16, 128, 4 warps, 4 stages) was the
# fastest config at M = 16 on three of the four layer shapes (16.5 vs 17.3 us for the best DQ = 1 on
# 14336 x 4096, 19.4 vs 20.5 on 18944 x 3584, 25.9 vs 29.0 on 28672 x 4096) and tied on 4096 x 14336
# (17.7 us), so these lead the 2 <= M <= 16 lists.
W4_MMAH_DQ2 = [(16, 128, GROUP, 4, 4, 0, "mmah", 2), (16, 128, GROUP, 4, 3, 0, "mmah", 2), (16, 64, GROUP, 4, 4, 0, "mmah", 2),
               (16, 64, GROUP, 4, 6, 0, "mmah", 2), (16, 128, GROUP, 8, 4, 0, "mmah", 2),
               (16, 64, GROUP, 4, 4, 2, "mmah", 2)]
# Session 11 (H100, benchmarks/results/kernels/session11/call_a_h100): the 3-stage twin of the leader, from
# the sweep below, was within 0-3% of it and fastest on two of the four shapes (16.4 / 19.1 us vs 16.5 /
# 19.5), so it is listed above. The rest of the sweep around the leader (pipeline depth 5 / 6, fixed split-K
# 4 / 6 / 12, 256-row tiles; GPU tests passed) was slower on every shape by 1-18 us, so it stays opt-in
# (LLMPERF_W4_DQ2=1). None of it reaches 2.5x on 4096 x 14336 (best 17.6 us = 2.42x there).
W4_MMAH_DQ2_SWEEP = [(16, 128, GROUP, 4, ns, 0, "mmah", 2) for ns in (5, 6)] + \
    [(16, 128, GROUP, 4, 4, sk, "mmah", 2) for sk in (4, 6, 12)] + \
    [(16, 128, GROUP, 8, 6, 0, "mmah", 2), (16, 256, GROUP, 8, 4, 0, "mmah", 2), (16, 64, GROUP, 4, 4, 8, "mmah", 2)]


def _mmah_list():
    """The 2 <= M <= 16 tensor-core configs, DQ = 2 first; LLMPERF_W4_DQ2=1 puts the untested sweep before them."""
    return (W4_MMAH_DQ2_SWEEP if os.environ.get("LLMPERF_W4_DQ2", "0") == "1" else []) + W4_MMAH_DQ2 + _W4_MMAH


_INTERP4_MMAH = [(16, 16, GROUP, 4, 2, 0, "mmah"), (16, 32, GROUP, 4, 2, 3, "mmah")]
# M > 16 (session 11): the DQ = 2 tensor-core kernel with token blocks of 32 / 64 (wgmma N = BLOCK_M; the
# weight tile is re-read once per token block, mostly from L2), by M bucket. Measured on the H100
# (benchmarks/results/kernels/session11/, cuBLAS bf16 in the same runs, four Llama/Qwen layer shapes):
# M = 32 2.0-2.8x, M = 64 1.4-2.2x of cuBLAS; at M = 256 0.61-0.87x (64-token blocks, 4 warps, won every
# shape; 128-token blocks on 8 warps ran 1.3-1.7x slower than them and are not listed); from M = 1024 on,
# dequantize-then-GEMM ("dq") wins (M = 1024 0.67-0.73x, M = 4096 0.90x; the 128-token kernel 0.45x).
W4_MMAH_MID = {
    32: [(32, 128, GROUP, 4, 4, 0, "mmah", 2), (32, 64, GROUP, 4, 4, 0, "mmah", 2), (32, 128, GROUP, 8, 4, 0, "mmah", 2)],
    64: [(64, 128, GROUP, 8, 4, 0, "mmah", 2), (64, 128, GROUP, 4, 4, 0, "mmah", 2), (64, 64, GROUP, 4, 4, 0, "mmah", 2)],
    512: [(64, 128, GROUP, 4, 4, 0, "mmah", 2), (64, 128, GROUP, 8, 4, 0, "mmah", 2)],
}  # key: the largest M bucket a list serves (32; 64; 128 ... 512)
# Session 11 trial, measured and NOT adopted (H100, same runs): DQ = 3 folds the group scale into the
# dequantized weight (rounded once to x's dtype) so the accumulator chains through both K = 64 dots --
# offline (triton 3.9, sm_90a) the second wgmma then overlaps the next group's dequantization, where DQ = 2
# waits for both; DQ = 4 the same with one K = 128 dot. On the GPU neither beat DQ = 2 beyond noise
# (M = 16: DQ = 3 +10-28% slower; M = 256: DQ = 3 within -7% / +3%, DQ = 4 +20-40%; M = 1024: +5-30%).
# Kept for the GPU tests and tune_w4a16.py.
W4_FOLD_TRIAL = [(16, 128, GROUP, 4, 3, 0, "mmah", 3), (16, 128, GROUP, 4, 4, 0, "mmah", 3), (16, 128, GROUP, 4, 4, 0, "mmah", 4),
                 (32, 128, GROUP, 4, 4, 0, "mmah", 3), (64, 128, GROUP, 4, 4, 0, "mmah", 3), (64, 128, GROUP, 8, 4, 0, "mmah", 3),
                 (64, 128, GROUP, 4, 4, 0, "mmah", 4), (128, 128, GROUP, 8, 3, 0, "mmah", 3), (128, 128, GROUP, 8, 4, 0, "mmah", 3),
                 (128, 128, GROUP, 8, 3, 0, "mmah", 4)]
# Many tokens (gemm_w4a16_dq.py): dequantize to x's dtype, then the tuned bf16/fp16 GEMM; tuple
# (_, BLOCK_N, BLOCK_K, warps, _, _, "dq") sets the dequantization launch. Four launch shapes timed at
# M = 4096 within 0.5% of each other (the dequantization moves 2.5 bytes per weight at ~2.3 TB/s), so one.
W4_DQ = [(0, 32, 256, 4, 1, 0, "dq")]
W4_DQ_TRIAL = [(0, 64, 256, 8, 1, 0, "dq"), (0, 16, 512, 4, 1, 0, "dq"), (0, 32, 512, 8, 1, 0, "dq")]
_INTERP4_MID = [(32, 16, GROUP, 4, 2, 0, "mmah", 2), (0, 16, GROUP, 4, 1, 0, "dq")]
# v3 ("mma2") tiles for M > 16, the only path there before session 11; its first config stays a candidate of
# buckets 32 / 64 (a compile fallback: 0.21-0.53x of cuBLAS on the H100 where the DQ = 2 kernel runs 1.4-2.8x).
_W4_LARGE = [(64, 64, 128, 4, 4, 1), (64, 128, 128, 4, 4, 1), (128, 128, 128, 8, 3, 1)]
_INTERP4 = [(16, 16, 2 * GROUP, 4, 1, 2)]
_INTERP4_GEMV = [(4, 16, 2 * GROUP, 4, 1, 2, "gemv")]
_INTERP4_GEMV5 = [(4, 16, GROUP, 4, 1, 0, "gemv5", 1)]
_INTERP4_GEMV6 = [(1, 32, GROUP, 4, 1, 0, "gemv6", 2, 4, 4)]
_INTERP4_MMAT = [(16, 16, 2 * GROUP, 4, 1, 2, "mmat")]


def w4_candidates(M: int, interpreter: bool = False):
    """Autotuning candidate list of gemm_w4a16 for M tokens (what the Tuner searches)."""
    if interpreter:
        return _INTERP4_GEMV if M <= 4 else (_INTERP4_MMAT + _INTERP4_MMAH if M <= 16 else _INTERP4_MID + _INTERP4)
    if M == 1:  # v7 GEMV first: faster than v5 on all four shapes in session5_tune_w4a16_v7_h200.csv;
        # v5 (fastest in tune_w4a16_v5_h200.csv and session4_tune_w4a16_v6_h200.csv) stays a candidate
        return _W4_GEMV7_M1 + _W4_GEMV5 + _W4_GEMV[:2] + _W4_MMAT[:2] + _W4_MMAH[:2]
    if M <= 4:  # M = 4 measured: mmat first (3 of 4 shapes), gemv5 with 128 rows won 4096x14336
        return _mmah_list() + _W4_MMAT[:2] + _W4_GEMV5 + _W4_GEMV[:2]
    if M <= 16:
        return _mmah_list() + _W4_MMAT + _W4_SKINNY
    b = m_bucket(M)
    if b <= 64:
        return W4_MMAH_MID[b] + _W4_LARGE[:1]
    if b <= 512:
        return W4_MMAH_MID[512] + W4_DQ
    return W4_DQ + W4_MMAH_MID[512][:1]  # the kernel stays a candidate: a GPU where dequantization is slow


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
        if path == "gemv6":
            _launch_gemv6(x, q32, scales, y, c, is_interpreter())
            return
        if path == "dq":
            gemm_w4a16_dq(x, qweight, scales, y, c)
            return
        if path == "mmah":
            gemm_w4a16_mmah(x, cached_repack_mmah(qweight, scales, c[1]), y, c)
            return
        if path == "gemv7":
            launch_gemv7_public(x, qweight, scales, y, (c[1], c[3], c[4], c[7], c[8], c[9], c[10], *c[11:14]))
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
        config = _t4.pick(_tuner_key(M, N, K, x.dtype), w4_candidates(M, is_interpreter()), launch)
    launch(config)
    return y


def _tuner_key(M: int, N: int, K: int, dtype):
    """One tuned config per M up to 16 (each has its own path: GEMV, DQ = 2 ...), per M bucket above."""
    return (m_bucket(M) if M > 16 else M, N, K, dtype)


def gemm_w4a16_config(M: int, N: int, K: int, dtype):
    """The config the tuner picked for M tokens of an N x K weight in ``dtype`` (None before the first call)."""
    return _t4.cache.get(_tuner_key(M, N, K, dtype))


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
