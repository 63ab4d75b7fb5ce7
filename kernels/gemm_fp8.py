"""FP8 (e4m3) GEMM ``y = (sx * x) @ (sw * W)^T`` with per-tensor, per-row/col or 128x128 block scales.

x [M, K] and W [N, K] are ``torch.float8_e4m3fn`` (K-contiguous, the operand layout the Hopper fp8
wgmma requires: both operands K-major). Output is bf16 (or fp16); accumulation is fp32.

Scale layouts (all float32):
  * ``"tensor"``: sx and sw are 1-element tensors (one scale each, as ``torch._scaled_mm``).
  * ``"row"``: sx [M] per token row, sw [N] per output channel; applied once in the epilogue
    (rank-1 scaling commutes with the K reduction).
  * ``"block"``: DeepGEMM's fine-grained scheme (DeepSeek-V3 tech report arXiv:2412.19437 §3.3.2,
    github.com/deepseek-ai/DeepGEMM): sx [M, ceil(K/128)] per row per 128-wide K slice ("1x128"),
    sw [ceil(N/128), ceil(K/128)] per 128x128 weight block. The scales change along K, so each
    128-wide K step's MMA partial is scaled and added to the fp32 accumulator in registers
    ("promotion" to CUDA cores every 128 K, as DeepGEMM does).

Algorithm otherwise as gemm.py (tiled, pipelined, grouped program order; TMA/persistent
candidates from gemm_tma.py on Hopper for the tensor/row modes). Per-tensor uses the row
path with a zero stride, so it is one kernel specialisation less.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import check, check_out, check_tensor, m_bucket
from .gemm_tma import TMA_FP8, TMA_FP8_MID, launch_tma, tma_ok
from .harness import Tuner, is_interpreter

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
# (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages)
_SKINNY = [(16, 64, 256, 1, 4, 4), (16, 32, 256, 1, 4, 4), (16, 128, 128, 1, 4, 5)]
_SMALL = [(64, 64, 128, 8, 4, 4), (64, 128, 128, 8, 4, 4)]
_LARGE = [(128, 256, 128, 8, 8, 3), (128, 128, 128, 8, 8, 4), (256, 128, 128, 8, 8, 3),
          (128, 128, 128, 8, 4, 4)]
_BLOCK = [(128, 128, 128, 8, 8, 3), (128, 128, 128, 8, 4, 4), (64, 128, 128, 8, 4, 4)]
_BLOCK_SKINNY = [(16, 128, 128, 1, 4, 4), (16, 64, 128, 1, 4, 5)]
_INTERP = [(16, 32, 128, 2, 4, 1)]


def configs_for(m: int, block_scaled: bool, tma: bool = False):
    if is_interpreter():
        return _INTERP
    b = m_bucket(m)
    if block_scaled:
        return _BLOCK_SKINNY if b <= 16 else _BLOCK
    if b <= 16:
        return _SKINNY
    if b <= 64:
        return _SMALL
    if b <= 512:
        return _SMALL + _LARGE[:2] + (TMA_FP8_MID + TMA_FP8[:2] if tma else [])
    return _LARGE[:3] + (TMA_FP8 if tma else [])


@triton.jit
def _gemm_fp8_kernel(x_ptr, w_ptr, y_ptr, sx_ptr, sw_ptr, M, N, K, sxm, swn, sym,
                     sx_sm, sx_sk, sw_sn, sw_sk,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                     GROUP_M: tl.constexpr, EVEN_K: tl.constexpr, BLOCK_SCALED: tl.constexpr):
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
    rm = offs_m % M
    rn = offs_n % N
    x_ptrs = x_ptr + rm[:, None] * sxm + offs_k[None, :]
    w_ptrs = w_ptr + rn[:, None] * swn + offs_k[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(x_ptrs)
            b = tl.load(w_ptrs)
        else:
            kmask = offs_k[None, :] < K - kt * BLOCK_K
            a = tl.load(x_ptrs, mask=kmask, other=0.0)
            b = tl.load(w_ptrs, mask=kmask, other=0.0)
        if BLOCK_SCALED:
            # BLOCK_K == 128 and BLOCK_N divides 128: one weight scale per tile, one x scale per row.
            sa = tl.load(sx_ptr + rm * sx_sm + kt * sx_sk)
            sb = tl.load(sw_ptr + ((pid_n * BLOCK_N) // 128) * sw_sn + kt * sw_sk)
            part = tl.dot(a, tl.trans(b))
            acc += part * (sa[:, None] * sb)
        else:
            acc = tl.dot(a, tl.trans(b), acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    if not BLOCK_SCALED:
        sa = tl.load(sx_ptr + rm * sx_sm)
        sb = tl.load(sw_ptr + rn * sw_sn)
        acc = acc * sa[:, None] * sb[None, :]
    y_ptrs = y_ptr + offs_m[:, None].to(tl.int64) * sym + offs_n[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


_tuner = Tuner("gemm_fp8")


def _launch(x, w, y, sx, sw, mode, cfg):
    if len(cfg) > 6:
        return launch_tma(x, w, y, cfg, sx, sw, int(mode == "row"), int(mode == "row"))
    bm, bn, bk, gm, nw, ns = cfg
    M, K = x.shape
    N = w.shape[0]
    if mode == "tensor":
        strides = (0, 0, 0, 0)
    elif mode == "row":
        strides = (1, 0, 1, 0)
    else:
        strides = (sx.stride(0), sx.stride(1), sw.stride(0), sw.stride(1))
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    _gemm_fp8_kernel[grid](x, w, y, sx, sw, M, N, K, x.stride(0), w.stride(0), y.stride(0), *strides,
                           BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=gm, EVEN_K=(K % bk == 0),
                           BLOCK_SCALED=(mode == "block"), num_warps=nw, num_stages=ns)


def gemm_fp8(x, w, sx, sw, mode: str = "row", out_dtype=torch.bfloat16, out=None, config=None):
    """``y = (sx * x) @ (sw * w)^T``; x [M, K], w [N, K] float8_e4m3fn, scales float32 (see module doc)."""
    check(mode in ("tensor", "row", "block"), f"mode must be 'tensor', 'row' or 'block', got {mode!r}.")
    check_tensor(x, "x", 2, (FP8,))
    check_tensor(w, "w", 2, (FP8,))
    check(x.shape[1] == w.shape[1], f"x [M, K] and w [N, K] must share K, got {tuple(x.shape)} and {tuple(w.shape)}.")
    check(out_dtype in (torch.bfloat16, torch.float16), f"out_dtype must be bf16 or fp16, got {out_dtype}.")
    M, K = x.shape
    N = w.shape[0]
    kb, nb = triton.cdiv(K, 128), triton.cdiv(N, 128)
    want = {"tensor": ((1,), (1,)), "row": ((M,), (N,)), "block": ((M, kb), (nb, kb))}[mode]
    for t, name, shp in ((sx, "sx", want[0]), (sw, "sw", want[1])):
        check(isinstance(t, torch.Tensor) and t.dtype == torch.float32 and tuple(t.shape) == shp
              and t.is_contiguous(), f"{name} must be a contiguous float32 tensor of shape {shp} for mode {mode!r}.")
    y = check_out(out, (M, N), out_dtype, x.device)
    if config is None:
        key = (m_bucket(M), N, K, mode, out_dtype)
        cands = configs_for(M, mode == "block", mode != "block" and tma_ok(x, w, y))
        config = _tuner.pick(key, cands, lambda c: _launch(x, w, y, sx, sw, mode, c))
    if mode == "block":
        check(config[2] == 128 and 128 % config[1] == 0, "block-scaled mode needs BLOCK_K == 128 and BLOCK_N dividing 128.")
    _launch(x, w, y, sx, sw, mode, config)
    return y


def quantize_fp8(t: torch.Tensor, mode: str = "row"):
    """Quantize a [R, K] tensor to e4m3 with amax scaling; returns (q, scale) in the layouts above.

    For ``"block"`` pass ``block_rows=True`` semantics: x uses 1x128 slices (call with the
    activation), weights use 128x128 blocks (call :func:`quantize_fp8_weight_blocks`).
    """
    t = t.float()
    if mode == "tensor":
        s = (t.abs().amax().clamp(min=1e-12) / FP8_MAX).reshape(1)
        return (t / s).to(FP8), s.contiguous()
    if mode == "row":
        s = t.abs().amax(dim=1).clamp(min=1e-12) / FP8_MAX
        return (t / s[:, None]).to(FP8), s.contiguous()
    R, K = t.shape
    kb = triton.cdiv(K, 128)
    tp = torch.nn.functional.pad(t, (0, kb * 128 - K)).view(R, kb, 128)
    s = tp.abs().amax(dim=2).clamp(min=1e-12) / FP8_MAX
    q = (tp / s[:, :, None]).view(R, kb * 128)[:, :K].to(FP8).contiguous()
    return q, s.contiguous()


def quantize_fp8_weight_blocks(w: torch.Tensor):
    """Quantize W [N, K] to e4m3 with one scale per 128x128 block; scale shape [ceil(N/128), ceil(K/128)]."""
    w = w.float()
    N, K = w.shape
    nb, kb = triton.cdiv(N, 128), triton.cdiv(K, 128)
    wp = torch.nn.functional.pad(w, (0, kb * 128 - K, 0, nb * 128 - N)).view(nb, 128, kb, 128)
    s = wp.abs().amax(dim=(1, 3)).clamp(min=1e-12) / FP8_MAX
    q = (wp / s[:, None, :, None]).view(nb * 128, kb * 128)[:N, :K].to(FP8).contiguous()
    return q, s.contiguous()


def _expand(s: torch.Tensor, rows: int, cols: int, rblk: int) -> torch.Tensor:
    return s.repeat_interleave(rblk, 0)[:rows].repeat_interleave(128, 1)[:, :cols]


def gemm_fp8_ref(x, w, sx, sw, mode: str = "row"):
    """fp32 reference: dequantize both operands with their scales, then ``x @ w^T``."""
    xf, wf = x.float(), w.float()
    M, K = x.shape
    N = w.shape[0]
    if mode == "tensor":
        return (xf * sx) @ (wf * sw).t()
    if mode == "row":
        return (xf * sx[:, None]) @ (wf * sw[:, None]).t()
    return (xf * _expand(sx, M, K, 1)) @ (wf * _expand(sw, N, K, 128)).t()
