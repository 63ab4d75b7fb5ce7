"""W4A16 GEMV paths ("gemv5" v5 in kernels/gemm_w4a16_gemv.py, "gemv6" v6 in gemm_w4a16_gemv6.py) against the fp32 reference.

CPU (interpreter): fp16 activations (fp32 math inside the kernel either way), tiny tiles, ragged N,
K = several groups, M = 1..4 (BLOCK_M 1/2/4 with clamped token rows), poisoned outputs, split-K
with uneven and empty slices finished in-kernel by the last-arriving slice (tile counters must be
re-armed to zero after every launch). GPU (@gpu): bf16 + fp16 at the benchmarked layer shapes,
every candidate config, repeated launches and CUDA-graph replays (counter re-arming).
gemv6 runs its fp32 twin (no PTX) in the interpreter and the half2 inline-asm dot on the GPU, so
its GPU tests also pin the asm: an exact case (small integers, fp16 sums stay exact) and a
large-|x| case (fp16 accumulation range).
"""

import importlib

import pytest
import torch

from llmperf_kernels import gemm_w4a16, gemm_w4a16_ref, quantize_w4

from kernel_testutil import assert_close, assert_w4_graph_replays, poisoned

w4mod = importlib.import_module("llmperf_kernels.gemm_w4a16")
gemv_mod = importlib.import_module("llmperf_kernels.gemm_w4a16_gemv")
gemv6_mod = importlib.import_module("llmperf_kernels.gemm_w4a16_gemv6")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _case(device, M, N, K, cfg, dtype=torch.float16, repeat=1):
    x = torch.randn(M, K, dtype=dtype, device=device)
    q, s = quantize_w4(torch.randn(N, K, dtype=dtype, device=device))
    s = s * (1 + torch.rand_like(s))  # varied scales (never zero), so a wrong group index shows
    ref = gemm_w4a16_ref(x, q, s)
    assert ref.abs().max() > 0
    for _ in range(repeat):
        y = gemm_w4a16(x, q, s, out=poisoned((M, N), dtype, device), config=cfg)
        assert_close(y, ref, dtype)
    for c in gemv_mod._COUNTERS.values():  # split-K tile counters are left at zero
        assert int(c.abs().sum()) == 0


# (BLOCK_M, BLOCK_N, -, warps, stages, SPLIT_K, "gemv5", PF): no split, uneven split (5 groups / 3),
# more slices than groups (8 > 5: clamped), auto split, every prefetch depth.
_CPU_CFGS = [(4, 16, 128, 4, 1, 1, "gemv5", 1), (4, 16, 128, 4, 1, 3, "gemv5", 2), (4, 32, 128, 4, 1, 2, "gemv5", 0),
             (4, 16, 128, 4, 1, 8, "gemv5", 1), (4, 16, 128, 4, 1, 0, "gemv5", 1)]


@pytest.mark.parametrize("cfg", _CPU_CFGS, ids=lambda c: f"bn{c[1]}-sk{c[5]}-pf{c[7]}")
@pytest.mark.parametrize("M", [1, 2, 3, 4])
def test_gemv5_paths(device, cfg, M):
    _case(device, M, 40, 5 * 128, cfg, repeat=2)


@pytest.mark.parametrize("M", [5, 9])
def test_gemv5_several_token_programs(device, M):
    """M > 4: several BLOCK_M = 4 programs along grid axis 2 (the counters index pid_m too)."""
    _case(device, M, 24, 3 * 128, (4, 16, 128, 4, 1, 2, "gemv5", 1))


def test_gemv5_fp32_exact_dequant(device):
    """The FADD dequantization is exact: with x and scales powers of two the result is exact."""
    M, N, K = 2, 16, 256
    x = torch.randint(-2, 3, (M, K), device=device).to(torch.float16)
    q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device=device)
    s = torch.full((N, K // 128), 0.25, dtype=torch.float16, device=device)
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.float16, device), config=_CPU_CFGS[1])
    assert torch.equal(y.float(), gemm_w4a16_ref(x, q, s))


def test_gemv5_candidates_lead_the_gpu_list():
    """On the GPU the autotuner's M <= 4 list carries the v5 configs (interpreter list unchanged)."""
    assert any(len(c) > 6 and c[6] == "gemv5" for c in w4mod.w4_candidates(1, False))
    assert all(c[6] == "gemv" for c in w4mod.w4_candidates(1, True))


# ---------------------------------------------------------------- GPU, realistic shapes
@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", w4mod._W4_GEMV5, ids=lambda c: f"bn{c[1]}-w{c[3]}-s{c[4]}-sk{c[5]}-pf{c[7]}")
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 14336, 4096), (torch.bfloat16, 4, 4096, 14336),
                                         (torch.float16, 3, 18944, 3584), (torch.bfloat16, 2, 28672, 4096)])
def test_gemv5_gpu(cfg, dtype, M, N, K):
    _case("cuda", M, N, K, cfg, dtype, repeat=2)


