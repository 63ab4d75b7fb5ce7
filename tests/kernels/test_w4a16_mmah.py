"""W4A16 v8 tensor-core kernel for 2 <= M <= 16 (kernels/gemm_w4a16_mmah.py, path "mmah").

CPU (interpreter): the split-halves repack against the module doc's byte order and its inverse
(ragged N, every tile height), the kernel against the fp32 reference on random inputs with
poisoned outputs (ragged N, M = 1 / 5 / 16 / 17 -- two token blocks --, fp16, one and several
K slices, more slices than groups clamped), split-K counters re-armed and results bitwise
repeatable, the gemm_w4a16 "mmah" path and its repack cache, the argument checks. GPU (@gpu):
every listed config on the Llama-3.1-8B / Qwen2.5-7B layer shapes at M = 16 (bf16), fp16 and
ragged shapes, and CUDA-graph replays of the split-K config.
"""

import importlib

import pytest
import torch

from llmperf_kernels import gemm_w4a16, gemm_w4a16_ref

from kernel_testutil import assert_close, assert_repeatable, assert_w4_graph_replays, poisoned, w4_weights

mh = importlib.import_module("llmperf_kernels.gemm_w4a16_mmah")
w4mod = importlib.import_module("llmperf_kernels.gemm_w4a16")
gemv_mod = importlib.import_module("llmperf_kernels.gemm_w4a16_gemv")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _counters_zero():
    for c in gemv_mod._COUNTERS.values():
        assert int(c.abs().sum()) == 0


def _case(device, M, N, K, cfg, dtype=torch.float16, repeat=1):
    x = torch.randn(M, K, dtype=dtype, device=device)
    q, s = w4_weights(device, N, K, dtype)
    ref = gemm_w4a16_ref(x, q, s)
    assert ref.abs().max() > 0
    pk = mh.repack_mmah(q, s, cfg[1])
    assert_repeatable(lambda: mh.gemm_w4a16_mmah(x, pk, poisoned((M, N), dtype, device), cfg), ref, dtype, repeat)
    _counters_zero()


