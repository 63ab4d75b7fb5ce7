"""Weight-only quantized GEMM for the decode regime: W8A16 and W4A16, ``y = x @ dequant(W)^T``.

x [M, K] is bf16/fp16; the weight is read in its packed form and dequantized in registers, so the
bytes streamed from HBM (which bound decode, M <= 16) shrink 2x (int8) or ~3.9x (int4 + scales).

Layouts (documented here and in kernels/README.md):
  * W8A16: ``qweight`` int8 [N, K] (row n = output channel, K contiguous), ``scales`` [N] in x's
    dtype; ``W[n, k] = qweight[n, k] * scales[n]`` (symmetric per-channel, as LLM.int8()/
    SmoothQuant weight-only).
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

import torch
import triton
import triton.language as tl

from ._common import check, check_out, check_tensor, m_bucket
from .harness import Tuner, is_interpreter

GROUP = 128
# W4: (BLOCK_M, BLOCK_N, BLOCK_K = GPI * GROUP, num_warps, num_stages, SPLIT_K); W8: the first five.
_W4_SKINNY = [(16, 64, 128, 4, 4, 1), (16, 128, 128, 4, 4, 1), (16, 64, 256, 4, 4, 1), (16, 128, 256, 4, 3, 1),
              (16, 64, 256, 4, 4, 2), (16, 128, 256, 4, 3, 2), (16, 64, 512, 4, 3, 1), (16, 64, 256, 4, 4, 4)]
_W4_LARGE = [(64, 64, 128, 4, 4, 1), (64, 128, 128, 4, 4, 1), (128, 128, 128, 8, 3, 1)]
_W8_SKINNY = [(16, 64, 256, 4, 4), (16, 32, 256, 4, 5), (16, 128, 128, 4, 5)]
_W8_LARGE = [(64, 128, 64, 4, 4), (128, 128, 64, 8, 4), (128, 256, 64, 8, 3)]
_INTERP4 = [(16, 16, 2 * GROUP, 4, 1, 2)]
_INTERP8 = [(16, 16, 32, 4, 1)]


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
            lo = (p & 15).to(tl.int16)
            hi = (p >> 4).to(tl.int16)
            # Magic-number dequantization (no int->float convert): the bit pattern 0x4300 | c is the
            # bf16 number 128 + c (0x6400 | c is fp16 1024 + c), so subtracting 136 (1032) gives c - 8.
            if IS_BF16:
                wl = ((lo | 0x4300).to(tl.bfloat16, bitcast=True) - 136.0).to(tl.bfloat16)
                wh = ((hi | 0x4300).to(tl.bfloat16, bitcast=True) - 136.0).to(tl.bfloat16)
            else:
                wl = ((lo | 0x6400).to(tl.float16, bitcast=True) - 1032.0).to(tl.float16)
                wh = ((hi | 0x6400).to(tl.float16, bitcast=True) - 1032.0).to(tl.float16)
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


_t4, _t8 = Tuner("gemm_w4a16"), Tuner("gemm_w8a16")


def _check_x(x, K_expected=None):
    check_tensor(x, "x", 2, (torch.bfloat16, torch.float16))
    if K_expected is not None:
        check(x.shape[1] == K_expected, f"x must have K = {K_expected} columns to match the weight, got {x.shape[1]}.")


def gemm_w4a16(x, qweight, scales, group_size: int = GROUP, out=None, config=None):
    """``y = x @ W^T`` with W int4 (uint8-packed, see module doc), group-wise scales [N, K // 128]."""
    check(group_size == GROUP, f"only group_size {GROUP} is implemented, got {group_size}.")
    check_tensor(qweight, "qweight", 2, (torch.uint8,))
    N, K = qweight.shape[0], qweight.shape[1] * 2
    _check_x(x, K)
    check(K % GROUP == 0, f"K must be a multiple of the group size {GROUP}, got {K}.")
    check_tensor(scales, "scales", 2, (x.dtype,))
    check(tuple(scales.shape) == (N, K // GROUP), f"scales must have shape {(N, K // GROUP)}, got {tuple(scales.shape)}.")
    M = x.shape[0]
    y = check_out(out, (M, N), x.dtype, x.device)

    def launch(c):
        bm, bn, bk, nw, ns, sk = c
        if K % bk:  # a K step must hold whole groups
            bk = GROUP
        grid = (triton.cdiv(N, bn), sk, triton.cdiv(M, bm))
        dst = y if sk == 1 else torch.zeros((M, N), dtype=torch.float32, device=x.device)
        _w4_kernel[grid](x, qweight, scales, dst, M, N, K, x.stride(0), qweight.stride(0), scales.stride(0),
                         dst.stride(0), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SPLIT_K=sk,
                         IS_BF16=x.dtype == torch.bfloat16, GPI=bk // GROUP, num_warps=nw, num_stages=ns)
        if sk > 1:
            y.copy_(dst)

    if config is None:
        cands = _INTERP4 if is_interpreter() else (_W4_SKINNY if M <= 16 else _W4_LARGE)
        config = _t4.pick((m_bucket(M), N, K, x.dtype), cands, launch)
    launch(config)
    return y


def gemm_w8a16(x, qweight, scales, out=None, config=None):
    """``y = x @ W^T`` with W int8 [N, K] and per-output-channel scales [N] (x's dtype)."""
    check_tensor(qweight, "qweight", 2, (torch.int8,))
    N, K = qweight.shape
    _check_x(x, K)
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


def quantize_w4(w: torch.Tensor, group_size: int = GROUP):
    """Symmetric int4 group quantization of W [N, K] -> (qweight uint8 [N, K//2], scales [N, K//G])."""
    N, K = w.shape
    check(K % group_size == 0 and K % 2 == 0, f"K must be a multiple of {group_size}, got {K}.")
    wg = w.float().view(N, K // group_size, group_size)
    s = wg.abs().amax(dim=2).clamp(min=1e-8) / 7.0
    q = (torch.round(wg / s[:, :, None]).clamp(-8, 7) + 8).to(torch.uint8).view(N, K)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()
    return packed, s.to(w.dtype).contiguous()


def quantize_w8(w: torch.Tensor):
    """Symmetric per-channel int8 quantization of W [N, K] -> (qweight int8 [N, K], scales [N])."""
    s = w.float().abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(w.float() / s[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
    return q, s.to(w.dtype).contiguous()


def dequant_w4(qweight, scales, group_size: int = GROUP):
    """fp32 W [N, K] from the int4 layout above."""
    N = qweight.shape[0]
    q = torch.stack([qweight & 15, qweight >> 4], dim=2).view(N, -1).float() - 8.0
    return q * scales.float().repeat_interleave(group_size, dim=1)


def gemm_w4a16_ref(x, qweight, scales, group_size: int = GROUP):
    """fp32 reference: dequantize W, then ``x @ W^T``."""
    return x.float() @ dequant_w4(qweight, scales, group_size).t()


def gemm_w8a16_ref(x, qweight, scales):
    """fp32 reference: ``x @ (qweight * scales[:, None])^T``."""
    return x.float() @ (qweight.float() * scales.float()[:, None]).t()
