"""GEMM family against fp32 references: bf16/fp16, fp8 (tensor/row/block scales), W8A16, W4A16.

CPU (interpreter): fp16 only -- the triton 3.9 interpreter's tl.dot on bf16 tiles is wrong.
GPU (@gpu): bf16 and fp16 at layer shapes of the benchmarked models, including skinny M. The
split-K / hybrid / stream-K launches have their own file, test_gemm_splitk.py.
"""


import pytest
import torch

from llmperf_kernels import (gemm, gemm_fp8, gemm_ref, gemm_w4a16, gemm_w4a16_ref, gemm_w8a16,
                             gemm_w8a16_ref, quantize_w4, quantize_w8)
from llmperf_kernels.gemm_fp8 import gemm_fp8_ref, quantize_fp8, quantize_fp8_weight_blocks

from kernel_testutil import assert_close, poisoned

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _run_gemm(device, dtype, M, N, K):
    x = torch.randn(M, K, dtype=dtype, device=device)
    w = torch.randn(N, K, dtype=dtype, device=device) / K ** 0.5
    y = gemm(x, w, out=poisoned((M, N), dtype, device))
    assert_close(y, gemm_ref(x, w), dtype)


@pytest.mark.parametrize("M,N,K", [(1, 48, 64), (7, 33, 100), (37, 45, 200), (64, 64, 96)])
def test_gemm_fp16_ragged(device, M, N, K):
    _run_gemm(device, torch.float16, M, N, K)


@pytest.mark.parametrize("persistent", [False, True])
def test_gemm_tma_variant(device, persistent):
    """The tensor-descriptor kernel (gemm_tma.py), forced, on ragged M and an N tail."""
    cfg = (16, 16, 32, 2, 4, 1, "tma", persistent, persistent) if device == "cpu" else \
        (64, 128, 64, 8, 4, 3, "tma", persistent, persistent)
    M, N, K = 37, 200, 96
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    w = torch.randn(N, K, dtype=torch.float16, device=device)
    y = gemm(x, w, out=poisoned((M, N), torch.float16, device), config=cfg)
    assert_close(y, gemm_ref(x, w), torch.float16)



def test_fp8_tma_variant(device):
    cfg = (16, 16, 32, 2, 4, 1, "tma", True, True) if device == "cpu" else (64, 128, 128, 8, 4, 3, "tma", True, True)
    M, N, K = 33, 136, 256
    xq, sx = quantize_fp8(torch.randn(M, K, device=device), "row")
    wq, sw = quantize_fp8(torch.randn(N, K, device=device), "row")
    y = gemm_fp8(xq, wq, sx, sw, "row", out=poisoned((M, N), torch.bfloat16, device), config=cfg)
    assert_close(y, gemm_fp8_ref(xq, wq, sx, sw, "row"), torch.bfloat16)


def _fp8_case(device, mode, M, N, K):
    x = torch.randn(M, K, device=device)
    w = torch.randn(N, K, device=device)
    xq, sx = quantize_fp8(x, mode)  # "block": 1x128 activation slices
    if mode == "block":
        wq, sw = quantize_fp8_weight_blocks(w)
    else:
        wq, sw = quantize_fp8(w, mode)
    y = gemm_fp8(xq, wq, sx, sw, mode, out=poisoned((M, N), torch.bfloat16, device))
    ref = gemm_fp8_ref(xq, wq, sx, sw, mode)
    assert_close(y, ref, torch.bfloat16)
    # and the quantized product is close to the unquantized one (checks the scale layouts)
    assert_close(y, x @ w.t(), torch.bfloat16, tol=0.1)


@pytest.mark.parametrize("mode", ["tensor", "row", "block"])
@pytest.mark.parametrize("M,N,K", [(5, 40, 256), (33, 130, 300)])
def test_gemm_fp8(device, mode, M, N, K):
    _fp8_case(device, mode, M, N, K)


@pytest.mark.parametrize("M,N,K", [(1, 40, 256), (19, 72, 384)])
def test_gemm_w4a16(device, M, N, K):
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    w = torch.randn(N, K, dtype=torch.float16, device=device)
    q, s = quantize_w4(w)
    assert q.shape == (N, K // 2) and q.dtype == torch.uint8 and s.shape == (N, K // 128)
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.float16, device))
    assert_close(y, gemm_w4a16_ref(x, q, s), torch.float16)
    assert_close(y, x.float() @ w.float().t(), torch.float16, tol=0.2)  # int4 error vs unquantized