@pytest.mark.parametrize("rows", [16, 32, 64, 128, 256])
def test_mmah_repack_round_trip(device, rows):
    N, K = 300, 3 * 128
    q, s = w4_weights(device, N, K, torch.float16)
    pk = mh.repack_mmah(q, s, rows)
    T = -(-N // rows)
    assert pk.qh.shape == (T, 3, rows, 64) and pk.qh.dtype == torch.uint8 and pk.sh.shape == (T, 3, rows)
    q2, s2 = mh.unpack_mmah(pk)
    assert torch.equal(q2, q) and torch.equal(s2, s)
    # the module doc's byte order: low nibble k = 128 g + j, high nibble k = 128 g + 64 + j
    t, g, r, j = T - 1, 2, (N - 1) % rows, 37
    n = t * rows + r
    code = lambda k: (int(q[n, k // 2]) >> (4 * (k % 2))) & 15  # noqa: E731 (public layout)
    assert int(pk.qh[t, g, r, j]) == code(128 * g + j) | (code(128 * g + 64 + j) << 4)
    assert pk.sh[t, g, r] == s[n, g]
    if N % rows:  # padded rows: zero codes and zero scales
        assert int(pk.qh[T - 1, :, rows - 1].sum()) == 0 and float(pk.sh[T - 1, :, rows - 1].abs().sum()) == 0


@pytest.mark.parametrize("M,N,G", [(1, 40, 3), (5, 72, 4), (16, 16, 2), (17, 100, 3)])
@pytest.mark.parametrize("cfg", [(16, 16, 128, 4, 2, 1), (16, 32, 128, 4, 2, 3), (16, 16, 128, 2, 1, 8),
                                 (16, 32, 128, 4, 2, 1, "mmah", 2), (16, 16, 128, 4, 2, 3, "mmah", 2)],
                         ids=lambda c: f"r{c[1]}-sk{c[5]}" + (f"-dq{c[7]}" if len(c) > 7 else ""))
def test_mmah_cpu(device, cfg, M, N, G):
    _case(device, M, N, G * 128, cfg, repeat=2)


def test_mmah_auto_split_and_public_path(device):
    """SK = 0 picks a split from the SM count (interpreter: 1 SM -> 1); gemm_w4a16's "mmah" path
    repacks once per weight and tile height (cached; an in-place update repacks) and matches the
    reference."""
    M, N, K = 4, 48, 256
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    q, s = w4_weights(device, N, K, torch.float16)
    for cfg in w4mod._INTERP4_MMAH:
        y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.float16, device), config=cfg)
        assert_close(y, gemm_w4a16_ref(x, q, s), torch.float16)
    keys = [k for k in mh._REPACKED if k[0] == id(q)]
    assert sorted(k[2] for k in keys) == sorted({c[1] for c in w4mod._INTERP4_MMAH})
    q.add_(0)  # in-place update bumps the version: the next call repacks
    before = mh._REPACKED[keys[0]][3]
    gemm_w4a16(x, q, s, config=w4mod._INTERP4_MMAH[0])
    assert mh._REPACKED[(id(q), id(s), w4mod._INTERP4_MMAH[0][1])][3] is not before
    _counters_zero()


def test_mmah_checks(device):
    q, s = w4_weights(device, 40, 256, torch.float16)
    pk = mh.repack_mmah(q, s, 16)
    x = torch.randn(2, 256, dtype=torch.float16, device=device)
    y = torch.empty(2, 40, dtype=torch.float16, device=device)
    with pytest.raises(ValueError, match="32-row tiles, the weight has 16"):
        mh.gemm_w4a16_mmah(x, pk, y, (16, 32, 128, 4, 2, 1))
    with pytest.raises(ValueError, match="BLOCK_M must be"):
        mh.gemm_w4a16_mmah(x, pk, y, (8, 16, 128, 4, 2, 1))
    with pytest.raises(ValueError, match="rows must be"):
        mh.repack_mmah(q, s, 48)
    with pytest.raises(ValueError, match="DQ"):
        mh.gemm_w4a16_mmah(x, pk, y, (16, 16, 128, 4, 2, 1, "mmah", 5))


def test_mmah_config_lists():
    """Every listed GPU config is an "mmah" tuple the wrapper accepts; the tuner's 2 <= M <= 16
    lists lead with them (M = 1 keeps gemv7 first)."""
    lists = w4mod._W4_MMAH + w4mod.W4_MMAH_DQ2 + w4mod.W4_MMAH_DQ2_SWEEP
    assert all(c[6] == "mmah" and c[0] == 16 and c[1] in (32, 64, 128, 256) and c[2] == 128 for c in lists)
    assert {c[7] for c in w4mod._W4_MMAH if len(c) > 7} == {1}  # the packed-PTX twins
    assert {c[7] for c in w4mod.W4_MMAH_DQ2 + w4mod.W4_MMAH_DQ2_SWEEP} == {2}
    lead = w4mod.W4_MMAH_DQ2 + w4mod._W4_MMAH  # GPU-tested (sessions 10-11): DQ = 2 first, then DQ = 1 / 0
    for M in (2, 4, 16):
        assert w4mod.w4_candidates(M)[: len(lead)] == lead
        assert not set(w4mod.W4_MMAH_DQ2_SWEEP) & set(w4mod.w4_candidates(M))  # slower in session 11: only by opt-in
    assert w4mod.w4_candidates(1)[0][6] == "gemv7"


def test_mmah_dq2_sweep_opt_in(monkeypatch):
    monkeypatch.setenv("LLMPERF_W4_DQ2", "1")
    sweep = w4mod.W4_MMAH_DQ2_SWEEP
    assert w4mod.w4_candidates(16)[: len(sweep) + len(w4mod.W4_MMAH_DQ2)] == sweep + w4mod.W4_MMAH_DQ2


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", w4mod._W4_MMAH + w4mod.W4_MMAH_DQ2 + w4mod.W4_MMAH_DQ2_SWEEP,
                         ids=lambda c: "-".join(map(str, c[:6])) + (f"-dq{c[7]}" if len(c) > 7 else ""))
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 16, 14336, 4096), (torch.bfloat16, 16, 4096, 14336),
                                         (torch.float16, 7, 1000, 3584), (torch.bfloat16, 16, 18944, 3584)])
def test_mmah_gpu(cfg, dtype, M, N, K):
    _case("cuda", M, N, K, cfg, dtype=dtype, repeat=2)


@pytest.mark.gpu
@gpu
def test_mmah_gpu_graph_replay():
    cfg = next(c for c in w4mod._W4_MMAH if c[5] == 2)
    assert_w4_graph_replays(cfg)
    _counters_zero()


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("dq", [0, 1, 2, 3, 4])
def test_mmah_gpu_exact_codes(dtype, dq):
    """Every code 0..15 in both nibbles of every byte position of a group: with x one-hot rows the
    kernel returns single dequantized weights (code - 8) * scale, which bf16 / fp16 hold exactly
    (scales powers of two), so the packed PTX (DQ = 1) and the Triton ops (DQ = 0) must agree
    bitwise with the reference."""
    M, N, K = 16, 64, 256
    codes = (torch.arange(N * K, device="cuda").reshape(N, K) * 7 + torch.arange(N, device="cuda")[:, None]) % 16
    q = (codes[:, 0::2] | (codes[:, 1::2] << 4)).to(torch.uint8)
    s = torch.exp2(torch.randint(-3, 3, (N, K // 128), device="cuda").float()).to(dtype)
    x = torch.zeros(M, K, dtype=dtype, device="cuda")
    ks = torch.randperm(K, device="cuda")[:M]
    x[torch.arange(M), ks] = 1
    cfg = (16, 64, 128, 4, 2, 1, "mmah", dq)
    y = mh.gemm_w4a16_mmah(x, mh.repack_mmah(q, s, 64), poisoned((M, N), dtype, "cuda"), cfg)
    want = ((codes[:, ks].T - 8).float() * s[:, ks // 128].T.float()).to(dtype)
    assert torch.equal(y, want)
