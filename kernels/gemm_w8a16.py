"""Weight-only int8 GEMM for the decode regime (W8A16), ``y = x @ dequant(W)^T``.

x [M, K] is bf16/fp16; the weight is streamed as int8 (half the bytes of bf16, which bound decode
at M <= 16) and scaled in registers.

Layout (documented here and in kernels/README.md): ``qweight`` int8 [N, K] (row n = output
channel, K contiguous), ``scales`` [N] in x's dtype; ``W[n, k] = qweight[n, k] * scales[n]``
(symmetric per-channel, as LLM.int8()/SmoothQuant weight-only). The tiled GEMM of gemm.py with the
int8 tile converted to x's dtype before the dot and the per-channel scale applied once in the
epilogue.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check, check_activation, check_out, check_tensor, m_bucket
from .harness import Tuner, is_interpreter

# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)
_W8_SKINNY = [(16, 64, 256, 4, 4), (16, 32, 256, 4, 5), (16, 128, 128, 4, 5)]
_W8_LARGE = [(64, 128, 64, 4, 4), (128, 128, 64, 8, 4), (128, 256, 64, 8, 3)]
_INTERP8 = [(16, 16, 32, 4, 1)]


@triton.jit
def _w8_kernel(x_ptr, q_ptr, s_ptr, y_ptr, M, N, K, sxm, sqn, sym,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    rm = offs_m % M
    rn = offs_n % N
    x_ptrs = x_ptr + rm[:, None] * sxm + offs_k[None, :]
    q_ptrs = q_ptr + rn[:, None] * sqn + offs_k[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(x_ptrs)
            q = tl.load(q_ptrs)
        else:
            kmask = offs_k[None, :] < K - kt * BLOCK_K
            a = tl.load(x_ptrs, mask=kmask, other=0.0)
            q = tl.load(q_ptrs, mask=kmask, other=0)
        acc = tl.dot(a, tl.trans(q.to(a.dtype)), acc)
        x_ptrs += BLOCK_K
        q_ptrs += BLOCK_K
    s = tl.load(s_ptr + rn).to(tl.float32)
    acc = acc * s[None, :]
    y_ptrs = y_ptr + offs_m[:, None].to(tl.int64) * sym + offs_n[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


_t8 = Tuner("gemm_w8a16")


def gemm_w8a16(x, qweight, scales, out=None, config=None):
    """``y = x @ W^T`` with W int8 [N, K] and per-output-channel scales [N] (x's dtype)."""
    check_tensor(qweight, "qweight", 2, (torch.int8,))
    N, K = qweight.shape
    check_activation(x, K)
    check_tensor(scales, "scales", 1, (x.dtype,))
    check(scales.shape[0] == N, f"scales must have shape ({N},), got {tuple(scales.shape)}.")
    M = x.shape[0]
    y = check_out(out, (M, N), x.dtype, x.device)

    def launch(c):
        bm, bn, bk, nw, ns = c
        grid = (triton.cdiv(N, bn), triton.cdiv(M, bm))
        _w8_kernel[grid](x, qweight, scales, y, M, N, K, x.stride(0), qweight.stride(0), y.stride(0),
                         BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, EVEN_K=(K % bk == 0), num_warps=nw, num_stages=ns)

    if config is None:
        cands = _INTERP8 if is_interpreter() else (_W8_SKINNY if M <= 16 else _W8_LARGE)
        config = _t8.pick((m_bucket(M), N, K, x.dtype), cands, launch)
    launch(config)
    return y


def quantize_w8(w: torch.Tensor):
    """Symmetric per-channel int8 quantization of W [N, K] -> (qweight int8 [N, K], scales [N])."""
    s = w.float().abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(w.float() / s[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
    return q, s.to(w.dtype).contiguous()


def gemm_w8a16_ref(x, qweight, scales):
    """fp32 reference: ``x @ (qweight * scales[:, None])^T``."""
    return x.float() @ (qweight.float() * scales.float()[:, None]).t()