@pytest.mark.parametrize("cfg", [(16, 16, 256, 4, 1, 1), (16, 32, 256, 4, 1, 3), (16, 16, 512, 4, 1, 2)])
def test_gemm_w4a16_multi_group_and_split_k(device, cfg):
    """Several quantization groups per K step (GPI > 1) and split-K with uneven K ranges."""
    M, N, K = 5, 48, 1536
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    q, s = quantize_w4(torch.randn(N, K, dtype=torch.float16, device=device))
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.float16, device), config=cfg)
    assert_close(y, gemm_w4a16_ref(x, q, s), torch.float16)


# v4 paths (kernels/gemm_w4a16.py): "gemv" = CUDA-core GEMV (M <= 4 per program, 32-bit weight
# words), "mmat" = tensor cores with x as the A operand, "mma2" (6-tuple) = the v3 kernel. Tiny tiles so the interpreter stays fast; N is
# never a multiple of BLOCK_N (ragged tail), K spans several groups, SPLIT_K > 1 has uneven slices.
_V4_CFGS = [(4, 16, 128, 4, 1, 1, "gemv"), (4, 32, 256, 4, 1, 3, "gemv"), (4, 16, 128, 4, 1, 4, "gemv"),
            (16, 16, 128, 4, 1, 1, "mmat"), (16, 32, 256, 4, 1, 2, "mmat"), (16, 16, 128, 4, 1, 5, "mmat")]


def _w4_case(device, M, N, K, cfg=None, dtype=torch.float16):
    x = torch.randn(M, K, dtype=dtype, device=device)
    q, s = quantize_w4(torch.randn(N, K, dtype=dtype, device=device))
    s = s * (1 + torch.rand_like(s))  # varied scales (never zero), so a wrong group index shows
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), dtype, device), config=cfg)
    ref = gemm_w4a16_ref(x, q, s)
    assert ref.abs().max() > 0
    assert_close(y, ref, dtype)


@pytest.mark.parametrize("cfg", _V4_CFGS, ids=lambda c: f"{c[6]}-bn{c[1]}-bk{c[2]}-sk{c[5]}")
@pytest.mark.parametrize("M", [1, 2, 3, 4, 6, 16])
def test_gemm_w4a16_v4_paths(device, cfg, M):
    """Every v4 path x every M regime (GEMV BLOCK_M 1/2/4 with clamped rows, GEMV over several
    M programs for M > 4, MMA with padded M), ragged N = 40, K = 5 groups (odd number of K steps)."""
    _w4_case(device, M, 40, 5 * 128, cfg)


def test_gemm_w4a16_default_dispatch(device):
    """Without a config the wrapper picks from w4_candidates(M): GEMV for M <= 4, MMA up to 16."""
    from llmperf_kernels.gemm_w4a16 import w4_candidates
    assert all(c[6] == "gemv" for c in w4_candidates(1, True))
    assert all(len(c) == 6 or c[6] != "gemv" for c in w4_candidates(16, False))
    for M in (1, 4, 9):
        _w4_case(device, M, 24, 3 * 128)


