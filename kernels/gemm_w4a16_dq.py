"""W4A16 for many tokens (prefill, large decode batches): dequantize the int4 weight to x's dtype,
then the bf16/fp16 GEMM of gemm.py ("dq" path of gemm_w4a16).

Why: the W4A16 kernels of gemm_w4a16 are built for M <= 16, where the weight bytes bound the time.
With M in the thousands a GEMM is compute-bound; the dequantized weight costs 2.5 bytes per
weight once (0.5 read + 2 written: 147 MB for 14336 x 4096, ~60 us on an H100, measured as the
difference to the bf16 GEMM in session 11) while the GEMM does 2 M FLOP per weight (M = 4096:
~0.6 ms for the same weight), so at M = 4096 dequantize-then-GEMM runs at 0.89-0.90x of bf16 cuBLAS
(kernels/NOTES.md, session 11); at M = 1024 the same ~60 us is a third of the time (0.67-0.73x).
This is what exllama / exllamav2 do above a token threshold (reconstruct fp16 weights, then
cuBLAS); here the GEMM is our own Triton kernel with its tuner.

Numerics: W[n, k] = (q - 8) * scale computed in fp32 and rounded once to x's dtype (bf16: 8
significant bits), as any dequantize-then-GEMM engine stores it; the fp32-accumulated GEMM follows.
Memory: one temporary [N, K] weight in x's dtype per call (e.g. 117 MB for 14336 x 4096 bf16).

Layout: the public one of gemm_w4a16 (qweight uint8 [N, K / 2], k = 2j low / 2j + 1 high nibble,
scales [N, K / 128]).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check
from .gemm import gemm
from .gemm_w4a16_gemv import GROUP


@triton.jit
def _w4_dequant_kernel(q_ptr, s_ptr, w_ptr, N, K, sqn, ssn, swn,
                       BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, G: tl.constexpr):
    """Program (i, j): W[i BN .. +BN, j BK .. +BK] = (code - 8) * scale, in w's dtype.

    q: uint8 [N, K / 2] (row stride sqn); s: [N, K / G] (row stride ssn); w: [N, K] (row stride swn)."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = rn < N
    rh = pid_k * (BLOCK_K // 2) + tl.arange(0, BLOCK_K // 2)
    p = tl.load(q_ptr + rn[:, None].to(tl.int64) * sqn + rh[None, :], mask=nmask[:, None], other=0)
    lo = (p & 15).to(tl.float32) - 8.0
    hi = (p >> 4).to(tl.float32) - 8.0
    codes = tl.interleave(lo, hi)  # [BN, BK]: k = 2j from the low nibble, 2j + 1 from the high one
    rg = pid_k * (BLOCK_K // G) + tl.arange(0, BLOCK_K // G)
    sc = tl.load(s_ptr + rn[:, None].to(tl.int64) * ssn + rg[None, :], mask=nmask[:, None], other=0).to(tl.float32)
    w = tl.reshape(tl.reshape(codes, (BLOCK_N, BLOCK_K // G, G)) * sc[:, :, None], (BLOCK_N, BLOCK_K))
    rk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    tl.store(w_ptr + rn[:, None].to(tl.int64) * swn + rk[None, :], w.to(w_ptr.dtype.element_ty),
             mask=nmask[:, None])


def dequant_w4_triton(qweight: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype,
                      block_n: int = 32, block_k: int = 256, num_warps: int = 4) -> torch.Tensor:
    """W [N, K] in ``dtype`` from the public int4 layout (one memory-bound launch)."""
    N, K = qweight.shape[0], qweight.shape[1] * 2
    check(K % GROUP == 0, f"K must be a multiple of {GROUP}, got {K}.")
    bk = block_k if K % block_k == 0 else GROUP
    w = torch.empty((N, K), dtype=dtype, device=qweight.device)
    _w4_dequant_kernel[(triton.cdiv(N, block_n), K // bk)](
        qweight, scales, w, N, K, qweight.stride(0), scales.stride(0), w.stride(0),
        BLOCK_N=block_n, BLOCK_K=bk, G=GROUP, num_warps=num_warps)
    return w


def gemm_w4a16_dq(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, y: torch.Tensor, config) -> torch.Tensor:
    """``y = x @ dequant(W)^T``: the weight dequantized into a temporary [N, K] of x's dtype, then
    :func:`gemm.gemm` (its own tuner picks the GEMM config). config = (_, BLOCK_N, BLOCK_K, warps,
    _, _, "dq") sets the dequantization launch."""
    _, bn, bk, nw = config[:4]
    w = dequant_w4_triton(qweight, scales, x.dtype, block_n=bn, block_k=bk, num_warps=nw)
    return gemm(x, w, out=y)
