"""Dense GEMM ``y = x @ W^T`` for bf16 and fp16 (x [M, K], W [N, K] as nn.Linear stores it).

Algorithm: the classic tiled GEMM (Triton tutorial 03 "Matrix Multiplication"): each program owns a
BLOCK_M x BLOCK_N tile of y, walks K in BLOCK_K steps, keeps an fp32 accumulator in registers and
issues tensor-core MMAs through ``tl.dot`` (wgmma on Hopper when num_warps is a multiple of 4 and
the tile is >= 64 rows; mma.sync otherwise); ``num_stages`` software-pipelines the global->shared
copies. Programs are ordered in GROUP_M super-rows so consecutive programs reuse W tiles from L2.
W is read K-major ([BLOCK_N, BLOCK_K] tiles, transposed in registers), which is also the layout the
fp8 wgmma needs (see gemm_fp8.py).

Small M (decode, M <= 16) is memory-bound on W: a "skinny" family with BLOCK_M = 16 and narrow
BLOCK_N (16-64) streams contiguous slabs of W with deep pipelining; for narrow N / long K (down
projections) skinny split-K candidates give the GPU enough programs. Mid M (128 < M <= 512) has too
few large tiles to fill the GPU, so split-K, hybrid and (opt-in) stream-K candidates join
(gemm_splitk.py).

On Hopper, tensor-descriptor (TMA) and persistent variants (gemm_tma.py) join the candidates for
M > 64. Configs are chosen per (M bucket, N, K, dtype) by :class:`harness.Tuner` (M buckets: powers of two
16..4096, so M = 1...16384 map onto 9 keys per weight shape). Split-K pieces finish in the same
launch (gemm_splitk.py: the last to arrive on a per-tile counter adds the others' fp32 partials).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ._common import check, check_out, check_tensor, m_bucket
from .gemm_splitk import _launch_splitk, _launch_streamk
from .gemm_tiles import _acc_ptr, _store_tile, _tile_coords
from .gemm_tma import TMA_BF16, TMA_BF16_MID, launch_tma, tma_ok
from .harness import Tuner, is_interpreter

# (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages), by M bucket.
_SKINNY = [(16, 32, 256, 1, 4, 4), (16, 64, 256, 1, 4, 4), (16, 16, 512, 1, 4, 4),
           (16, 64, 128, 1, 4, 6)]
# Skinny split-K for narrow N / long K (Llama-3.1-8B down 1 x 4096 x 14336: 64 tiles of 16 x 64
# for 132 SMs -- half the GPU idle, 0.78 of cuBLAS in run 7): SPLIT pieces of K per tile; 4 stages
# (80 KiB of shared memory) let 2 programs share an SM. SPLIT is a runtime argument: one compile.
_SKINNY_SPLITK = [(16, 64, 128, 1, 4, 4, "splitk", 2, False), (16, 64, 128, 1, 4, 4, "splitk", 4, False),
                  (16, 64, 128, 1, 4, 6, "splitk", 2, False), (16, 32, 256, 1, 4, 4, "splitk", 4, False)]
_SMALL = [(32, 64, 256, 8, 4, 4), (64, 64, 128, 8, 4, 4), (64, 128, 128, 8, 4, 4),
          (32, 128, 128, 8, 4, 5)]
_MEDIUM = [(64, 128, 64, 8, 4, 4), (128, 128, 64, 8, 8, 4), (64, 256, 64, 8, 8, 4),
           (128, 64, 64, 8, 4, 4)]
_LARGE = [(128, 256, 64, 8, 8, 3), (128, 256, 64, 8, 8, 4), (256, 128, 64, 8, 8, 3),
          (128, 128, 64, 8, 8, 4), (128, 128, 64, 8, 4, 4)]
# Split-K: (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages, "splitk", SPLIT, tma).
# M = 256, N = 4096: 128 x 128 tiles x SPLIT 2 = 128 programs for 132 SMs; 3 stages (96 KiB of
# shared memory) let 2 programs share an SM; 64-row tiles for the narrow-N shapes (N 2048-4608).
# H100 run 5 dropped 128 x 128 x SPLIT 3 and 128 x 256 x SPLIT 2/4 (never the fastest).
_SPLITK_TMA = [(128, 128, 64, 8, 8, 4, "splitk", 2, True), (128, 128, 64, 8, 8, 3, "splitk", 2, True),
               (128, 128, 64, 8, 8, 4, "splitk", 4, True), (128, 128, 64, 8, 4, 4, "splitk", 2, True),
               (64, 128, 64, 8, 4, 4, "splitk", 2, True), (64, 128, 64, 8, 4, 3, "splitk", 4, True),
               (64, 64, 128, 8, 4, 3, "splitk", 2, True)]
_SPLITK_PTR = [(128, 128, 64, 8, 8, 4, "splitk", 2, False), (128, 128, 64, 8, 8, 4, "splitk", 4, False)]
# Stream-K: (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages, "streamk", programs per SM,
# tma). 256 x 128 covers M <= 256 in one tile row (W read by one program only); 128 x 256 and
# 128 x 128 (3 stages = 96 KiB: 2 programs per SM) rely on the row-major order for W reuse.
# Off by default: run 7 (H200) measured them slower than split-K / plain tiles on 14 of the 15
# M=256 layer shapes (kernels/NOTES.md), and every candidate costs compile time in a calibration;
# LLMPERF_GEMM_STREAMK=1 adds them to the tuning candidates.
_STREAMK_TMA = [(256, 128, 64, 1, 8, 3, "streamk", 1, True), (128, 256, 64, 1, 8, 3, "streamk", 1, True),
                (128, 128, 64, 1, 4, 3, "streamk", 2, True), (128, 128, 64, 1, 8, 4, "streamk", 1, True)]
_STREAMK_PTR = [(128, 128, 64, 1, 8, 4, "streamk", 1, False)]
# Hybrid data-parallel + split-K tail: (..., "hybrid", programs per SM, tma); see gemm_splitk.hybrid_plan.
# For the shapes whose tile count is just past whole waves (Qwen2.5-7B gate_up M = 256: 2.24 waves
# of 128 x 256 tiles), with no fix-up on the full waves. H200 runs 16-18 (kernels/NOTES.md): it wins
# on Qwen gate_up (116-119 vs 126-128 us) and loses where its tail needs a 4-way fix-up (Llama-8B
# gate_up 131 vs 98 us), so it stays a candidate of the 256/512 buckets only.
_HYBRID_TMA = [(128, 256, 64, 8, 8, 3, "hybrid", 1, True), (128, 128, 64, 8, 8, 4, "hybrid", 1, True),
               (64, 128, 64, 8, 4, 4, "hybrid", 2, True)]
# Buckets 1024 and 2048: the two large hybrid tiles, for the shapes whose tile count is just past
# whole waves (Qwen2.5-7B qkv 1024 x 4608: 288 128 x 128 tiles = 2.18 waves, 3 rounds of the plain
# kernel; hybrid: 2 waves + 24 tiles x 5 pieces). H200 session 5: Qwen qkv M = 1024 0.72 -> 0.76-0.78
# of cuBLAS, Qwen o 0.89 -> 0.92. Not from 4096 up: that bucket is tuned at its first M and serves
# every larger M, where the hybrid plan (recomputed per launch) differs -- picked at M = 4096 it
# lost at M = 16384 (Llama-3.2-1B qkv 0.99 -> 0.92, down 0.99 -> 0.93).
_HYBRID_LARGE = _HYBRID_TMA[:2]
_INTERP = [(16, 16, 32, 2, 4, 1)]


def configs_for(m: int, tma: bool = False):
    """Candidate configs for a token count m (pruned by M bucket to keep autotuning short);
    ``tma`` adds the tensor-descriptor configs of gemm_tma.py (Hopper+, aligned operands)."""
    if is_interpreter():
        return _INTERP
    b = m_bucket(m)
    if b <= 16:
        return _SKINNY + _SKINNY_SPLITK
    if b <= 64:
        return _SMALL
    if b <= 512:
        sk = os.environ.get("LLMPERF_GEMM_STREAMK", "0") == "1"
        return _MEDIUM + (TMA_BF16_MID + TMA_BF16[:2] + _SPLITK_TMA + _HYBRID_TMA + (_STREAMK_TMA if sk else [])
                          if tma else _SPLITK_PTR + (_STREAMK_PTR if sk else []))
    if b <= 2048:
        return _LARGE[:3] + (TMA_BF16 + _HYBRID_LARGE if tma else [])
    return _LARGE[:3] + (TMA_BF16 if tma else [])


@triton.jit
def _gemm_kernel(x_ptr, w_ptr, y_ptr, M, N, K, sxm, sxk, swn, swk, sym, syn,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                 GROUP_M: tl.constexpr, EVEN_K: tl.constexpr):
    pid_m, pid_n = _tile_coords(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    acc = _acc_ptr(x_ptr, w_ptr, pid_m, pid_n, M, N, K, sxm, sxk, swn, swk, 0, tl.cdiv(K, BLOCK_K),
                   BLOCK_M, BLOCK_N, BLOCK_K, EVEN_K)
    _store_tile(y_ptr, acc, pid_m, pid_n, M, N, sym, syn, BLOCK_M, BLOCK_N)


_tuner = Tuner("gemm")


def _launch(x, w, y, cfg):
    """Launch the kernel a config names: 6-tuple pointer kernel, "tma" (gemm_tma.py), "splitk" or
    "streamk"."""
    if len(cfg) > 6:
        launch = {"splitk": _launch_splitk, "hybrid": _launch_splitk, "streamk": _launch_streamk}.get(cfg[6], launch_tma)
        return launch(x, w, y, cfg)
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
    receives the result; ``config`` forces one: (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, warps, stages),
    optionally followed by ("tma", persistent, flatten), ("splitk", SPLIT, tma) or ("streamk",
    programs per SM, tma).
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