def test_gemm_w4a16_unaligned_weight_view(device):
    """A packed weight whose rows are not 4-byte aligned (a column slice) goes through the 32-bit
    paths via a copy, with the same result."""
    M, N, K = 2, 20, 256
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    q, s = quantize_w4(torch.randn(N, K, dtype=torch.float16, device=device))
    wide = torch.zeros(N, K // 2 + 3, dtype=torch.uint8, device=device)
    wide[:, 1:K // 2 + 1] = q
    qs = wide[:, 1:K // 2 + 1]
    assert qs.stride(0) % 4 != 0
    y = gemm_w4a16(x, qs, s, out=poisoned((M, N), torch.float16, device), config=_V4_CFGS[0])
    assert_close(y, gemm_w4a16_ref(x, q, s), torch.float16)


def test_w4_packing_layout():
    """Low nibble = even k, high nibble = odd k, code = value / scale + 8."""
    w = torch.zeros(1, 128)
    w[0, 0], w[0, 1] = 7.0, -8.0 * 7.0 / 8.0  # scale = 1 (amax 7): codes 15 and 1
    q, s = quantize_w4(w.half())
    assert float(s[0, 0]) == 1.0
    assert int(q[0, 0]) == (15 | (1 << 4))


@pytest.mark.parametrize("M,N,K", [(3, 40, 100), (21, 64, 256)])
def test_gemm_w8a16(device, M, N, K):
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    q, s = quantize_w8(torch.randn(N, K, dtype=torch.float16, device=device))
    y = gemm_w8a16(x, q, s, out=poisoned((M, N), torch.float16, device))
    assert_close(y, gemm_w8a16_ref(x, q, s), torch.float16)


def test_gemm_rejects_bad_input():
    x = torch.randn(4, 8, dtype=torch.float16)
    with pytest.raises(ValueError, match="share K"):
        gemm(x, torch.randn(5, 9, dtype=torch.float16))
    with pytest.raises(ValueError, match="same dtype"):
        gemm(x, torch.randn(5, 8, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="contiguous"):
        gemm(torch.randn(8, 4, dtype=torch.float16).t(), torch.randn(5, 4, dtype=torch.float16))
    with pytest.raises(ValueError, match="dtype"):
        gemm(x.float(), torch.randn(5, 8))
    with pytest.raises(ValueError, match="multiple of the group"):
        gemm_w4a16(torch.randn(2, 100, dtype=torch.float16), torch.zeros(4, 50, dtype=torch.uint8),
                   torch.ones(4, 1, dtype=torch.float16))


# ---------------------------------------------------------------- GPU, realistic shapes
SHAPES = [(4096, 4096), (6144, 4096), (3584, 18944), (3072, 2048)]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("M", [1, 16, 300, 2048])
@pytest.mark.parametrize("N,K", SHAPES)
def test_gemm_gpu(M, N, K):
    _run_gemm("cuda", torch.bfloat16, M, N, K)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("M", [5, 1000])
def test_gemm_gpu_fp16(M):
    _run_gemm("cuda", torch.float16, M, 4096, 4096)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("mode", ["tensor", "row", "block"])
@pytest.mark.parametrize("M", [1, 16, 1000])
def test_gemm_fp8_gpu(mode, M):
    _fp8_case("cuda", mode, M, 4096, 4096)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 14336, 4096), (torch.bfloat16, 16, 4096, 14336),
                                         (torch.bfloat16, 200, 14336, 4096), (torch.float16, 16, 14336, 4096)])
def test_weight_only_gpu(dtype, M, N, K):
    x = torch.randn(M, K, dtype=dtype, device="cuda")
    w = torch.randn(N, K, dtype=dtype, device="cuda")
    q, s = quantize_w4(w)
    assert_close(gemm_w4a16(x, q, s, out=poisoned((M, N), dtype, "cuda")), gemm_w4a16_ref(x, q, s), dtype)
    q8, s8 = quantize_w8(w)
    assert_close(gemm_w8a16(x, q8, s8, out=poisoned((M, N), dtype, "cuda")), gemm_w8a16_ref(x, q8, s8), dtype)


_V4_GPU_CFGS = [(4, 64, 256, 4, 1, 1, "gemv"), (4, 64, 256, 4, 1, 4, "gemv"), (16, 64, 128, 4, 3, 1, "mmat"),
                (16, 64, 128, 4, 4, 4, "mmat")]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", _V4_GPU_CFGS, ids=lambda c: f"{c[6]}-bn{c[1]}-sk{c[5]}")
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 14336, 4096), (torch.bfloat16, 4, 4096, 14336),
                                         (torch.bfloat16, 16, 18944, 3584), (torch.float16, 3, 28672, 4096)])
def test_w4a16_v4_gpu(cfg, dtype, M, N, K):
    _w4_case("cuda", M, N, K, cfg, dtype)


def test_core_knows_the_triton_autotune_buckets():
    """llmperf.calibration_fit interpolates Triton GEMM efficiency within autotune buckets; its
    copy of the bucket rule must match the kernels' own."""
    import numpy as np

    from llmperf.calibration_curves import triton_m_bucket
    from llmperf_kernels._common import m_bucket

    ms = [1, 2, 15, 16, 17, 64, 96, 128, 129, 1000, 4096, 5000, 16384]
    assert list(triton_m_bucket(np.array(ms))) == [float(m_bucket(m)) for m in ms]
