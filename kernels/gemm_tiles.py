"""Tile building blocks shared by the bf16/fp16 GEMM kernels (gemm.py, gemm_splitk.py).

Grouped tile order (Triton tutorial 03's GROUP_M super-rows: consecutive programs reuse W tiles
from L2), the K-loop accumulators for pointer loads and for tensor descriptors, and the masked
store of a tile.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _tile_coords(tile_id, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of output tile ``tile_id`` in GROUP_M-grouped order (W tiles reused from L2)."""
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (tile_id // group) * GROUP_M
    size_m = tl.minimum(num_pid_m - first_m, GROUP_M)
    return first_m + ((tile_id % group) % size_m), (tile_id % group) // size_m


@triton.jit
def _acc_ptr(x_ptr, w_ptr, pid_m, pid_n, M, N, K, sxm, sxk, swn, swk, k_lo, k_hi,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr):
    """fp32 [BLOCK_M, BLOCK_N] = sum over K tiles k_lo..k_hi-1 of x_tile @ w_tile^T (pointer loads)."""
    offs_k = tl.arange(0, BLOCK_K)
    # Out-of-range rows/cols are wrapped (never read out of bounds) and masked at the store.
    rm = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    x_ptrs = x_ptr + rm[:, None] * sxm + (k_lo * BLOCK_K + offs_k)[None, :] * sxk
    w_ptrs = w_ptr + rn[:, None] * swn + (k_lo * BLOCK_K + offs_k)[None, :] * swk
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(k_lo, k_hi):
        if EVEN_K:
            a = tl.load(x_ptrs)
            b = tl.load(w_ptrs)
        else:
            kmask = offs_k[None, :] < K - kt * BLOCK_K
            a = tl.load(x_ptrs, mask=kmask, other=0.0)
            b = tl.load(w_ptrs, mask=kmask, other=0.0)
        acc = tl.dot(a, tl.trans(b), acc)
        x_ptrs += BLOCK_K * sxk
        w_ptrs += BLOCK_K * swk
    return acc


@triton.jit
def _acc_tma(a_desc, b_desc, pid_m, pid_n, k_lo, k_hi,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """As :func:`_acc_ptr` through tensor descriptors (the copy engine zero-fills the K tail)."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(k_lo, k_hi):
        a = a_desc.load([pid_m * BLOCK_M, kt * BLOCK_K])
        b = b_desc.load([pid_n * BLOCK_N, kt * BLOCK_K])
        acc = tl.dot(a, b.T, acc)
    return acc


@triton.jit
def _store_tile(y_ptr, acc, pid_m, pid_n, M, N, sym, syn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """y[tile] = acc in y's dtype, rows >= M and cols >= N masked."""
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    y_ptrs = y_ptr + offs_m[:, None].to(tl.int64) * sym + offs_n[None, :] * syn  # M*N may exceed 2^31
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))
