"""TMA (tensor-memory-accelerator) variant of the GEMM in gemm.py / gemm_fp8.py, for Hopper+.

Same math, ``y = x @ W^T`` (bf16/fp16, or fp8 e4m3 with per-tensor / per-row-col scales applied in
the epilogue), but every tile moves through host-built tensor descriptors
(``triton.tools.tensor_descriptor.TensorDescriptor``): the copy engine fetches whole
[BLOCK, BLOCK_K] boxes into shared memory (zero-filling out-of-range rows/cols and clipping the
store), which frees the registers and address arithmetic that pointer loads need and lets the
compiler pipeline wgmma against the copies (NVIDIA Hopper tuning guide; Triton tutorial 09
"Persistent Matmul"). Optionally persistent: a grid of #SMs programs walks the output tiles in
grouped order (so the W panel stays in L2), with ``flatten`` letting the software pipeline run
across tile boundaries, hiding each tile's epilogue behind the next tile's loads.

Config tuples (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, num_warps, num_stages, "tma", persistent,
flatten) are mixed into the candidate lists of gemm.py/gemm_fp8.py when :func:`tma_ok` holds; a
candidate that does not compile (shared memory, Triton version) is dropped by the tuner.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # pragma: no cover - older Triton
    TensorDescriptor = None


@triton.jit
def _tile(a_desc, b_desc, c_desc, sx_ptr, sw_ptr, sx_sm, sw_sn, tile_id, M, N, K,
          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
          SCALED: tl.constexpr):
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (tile_id // group) * GROUP_M
    size_m = tl.minimum(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + ((tile_id % group) % size_m)
    pid_n = (tile_id % group) // size_m
    off_m = pid_m * BLOCK_M
    off_n = pid_n * BLOCK_N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(0, tl.cdiv(K, BLOCK_K)):
        a = a_desc.load([off_m, kt * BLOCK_K])
        b = b_desc.load([off_n, kt * BLOCK_K])
        acc = tl.dot(a, b.T, acc)
    if SCALED:
        rm = (off_m + tl.arange(0, BLOCK_M)) % M
        rn = (off_n + tl.arange(0, BLOCK_N)) % N
        acc = acc * tl.load(sx_ptr + rm * sx_sm)[:, None] * tl.load(sw_ptr + rn * sw_sn)[None, :]
    c_desc.store([off_m, off_n], acc.to(c_desc.dtype))


@triton.jit
def _gemm_tma_kernel(a_desc, b_desc, c_desc, sx_ptr, sw_ptr, sx_sm, sw_sn, M, N, K, NUM_PROGS,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                     GROUP_M: tl.constexpr, SCALED: tl.constexpr, FLATTEN: tl.constexpr):
    num_tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    if FLATTEN:
        for tile_id in tl.range(tl.program_id(0), num_tiles, NUM_PROGS, flatten=True):
            _tile(a_desc, b_desc, c_desc, sx_ptr, sw_ptr, sx_sm, sw_sn, tile_id, M, N, K,
                  BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, SCALED)
    else:
        for tile_id in range(tl.program_id(0), num_tiles, NUM_PROGS):
            _tile(a_desc, b_desc, c_desc, sx_ptr, sw_ptr, sx_sm, sw_sn, tile_id, M, N, K,
                  BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, SCALED)


def tma_ok(*ts) -> bool:
    """Descriptors need a Hopper+ GPU, row-major operands, 16-byte aligned bases and row strides."""
    if TensorDescriptor is None or not torch.cuda.is_available():
        return False
    if torch.cuda.get_device_capability()[0] < 9:
        return False
    return all(t.is_cuda and t.stride(1) == 1 and (t.stride(0) * t.element_size()) % 16 == 0
               and t.data_ptr() % 16 == 0 for t in ts)


_NUM_SMS = {}


def launch_tma(x, w, y, cfg, sx=None, sw=None, sx_sm=0, sw_sn=0):
    bm, bn, bk, gm, nw, ns, _, persistent, flatten = cfg
    M, K = x.shape
    N = w.shape[0]
    a = TensorDescriptor.from_tensor(x, [bm, bk])
    b = TensorDescriptor.from_tensor(w, [bn, bk])
    c = TensorDescriptor.from_tensor(y, [bm, bn])
    tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)
    dev = x.device.index or 0
    if dev not in _NUM_SMS:
        _NUM_SMS[dev] = torch.cuda.get_device_properties(dev).multi_processor_count if x.is_cuda else 3
    progs = min(tiles, _NUM_SMS[dev]) if persistent else tiles
    scaled = sx is not None
    if not scaled:
        sx = sw = y  # unused
    _gemm_tma_kernel[(progs,)](a, b, c, sx, sw, sx_sm, sw_sn, M, N, K, progs, BLOCK_M=bm, BLOCK_N=bn,
                               BLOCK_K=bk, GROUP_M=gm, SCALED=scaled, FLATTEN=bool(flatten),
                               num_warps=nw, num_stages=ns)


# Candidates (added by gemm.py / gemm_fp8.py on Hopper for M > 64).
TMA_BF16 = [(128, 256, 64, 8, 8, 3, "tma", False, False), (128, 256, 64, 8, 8, 3, "tma", True, True),
            (128, 128, 64, 8, 8, 4, "tma", True, True), (128, 128, 64, 8, 4, 4, "tma", False, False)]
TMA_BF16_MID = [(64, 128, 64, 8, 4, 4, "tma", False, False), (128, 128, 64, 8, 4, 4, "tma", False, False),
                (64, 256, 64, 8, 4, 4, "tma", False, False), (128, 64, 64, 8, 4, 4, "tma", False, False),
                (64, 64, 128, 8, 4, 4, "tma", False, False)]
TMA_FP8 = [(128, 256, 128, 8, 8, 3, "tma", False, False), (128, 256, 128, 8, 8, 3, "tma", True, True),
           (128, 128, 128, 8, 8, 4, "tma", True, True), (128, 128, 128, 8, 4, 4, "tma", False, False)]
TMA_FP8_MID = [(64, 128, 128, 8, 4, 4, "tma", False, False), (128, 128, 128, 8, 4, 4, "tma", False, False),
               (64, 256, 128, 8, 4, 4, "tma", False, False)]
