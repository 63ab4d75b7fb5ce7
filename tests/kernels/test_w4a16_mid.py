"""W4A16 beyond decode (M > 16): the DQ = 2 token-block kernel ("mmah" with BLOCK_M 32 / 64 / 128)
and dequantize-then-GEMM ("dq", kernels/gemm_w4a16_dq.py).

CPU (interpreter, fp16): the dequantization kernel against the module doc's formula on random codes
and scales (ragged N, one and two groups per program), every M > 16 interpreter candidate and a
128-token block against the fp32 reference with poisoned outputs (ragged M and N, several token
blocks), the tuner lists by M bucket. GPU (@gpu): every listed M > 16 config at layer shapes
(bf16 and fp16, M = 33 / 64 / 200 / 1000), the exact-code check of the 128-token block, the public
dispatch at M = 4096.
"""

import importlib

import pytest
import torch

from llmperf_kernels import gemm_w4a16, gemm_w4a16_ref

from kernel_testutil import assert_close, poisoned, w4_weights

w4mod = importlib.import_module("llmperf_kernels.gemm_w4a16")
dqmod = importlib.import_module("llmperf_kernels.gemm_w4a16_dq")
mh = importlib.import_module("llmperf_kernels.gemm_w4a16_mmah")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _case(device, M, N, K, cfg, dtype=torch.float16):
    x = torch.randn(M, K, dtype=dtype, device=device)
    q, s = w4_weights(device, N, K, dtype)
    ref = gemm_w4a16_ref(x, q, s)
    assert ref.abs().max() > 0
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), dtype, device), config=cfg)
    assert_close(y, ref, dtype)


@pytest.mark.parametrize("N,K,bn,bk", [(40, 256, 16, 256), (33, 384, 16, 128), (50, 512, 32, 256)])
def test_dequant_kernel(device, N, K, bn, bk):
    """W[n, k] = (code(n, k) - 8) * scale[n, k // 128], rounded once to the output dtype, code k = 2j
    from the low nibble of byte j and 2j + 1 from the high one (gemm_w4a16's public layout)."""
    q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device=device)
    s = (torch.rand(N, K // 128, device=device) + 0.5).to(torch.float16)
    w = dqmod.dequant_w4_triton(q, s, torch.float16, block_n=bn, block_k=bk)
    codes = torch.stack([q & 15, q >> 4], dim=2).reshape(N, K).float() - 8
    want = (codes * s.float().repeat_interleave(128, dim=1)).to(torch.float16)
    assert w.shape == (N, K) and w.dtype == torch.float16
    assert torch.equal(w, want)
    assert torch.equal(dqmod.dequant_w4_triton(q, s, torch.float16), want)  # default launch (256 or 128 wide)


@pytest.mark.parametrize("M,N,G", [(17, 40, 3), (40, 72, 2), (130, 24, 2)])
@pytest.mark.parametrize("cfg", w4mod._INTERP4_MID + [(128, 16, 128, 4, 2, 1, "mmah", 2), (64, 32, 128, 4, 2, 3, "mmah", 2),
                                 (32, 16, 128, 4, 2, 1, "mmah", 3), (64, 32, 128, 4, 2, 2, "mmah", 3),
                                 (32, 16, 128, 4, 2, 1, "mmah", 4), (16, 32, 128, 4, 2, 3, "mmah", 4)],
                         ids=lambda c: f"{c[6]}-bm{c[0]}-r{c[1]}-sk{c[5]}" + (f"-dq{c[7]}" if len(c) > 7 else ""))
def test_w4_mid_paths(device, cfg, M, N, G):
    """Several token blocks (ragged M), ragged N, split-K over the blocks, both paths."""
    _case(device, M, N, G * 128, cfg)


def test_w4_mid_lists():
    """M > 16: DQ = 2 token blocks of 32 up to bucket 32, of 64 up to 512 (with dequantize-then-GEMM from
    bucket 128 on, first from 1024), the tuple fields as the wrapper reads them."""
    for M, bm in ((17, 32), (32, 32), (33, 64), (64, 64)):  # first candidates
        c = w4mod.w4_candidates(M)
        assert c[0][6] == "mmah" and c[0][7] == 2 and c[0][0] == bm
        assert not any(len(x) > 6 and x[6] == "dq" for x in c)
    for M in (65, 256, 512):
        c = w4mod.w4_candidates(M)
        assert c[0][:1] == (64,) and c[0][6] == "mmah" and w4mod.W4_DQ[0] in c
    for M in (513, 4096, 16384):
        assert w4mod.w4_candidates(M)[0] == w4mod.W4_DQ[0]
    for lst in w4mod.W4_MMAH_MID.values():
        assert all(c[6] == "mmah" and c[7] == 2 and c[0] in (32, 64) and c[1] in (64, 128) for c in lst)
    assert all(c[0] == 32 for c in w4mod.W4_MMAH_MID[32])  # M = 17 .. 32: no block of 64 half empty


def test_w4_config_lookup(device):
    M, N, K = 20, 32, 256
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    q, s = w4_weights(device, N, K, torch.float16)
    gemm_w4a16(x, q, s)
    assert w4mod.gemm_w4a16_config(M, N, K, torch.float16) == w4mod.w4_candidates(M, w4mod.is_interpreter())[0]
    assert w4mod.gemm_w4a16_config(M, N + 1, K, torch.float16) is None


_GPU_MID = sorted({c for lst in w4mod.W4_MMAH_MID.values() for c in lst}) + w4mod.W4_DQ + w4mod.W4_FOLD_TRIAL + w4mod.W4_DQ_TRIAL


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", _GPU_MID, ids=lambda c: "-".join(map(str, c[:7])) + (f"-dq{c[7]}" if len(c) > 7 else ""))
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 64, 14336, 4096), (torch.bfloat16, 200, 4096, 14336),
                                         (torch.float16, 33, 1000, 3584), (torch.bfloat16, 1000, 18944, 3584)])