# ---------------------------------------------------------------- v6
# (BLOCK_M, BLOCK_N, -, warps, stages, SPLIT_K, "gemv6", U, CHAIN, PER_SM): no split, uneven split
# with U = 2 over 5 groups (ragged last iteration), U = 4, more slices than groups (clamped), auto.
_CPU6 = [(1, 16, 128, 4, 1, 1, "gemv6", 1, 4, 4), (1, 16, 128, 4, 1, 2, "gemv6", 2, 4, 4),
         (1, 32, 128, 4, 1, 3, "gemv6", 4, 1, 4), (1, 16, 128, 4, 1, 9, "gemv6", 2, 2, 4),
         (1, 16, 128, 4, 1, 0, "gemv6", 2, 4, 4)]


@pytest.mark.parametrize("cfg", _CPU6, ids=lambda c: f"bn{c[1]}-sk{c[5]}-u{c[7]}")
@pytest.mark.parametrize("M", [1, 3])
def test_gemv6_paths(device, cfg, M):
    _case(device, M, 40, 5 * 128, cfg, repeat=2)


def test_gemv6_bf16_x_halves(device):
    """bf16 x is read as raw 16-bit halves of int64 words (bf16 is fine in the interpreter here:
    no tl.dot). Integer data, so the fp32 sums are exact and only y's bf16 rounding (ties may
    round differently from torch's) separates the result from the reference."""
    M, N, K = 1, 16, 384
    x = torch.randint(-3, 4, (M, K), device=device).to(torch.bfloat16)
    q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device=device)
    s = torch.full((N, K // 128), 0.5, dtype=torch.bfloat16, device=device)
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.bfloat16, device), config=_CPU6[1])
    assert_close(y, gemm_w4a16_ref(x, q, s), torch.bfloat16, tol=4e-3)  # a wrong half: O(1) error


def test_gemv6_split_helper():
    """Slices cover all groups, hold a multiple of U groups, and none is empty."""
    for G in (1, 5, 28, 32, 112):
        for sk in (0, 1, 3, 8, 200):
            for u in (1, 2, 4):
                n, per = gemv6_mod._gemv6_split(G, 112, 1, sk, u, 4, 132)
                assert per % u == 0 and n * per >= G and (n - 1) * per < G


def test_gemv6_not_in_tuner_lists():
    """v6 measured slower than v5 on the H200 (session4_tune_w4a16_v6_h200.csv): the tuner's lists
    carry no v6 config (M = 1 leads with v7 since session5_tune_w4a16_v7_h200.csv, v5 stays in
    it); no v6 config uses the layout that failed."""
    assert w4mod.w4_candidates(1, False)[0][6] == "gemv7"
    assert any(c[6] == "gemv5" for c in w4mod.w4_candidates(1, False))
    assert all(len(c) < 7 or c[6] != "gemv6" for M in (1, 4, 16) for c in w4mod.w4_candidates(M, False))
    assert all(not (c[1] == 256 and c[3] == 4) for c in w4mod._W4_GEMV6)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", w4mod._W4_GEMV6, ids=lambda c: f"bn{c[1]}-w{c[3]}-u{c[7]}-c{c[8]}-p{c[9]}")
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 14336, 4096), (torch.bfloat16, 1, 4096, 14336),
                                         (torch.float16, 1, 18944, 3584), (torch.bfloat16, 2, 28672, 4096)])
def test_gemv6_gpu(cfg, dtype, M, N, K):
    _case("cuda", M, N, K, cfg, dtype, repeat=2)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cfg", [w4mod._W4_GEMV6[0], w4mod._W4_GEMV6[5]], ids=["chain4", "chain1"])
def test_gemv6_gpu_exact(dtype, cfg):
    """Small integers, power-of-two scales: every fp16 product and partial sum is exact, so the
    half2 asm (operand order, nibble pairing, magic constants) must reproduce the reference bit
    for bit."""
    M, N, K = 1, 256, 1024
    x = torch.randint(-4, 5, (M, K), device="cuda").to(dtype)
    q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device="cuda")
    s = torch.full((N, K // 128), 0.25, dtype=dtype, device="cuda")
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), dtype, "cuda"), config=cfg)
    assert torch.equal(y.float(), gemm_w4a16_ref(x, q, s).to(dtype).float())


@pytest.mark.gpu
@gpu
def test_gemv6_gpu_large_x():
    """|x| up to ~400 (LLM-like outliers): fp16 products/partials stay finite and accurate."""
    M, N, K = 1, 4096, 4096
    x = torch.randn(M, K, device="cuda") * 3
    x[0, ::97] = 400.0
    x = x.to(torch.bfloat16)
    q, s = quantize_w4(torch.randn(N, K, dtype=torch.bfloat16, device="cuda"))
    for cfg in (w4mod._W4_GEMV6[0], w4mod._W4_GEMV6[5]):
        y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.bfloat16, "cuda"), config=cfg)
        assert_close(y, gemm_w4a16_ref(x, q, s), torch.bfloat16)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", [(4, 64, 128, 4, 1, 8, "gemv5", 1), w4mod._W4_GEMV6[0]], ids=["gemv5", "gemv6"])
def test_gemv_gpu_graph_replay(cfg):
    """Split-K counters re-arm themselves: many CUDA-graph replays give the same correct result."""
    assert_w4_graph_replays(cfg)
    for c in gemv_mod._COUNTERS.values():
        assert int(c.abs().sum()) == 0
