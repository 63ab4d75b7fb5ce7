"""Dense GEMM ``y = x @ W^T`` for bf16 and fp16 (x [M, K], W [N, K] as nn.Linear stores it).

Algorithm: the classic tiled GEMM (Triton tutorial 03 "Matrix Multiplication"): each program owns a
BLOCK_M x BLOCK_N tile of y, walks K in BLOCK_K steps, keeps an fp32 accumulator in registers and
issues tensor-core MMAs through ``tl.dot`` (wgmma on Hopper when num_warps is a multiple of 4 and
the tile is >= 64 rows; mma.sync otherwise); ``num_stages`` software-pipelines the global->shared
copies. Programs are ordered in GROUP_M super-rows so consecutive programs reuse W tiles from L2.
W is read K-major ([BLOCK_N, BLOCK_K] tiles, transposed in registers), which is also the layout the
fp8 wgmma needs (see gemm_fp8.py).

Small M (decode, M <= 16) is memory-bound on W: a "skinny" family with BLOCK_M = 16 and narrow
BLOCK_N (16-64) gives N/BLOCK_N >= #SMs programs, each streaming a contiguous slab of W with deep
pipelining, so no split-K reduction is needed for the layer shapes of 1-8B models.

On Hopper, tensor-descriptor (TMA) and persistent variants (gemm_tma.py) join the candidates for
M > 64. Configs are chosen per (M bucket, N, K, dtype) by :class:`harness.Tuner` (M buckets: powers of two
16..4096, so M = 1...16384 map onto 9 keys per weight shape).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check, check_out, check_tensor, m_bucket
from .gemm_tma import TMA_BF16, TMA_BF16_MID, launch_tma, tma_ok
from .harness import Tuner, is_interpreter

# (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages), by M bucket.
_SKINNY = [(16, 32, 256, 1, 4, 4), (16, 64, 256, 1, 4, 4), (16, 16, 512, 1, 4, 4),
           (16, 64, 128, 1, 4, 6)]
_SMALL = [(32, 64, 256, 8, 4, 4), (64, 64, 128, 8, 4, 4), (64, 128, 128, 8, 4, 4),
          (32, 128, 128, 8, 4, 5)]
_MEDIUM = [(64, 128, 64, 8, 4, 4), (128, 128, 64, 8, 8, 4), (64, 256, 64, 8, 8, 4),
           (128, 64, 64, 8, 4, 4)]
_LARGE = [(128, 256, 64, 8, 8, 3), (128, 256, 64, 8, 8, 4), (256, 128, 64, 8, 8, 3),
          (128, 128, 64, 8, 8, 4), (128, 128, 64, 8, 4, 4)]
_INTERP = [(16, 16, 32, 2, 4, 1)]


def configs_for(m: int, tma: bool = False):
    """Candidate configs for a token count m (pruned by M bucket to keep autotuning short);
    ``tma`` adds the tensor-descriptor configs of gemm_tma.py (Hopper+, aligned operands)."""
    if is_interpreter():
        return _INTERP
    b = m_bucket(m)
    if b <= 16:
        return _SKINNY
    if b <= 64:
        return _SMALL
    if b <= 512:
        return _MEDIUM + (TMA_BF16_MID + TMA_BF16[:2] if tma else [])
    return _LARGE[:3] + (TMA_BF16 if tma else [])


@triton.jit
def _gemm_kernel(x_ptr, w_ptr, y_ptr, M, N, K, sxm, sxk, swn, swk, sym, syn,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                 GROUP_M: tl.constexpr, EVEN_K: tl.constexpr):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (pid // group) * GROUP_M
    size_m = tl.minimum(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + ((pid % group) % size_m)
    pid_n = (pid % group) // size_m

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # Out-of-range rows/cols are wrapped (never read out of bounds) and masked at the store.
    rm = offs_m % M
    rn = offs_n % N
    x_ptrs = x_ptr + rm[:, None] * sxm + offs_k[None, :] * sxk
    w_ptrs = w_ptr + rn[:, None] * swn + offs_k[None, :] * swk
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(0, tl.cdiv(K, BLOCK_K)):
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
    y = acc.to(y_ptr.dtype.element_ty)
    y_ptrs = y_ptr + offs_m[:, None].to(tl.int64) * sym + offs_n[None, :] * syn  # M*N may exceed 2^31
    tl.store(y_ptrs, y, mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


_tuner = Tuner("gemm")


def _launch(x, w, y, cfg):
    if len(cfg) > 6:
        return launch_tma(x, w, y, cfg)
    bm, bn, bk, gm, nw, ns = cfg
    M, K = x.shape
    N = w.shape[0]
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    _gemm_kernel[grid](x, w, y, M, N, K, x.stride(0), x.stride(1), w.stride(0), w.stride(1),
                       y.stride(0), y.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm,
                       EVEN_K=(K % bk == 0), num_warps=nw, num_stages=ns)


def gemm(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor | None = None, config=None) -> torch.Tensor:
    """``y[M, N] = x[M, K] @ w[N, K]^T`` in bf16 or fp16 with fp32 accumulation.

    x and w must share a dtype (bf16/fp16) and device and be contiguous along K. ``out`` (optional)
    receives the result; ``config`` forces one (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, warps, stages).
    """
    dts = (torch.bfloat16, torch.float16)
    check_tensor(x, "x", 2, dts)
    check_tensor(w, "w", 2, dts)
    check(x.dtype == w.dtype, f"x and w must have the same dtype, got {x.dtype} and {w.dtype}.")
    check(x.shape[1] == w.shape[1], f"x [M, K] and w [N, K] must share K, got {tuple(x.shape)} and {tuple(w.shape)}.")
    check(x.device == w.device, f"x and w must be on the same device, got {x.device} and {w.device}.")
    check(x.shape[0] > 0 and w.shape[0] > 0 and x.shape[1] > 0, "gemm needs M, N, K > 0.")
    M, N = x.shape[0], w.shape[0]
    y = check_out(out, (M, N), x.dtype, x.device)
    if config is None:
        key = (m_bucket(M), N, x.shape[1], x.dtype)
        config = _tuner.pick(key, configs_for(M, tma_ok(x, w, y)), lambda c: _launch(x, w, y, c))
    _launch(x, w, y, config)
    return y


def gemm_ref(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """fp32 reference: ``x.float() @ w.float().T``."""
    return x.float() @ w.float().t()