def test_w4_mid_gpu(cfg, dtype, M, N, K):
    _case("cuda", M, N, K, cfg, dtype=dtype)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_w4_mid_gpu_exact_codes(dtype):
    """Every code in both nibbles, one-hot x rows over 128-token blocks: single dequantized weights,
    exact in bf16 / fp16 (power-of-two scales), bitwise equal to the reference through both paths."""
    M, N, K = 200, 128, 256
    codes = (torch.arange(N * K, device="cuda").reshape(N, K) * 7 + torch.arange(N, device="cuda")[:, None]) % 16
    q = (codes[:, 0::2] | (codes[:, 1::2] << 4)).to(torch.uint8)
    s = torch.exp2(torch.randint(-3, 3, (N, K // 128), device="cuda").float()).to(dtype)
    x = torch.zeros(M, K, dtype=dtype, device="cuda")
    ks = torch.randint(0, K, (M,), device="cuda")
    x[torch.arange(M), ks] = 1
    want = ((codes[:, ks].T - 8).float() * s[:, ks // 128].T.float()).to(dtype)
    for cfg in (w4mod.W4_MMAH_MID[512][0], w4mod.W4_DQ[0]) + tuple(c for c in w4mod.W4_FOLD_TRIAL if c[0] > 16):  # 200 tokens: several blocks
        assert torch.equal(gemm_w4a16(x, q, s, out=poisoned((M, N), dtype, "cuda"), config=cfg), want)


@pytest.mark.gpu
@gpu
def test_w4_prefill_gpu_public():
    """The tuner's own pick at a prefill token count (M = 4096, bucket 4096) is right."""
    _case("cuda", 4096, 14336, 4096, None, dtype=torch.bfloat16)
    assert w4mod.gemm_w4a16_config(4096, 14336, 4096, torch.bfloat16) is not None
