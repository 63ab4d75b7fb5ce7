"""Memory-bound kernels that calibrate achievable HBM bandwidth: fused residual-add + RMSNorm, copy.

``add_rmsnorm``: ``h = x + residual`` (written to ``residual_out``, the next layer's residual) and
``y = h / sqrt(mean(h^2) + eps) * weight`` (RMSNorm, Zhang & Sennrich 2019, arXiv:1910.07467), one
pass: each program owns one row of H elements, loads x and residual once, reduces in fp32 and
writes both outputs. Compulsory bytes: 4*T*H + H elements (see :func:`add_rmsnorm_bytes`).

``copy``: a streaming copy, flat over the elements, BLOCK elements per program with 16-byte
vector accesses (the pointers are 16-byte aligned and the block is a multiple of 8 elements); the
block size and warps are tuned per size bucket (8-64 KB per program).
Bytes moved: 2 * numel * itemsize (read + write), the same count used for torch's device copy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check, check_out, check_tensor
from .harness import Tuner, is_interpreter

_copy_tuner = Tuner("copy")
_COPY_CANDS = [(16384, 8), (32768, 8), (8192, 4), (65536, 16), (16384, 4)]  # (bytes per program, warps)


@triton.jit
def _add_rmsnorm_kernel(x_ptr, r_ptr, w_ptr, y_ptr, h_ptr, H, sx, sr, sy, sh, eps,
                        BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    mask = offs < H
    x = tl.load(x_ptr + row * sx + offs, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + row * sr + offs, mask=mask, other=0.0).to(tl.float32)
    h = x + r
    tl.store(h_ptr + row * sh + offs, h.to(h_ptr.dtype.element_ty), mask=mask)
    inv = 1.0 / tl.sqrt(tl.sum(h * h, axis=0) / H + eps)
    w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + row * sy + offs, (h * inv * w).to(y_ptr.dtype.element_ty), mask=mask)


def add_rmsnorm(x, residual, weight, eps: float = 1e-6, out=None, residual_out=None):
    """Return ``(y, h)``: ``h = x + residual``, ``y = rmsnorm(h) * weight``; x/residual [T, H].

    Pass ``residual_out=residual`` to update the residual in place (as inference engines do).
    """
    dts = (torch.bfloat16, torch.float16, torch.float32)
    check_tensor(x, "x", 2, dts)
    check_tensor(residual, "residual", 2, (x.dtype,))
    check_tensor(weight, "weight", 1, (x.dtype,))
    check(x.shape == residual.shape, f"x and residual must have the same shape, got {tuple(x.shape)} and {tuple(residual.shape)}.")
    check(weight.shape[0] == x.shape[1], f"weight must have H = {x.shape[1]} elements, got {weight.shape[0]}.")
    T, H = x.shape
    check(H <= 65536, f"rows longer than 65536 elements are not supported, got H = {H}.")
    y = check_out(out, (T, H), x.dtype, x.device)
    h = check_out(residual_out, (T, H), x.dtype, x.device)
    block = triton.next_power_of_2(H)
    nw = 1 if is_interpreter() else min(max(block * x.element_size() // 512, 4), 16)
    _add_rmsnorm_kernel[(T,)](x, residual, weight, y, h, H, x.stride(0), residual.stride(0),
                              y.stride(0), h.stride(0), eps, BLOCK=block, num_warps=nw)
    return y, h


def add_rmsnorm_ref(x, residual, weight, eps: float = 1e-6):
    """fp32 reference ``(y, h)``."""
    h = x.float() + residual.float()
    y = h * torch.rsqrt(h.pow(2).mean(dim=1, keepdim=True) + eps) * weight.float()
    return y, h


def add_rmsnorm_bytes(tokens, hidden, bytes_per_elem):
    """Compulsory bytes of fused add+RMSNorm: read x, residual (T*H each) and weight (H), write y, h."""
    return (4.0 * tokens * hidden + hidden) * bytes_per_elem


@triton.jit
def _copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    if pid * BLOCK + BLOCK <= n:
        tl.store(dst_ptr + offs, tl.load(src_ptr + offs))
    else:
        mask = offs < n
        tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def copy(src: torch.Tensor, out: torch.Tensor | None = None, block: int | None = None, num_warps: int = 8):
    """Streaming copy of a contiguous tensor (any dtype); returns ``out``. ``block`` (elements per
    program) forces a config; otherwise (bytes per program, warps) is tuned per power-of-two size."""
    check(isinstance(src, torch.Tensor) and src.is_contiguous(), "src must be a contiguous torch.Tensor.")
    dst = check_out(out, tuple(src.shape), src.dtype, src.device)
    n = src.numel()
    if n == 0:
        return dst

    def launch(c):
        blk = c[0] // src.element_size()
        _copy_kernel[(triton.cdiv(n, blk),)](src.reshape(-1), dst.reshape(-1), n, BLOCK=blk, num_warps=c[1])

    if block is not None:
        cfg = (block * src.element_size(), num_warps)
    elif is_interpreter():
        cfg = (1024 * src.element_size(), 1)
    else:
        nbytes = n * src.element_size()
        cfg = _copy_tuner.pick((1 << max(nbytes - 1, 1).bit_length(),), _COPY_CANDS, launch)
    launch(cfg)
    return dst


def copy_ref(src: torch.Tensor) -> torch.Tensor:
    return src.clone()


def copy_bytes(numel, bytes_per_elem):
    """Bytes a copy moves: each element read once and written once."""
    return 2.0 * numel * bytes_per_elem
