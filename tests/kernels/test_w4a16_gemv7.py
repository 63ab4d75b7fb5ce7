"""W4A16 v7 GEMV (kernels/gemm_w4a16_gemv7.py: tiled weight slabs, stream-K grid, pipelined loads).

CPU (interpreter): the repack round trip (ragged N, every tile height), fp16 activations (fp32
math inside either way), poisoned outputs, every way a tile can be split over programs (one
program for all tiles, one program per chunk, uneven slabs), M > 1, the cp.async and TMA
(tensor descriptor) loads, both math paths (MATH = 1 runs its fp32 twin: the interpreter cannot
run PTX), both slab-end fix-ups (v7b one-trip FIX = 1, v7 FIX = 0; tiles shared by up to 64
programs, more than one [MAXC, R] load per tile, counters re-armed over repeated calls, bitwise
repeatable results) and the FIX = 2 timing control, the MAXC arithmetic, the gemm_w4a16 "gemv7"
path with its repack cache, and the argument checks. GPU (@gpu): every GEMV7_CONFIGS entry at
14336x4096, every config the M = 1 tuner list can lead with at the other layer shapes (bf16 and
fp16, M = 2, ragged N), tiles shared by 128 programs (arrival order up to the GPU), exact integer
cases that pin the half2 asm and the FFMA dequantization, repeated launches and CUDA-graph replays.
"""

import importlib

import pytest
import torch

from llmperf_kernels import gemm_w4a16, gemm_w4a16_ref

from kernel_testutil import assert_close, assert_repeatable, assert_w4_graph_replays, poisoned, w4_weights

g7 = importlib.import_module("llmperf_kernels.gemm_w4a16_gemv7")
w4mod = importlib.import_module("llmperf_kernels.gemm_w4a16")
gemv_mod = importlib.import_module("llmperf_kernels.gemm_w4a16_gemv")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
_MATH1 = next(c for c in g7.GEMV7_CONFIGS if c[4] == 1)
_MATH1_CHAIN2 = next(c for c in g7.GEMV7_CONFIGS if c[4] == 1 and c[6] == 2)
_MATH0 = next(c for c in g7.GEMV7_CONFIGS if c[4] == 0)
_V7 = next(c for c in g7.GEMV7_CONFIGS if len(c) > 7 and c[7] == 0)  # v7's fix-up (FIX = 0)
_V7B = next(c for c in g7.GEMV7_CONFIGS if c[4] == 1 and len(c) < 8)  # v7b's (FIX = 1)
# the module configs the M = 1 tuner list can lead with (128 rows, MATH = 1; either fix-up)
_LEADERS = [c for c in g7.GEMV7_CONFIGS if c[0] == 128 and c[4] == 1]


def _counters_zero():
    """Every launch leaves the tile counters zero and v7d's workspace all sentinel (0xFFFFFFFF)."""
    for c in gemv_mod._COUNTERS.values():
        assert int(c.abs().sum()) == 0
    for w in g7._SENTINEL_WS.values():
        assert bool((w == -1).all())


def _case(device, M, N, K, cfg, dtype=torch.float16, programs=None, repeat=1):
    x = torch.randn(M, K, dtype=dtype, device=device)
    q, s = w4_weights(device, N, K, dtype)
    ref = gemm_w4a16_ref(x, q, s)
    assert ref.abs().max() > 0
    pk = g7.repack_gemv7(q, s, cfg[0])
    assert_repeatable(lambda: g7.gemm_w4a16_gemv7(x, pk, out=poisoned((M, N), dtype, device), config=cfg,
                                                  programs=programs), ref, dtype, repeat)
    _counters_zero()


@pytest.mark.parametrize("rows", [16, 32, 64, 128, 256])
def test_repack_round_trip(device, rows):
    N, K = 300, 3 * 128  # N not a multiple of rows: padded tiles
    q, s = w4_weights(device, N, K, torch.float16)
    pk = g7.repack_gemv7(q, s, rows)
    T = -(-N // rows)
    assert pk.qt.shape == (T, 3, rows, 16) and pk.qt.dtype == torch.int32 and pk.st.shape == (T, 3, rows)
    q2, s2 = g7.unpack_gemv7(pk)
    assert torch.equal(q2, q) and torch.equal(s2, s)
    # byte order of the module doc: qt[t, g, r, c] = word 16 g + c of row t R + r
    q32 = q.view(torch.int32)
    t, g, r, c = T - 1, 2, (N - 1) % rows, 5
    assert int(pk.qt[t, g, r, c]) == int(q32[t * rows + r, 16 * g + c])
    assert pk.st[t, g, r] == s[t * rows + r, g]
    if N % rows:  # padding: code 8 (weight 0) and scale 0
        assert int(pk.qt[-1, :, -1].view(torch.uint8).unique().item()) == 0x88
        assert float(pk.st[-1, :, -1].abs().max()) == 0


# (ROWS, warps, stages, PER_SM, MATH, LOAD[, CHAIN]) x programs per token: one program for every
# tile (all tiles whole), one per chunk (a tile shared by G programs), uneven slabs.
_CPU7 = [(16, 4, 2, 2, 0, 0), (16, 4, 3, 2, 1, 1, 4), (32, 4, 2, 1, 0, 1), (32, 4, 3, 1, 1, 0, 2),
         (16, 4, 2, 2, 1, 0, 4, 0), (16, 4, 2, 2, 1, 1, 4, 3), (32, 4, 2, 1, 0, 0, 4, 3)]


@pytest.mark.parametrize("programs", [1, 4, 7, 1000])
@pytest.mark.parametrize("cfg", _CPU7, ids=lambda c: f"r{c[0]}-s{c[2]}-math{c[4]}-load{c[5]}-fix{c[7] if len(c) > 7 else 1}")
def test_gemv7_paths(device, cfg, programs):
    _case(device, 1, 40, 5 * 128, cfg, programs=programs, repeat=2)


# (config, N, K / 128, programs): a long K and few rows, so that one tile is shared by many programs.
# r16 x 4 warps: MAXC up to 256, one load per tile; r32 x 1 warp: MAXC capped at 32 (1024 x warps /
# rows), so 48 sharers take two loads; uneven slabs (23, 61 programs); the v7 loop (FIX = 0).
_MANY = [((16, 4, 2, 2, 0, 0), 16, 64, 64), ((16, 4, 3, 2, 1, 1, 4), 16, 64, 23),
         ((32, 1, 3, 1, 1, 0, 4), 40, 48, 96), ((32, 1, 2, 1, 0, 1), 40, 48, 61),
         ((16, 4, 2, 2, 0, 0, 4, 0), 16, 64, 23), ((16, 4, 3, 2, 1, 1, 4, 3), 16, 64, 23),
         ((32, 1, 3, 1, 1, 0, 4, 3), 40, 48, 96)]


@pytest.mark.parametrize("cfg,N,G,programs", _MANY, ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_gemv7_many_sharers(device, cfg, N, G, programs):
    """Tiles shared by up to 64 programs (the down projection's case, ~13 on the H200, magnified):
    all partials summed, counters re-armed over three calls, results bitwise repeatable."""
    C = -(-N // cfg[0]) * G
    P = g7.gemv7_programs(C, programs)
    maxc = g7.gemv7_maxc(C, P, G, cfg[0], cfg[1])
    assert g7.gemv7_sharers(C, P, G) > 8 and (maxc == 32 if cfg[1] == 1 else maxc >= g7.gemv7_sharers(C, P, G))
    _case(device, 1, N, G * 128, cfg, programs=programs, repeat=3)


def test_gemv7_sharers_arithmetic():
    """gemv7_sharers against a brute-force owner count; MAXC a power of two within the cap."""
    for C, P, G in [(3584, 396, 112), (3584, 396, 32), (4144, 396, 28), (96, 96, 48), (40, 7, 5), (7, 7, 7), (5, 1, 5)]:
        owner = [max(p for p in range(P) if (p * C) // P <= c) for c in range(C)]
        brute = max(len(set(owner[t * G:(t + 1) * G])) for t in range(C // G))
        assert g7.gemv7_sharers(C, P, G) == brute, (C, P, G)
    assert g7.gemv7_sharers(3584, 396, 112) == 14 and g7.gemv7_maxc(3584, 396, 112, 128, 4) == 16
    assert g7.gemv7_maxc(3584, 660, 112, 128, 4) == 32 and g7.gemv7_maxc(256, 256, 128, 128, 4) == 32
    assert g7.gemv7_maxc(3584, 112, 32, 128, 4) == 1  # one program per tile: nothing shared


# Tile-aligned grids (SPLIT = s, 9th element): s = 1 data-parallel (no fix-up), s > 1 each tile in s
# runs (s need not divide G: runs of floor / ceil(G / s) chunks); ragged N, M = 2, both loads/maths.
_CPU_ALIGNED = [c for c in g7.INTERP_CONFIGS if len(c) > 8] + [(32, 1, 3, 0, 1, 0, 4, 1, 1), (16, 4, 2, 0, 0, 1, 4, 1, 4),
                                                                 (16, 2, 2, 0, 1, 1, 4, 1, 1, 8)]


@pytest.mark.parametrize("M,N,G", [(1, 40, 5), (2, 100, 3), (1, 16, 7), (2, 72, 8)])
@pytest.mark.parametrize("cfg", _CPU_ALIGNED, ids=lambda c: f"r{c[0]}-math{c[4]}-load{c[5]}-fix{c[7]}-split{c[8]}")
def test_gemv7_tile_aligned(device, cfg, M, N, G):
    if cfg[8] > G or (len(cfg) > 9 and G % cfg[9]):
        pytest.skip("more runs than groups per tile, or KS not dividing G: rejected by the wrapper (test_gemv7_checks)")
    _case(device, M, N, G * 128, cfg, repeat=2)


def test_gemv7_tile_aligned_arithmetic():
    """P = T s programs over C = T G chunks: program p's slab lies inside tile p // s, every tile has
    exactly s programs (so SPLIT = 1 shares nothing: one program per tile, MAXC 1), runs differ by
    at most one chunk -- for s dividing G or not."""
    for T, G, s in [(448, 32, 1), (32, 112, 4), (7, 5, 3), (3, 7, 7), (5, 28, 6)]:
        C, P = T * G, T * s
        for p in range(P):
            c0, c1 = (p * C) // P, ((p + 1) * C) // P
            assert c0 // G == (c1 - 1) // G == p // s and c1 - c0 in (G // s, -(-G // s))
        assert g7.gemv7_sharers(C, P, G) == s
    assert g7.gemv7_maxc(448 * 32, 448, 32, 32, 1) == 1


def test_gemv7_fix2_control(device):
    """FIX = 2 (timing control) skips the fix-up: with one program per tile it equals FIX = 1 exactly,
    with shared tiles their rows stay unwritten (NaN in a poisoned output) and the others are right."""
    M, N, K = 1, 48, 4 * 128
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    q, s = w4_weights(device, N, K, torch.float16)
    pk = g7.repack_gemv7(q, s, 16)
    cfg = _CPU7[0]
    y1 = g7.gemm_w4a16_gemv7(x, pk, out=poisoned((M, N), torch.float16, device), config=cfg, programs=3)
    y2 = g7.gemm_w4a16_gemv7(x, pk, out=poisoned((M, N), torch.float16, device), config=cfg + (4, 2), programs=3)
    assert torch.equal(y1, y2)
    # 2 programs of 6 chunks over 3 tiles of 4: tile 1 is shared, tiles 0 and 2 are whole
    y2 = g7.gemm_w4a16_gemv7(x, pk, out=poisoned((M, N), torch.float16, device), config=cfg + (4, 2), programs=2)
    assert torch.isnan(y2[0, 16:32]).all() and torch.equal(y2[:, :16], y1[:, :16]) and torch.equal(y2[:, 32:], y1[:, 32:])
    _counters_zero()


@pytest.mark.parametrize("M", [2, 3])
def test_gemv7_several_tokens(device, M):
    """M > 1: one program row per token (grid axis 0); counters and slots are indexed by it."""
    _case(device, M, 33, 7 * 128, _CPU7[1], programs=5)


def test_gemv7_exact_dequant(device):
    """MATH = 0 is exact: integer x, power-of-two scales -> the result equals the reference."""
    M, N, K = 1, 48, 384
    x = torch.randint(-3, 4, (M, K), device=device).to(torch.float16)
    q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device=device)
    s = torch.full((N, K // 128), 0.25, dtype=torch.float16, device=device)
    pk = g7.repack_gemv7(q, s, 16)
    y = g7.gemm_w4a16_gemv7(x, pk, out=poisoned((M, N), torch.float16, device), config=_CPU7[0], programs=5)
    assert torch.equal(y.float(), gemm_w4a16_ref(x, q, s))


def test_gemv7_bf16_halves(device):
    """bf16 x and scales are read as raw 16-bit halves (fine in the interpreter: no tl.dot)."""
    M, N, K = 1, 32, 256
    x = torch.randint(-3, 4, (M, K), device=device).to(torch.bfloat16)
    q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device=device)
    s = (torch.rand(N, K // 128, device=device) + 0.5).to(torch.bfloat16)
    for cfg in _CPU7[:2]:
        y = g7.gemm_w4a16_gemv7(x, g7.repack_gemv7(q, s, 16), out=poisoned((M, N), torch.bfloat16, device),
                                config=cfg, programs=3)
        assert_close(y, gemm_w4a16_ref(x, q, s), torch.bfloat16)  # bf16 rounding <= 5e-3; a wrong half: O(1)


def test_gemv7_through_gemm_w4a16(device):
    """The "gemv7" path of gemm_w4a16 repacks once per weight tensor and repacks after an
    in-place update (version counter)."""
    M, N, K = 1, 40, 256
    x = torch.randn(M, K, dtype=torch.float16, device=device)
    q, s = w4_weights(device, N, K, torch.float16)
    cfg = w4mod._INTERP4_GEMV7[0]
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.float16, device), config=cfg)
    assert_close(y, gemm_w4a16_ref(x, q, s), torch.float16)
    pk = g7._cached_repack(q, s, cfg[1])
    assert g7._cached_repack(q, s, cfg[1]) is pk
    s.mul_(2)
    assert g7._cached_repack(q, s, cfg[1]) is not pk
    y = gemm_w4a16(x, q, s, out=poisoned((M, N), torch.float16, device), config=cfg)
    assert_close(y, gemm_w4a16_ref(x, q, s), torch.float16)


def test_gemv7_checks(device):
    q, s = w4_weights(device, 40, 256, torch.float16)
    pk = g7.repack_gemv7(q, s, 32)
    x = torch.randn(1, 256, dtype=torch.float16, device=device)
    with pytest.raises(ValueError, match="16..256"):
        g7.repack_gemv7(q, s, 48)
    with pytest.raises(ValueError, match="16-row tiles, the weight has 32"):
        g7.gemm_w4a16_gemv7(x, pk, config=_CPU7[0])
    with pytest.raises(ValueError, match="K = 256"):
        g7.gemm_w4a16_gemv7(torch.randn(1, 128, dtype=torch.float16, device=device), pk)
    with pytest.raises(ValueError, match="w.st must have dtype"):
        g7.gemm_w4a16_gemv7(x.bfloat16(), pk)
    with pytest.raises(ValueError, match="Gemv7Weight"):
        g7.gemm_w4a16_gemv7(x, (pk.qt, pk.st))
    with pytest.raises(ValueError, match="out must be"):
        g7.gemm_w4a16_gemv7(x, pk, out=torch.empty(1, 41, dtype=torch.float16, device=device))
    with pytest.raises(ValueError, match="FIX must be"):
        g7.gemm_w4a16_gemv7(x, pk, config=(32, 4, 2, 1, 0, 1, 4, 4))
    with pytest.raises(ValueError, match="KS must be a power of two"):  # 2 groups per tile row
        g7.gemm_w4a16_gemv7(x, pk, config=(32, 4, 2, 0, 1, 1, 4, 1, 1, 4))
    with pytest.raises(ValueError, match="needs the data-parallel grid"):
        g7.gemm_w4a16_gemv7(x, pk, config=(32, 4, 2, 0, 1, 1, 4, 1, 0, 2))
    with pytest.raises(ValueError, match="SPLIT must be 0"):  # 2 groups per tile row: at most 2 runs
        g7.gemm_w4a16_gemv7(x, pk, config=(32, 4, 2, 0, 0, 1, 4, 1, 3))


def test_gemv7_config_lists():
    """MATH = 1 configs keep the pack-of-4 layout (ROWS == 32 x warps); gemm_w4a16's tuples map
    back to the module's; the M = 1 tuner list leads with v7 (measured faster than v5 on all four
    shapes, session5_tune_w4a16_v7_h200.csv) in one tile height (one repacked copy per weight)
    and keeps v5; the interpreter list is unchanged."""
    assert all(c[4] == 0 or c[0] == 32 * c[1] for c in g7.GEMV7_CONFIGS)
    every = g7.GEMV7_CONFIGS + g7.GEMV7_DP_CONFIGS + g7.GEMV7_V7D_CONFIGS + g7.GEMV7_KS_CONFIGS
    assert all(c[4] == 0 or c[0] * (c[9] if len(c) > 9 else 1) == 32 * c[1] for c in every)
    assert all(len(c) == 9 and c[8] >= 1 for c in g7.GEMV7_DP_CONFIGS)
    assert all(len(c) == 10 and c[8] == 1 and c[9] > 1 for c in g7.GEMV7_KS_CONFIGS)
    assert all(c[7] == 3 for c in g7.GEMV7_V7D_CONFIGS)
    assert [(c[1], c[3], c[4], c[7], c[8], c[9], c[11], *c[12:]) for c in w4mod._W4_GEMV7] == \
        [c[:6] + (c[7] if len(c) > 7 else 1, *c[8:]) for c in every]
    m1 = w4mod.w4_candidates(1, False)
    g7m1 = [c for c in m1 if c[6] == "gemv7"]
    assert all(c in w4mod._W4_GEMV7 for c in g7m1)  # every leader is a listed (GPU-tested) config
    # session 7 (H100 run 1): v7d (FIX = 3) first, its tile-aligned SPLIT 8 variant, v7b kept, two v7e
    assert m1[0][11] == 3 and {c[11] for c in g7m1} == {1, 3} and sum(len(c) > 13 for c in g7m1) == 2
    assert any(c[6] == "gemv5" for c in m1)
    assert all(c[6] == "gemv" for c in w4mod.w4_candidates(1, True))
    assert g7.gemv7_programs(100, 264) == 100 and g7.gemv7_programs(3584, 264) == 264


# ---------------------------------------------------------------- GPU, realistic shapes
@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", g7.GEMV7_CONFIGS, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 14336, 4096)])
def test_gemv7_gpu(cfg, dtype, M, N, K):
    """Every config at one layer shape in bf16 (tune_w4a16.py checks them at all four shapes)."""
    _case("cuda", M, N, K, cfg, dtype, repeat=2)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", _LEADERS + [_MATH0], ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 4096, 14336), (torch.bfloat16, 2, 28672, 4096),
                                         (torch.float16, 1, 18944, 3584), (torch.float16, 1, 1000, 4096)])
def test_gemv7_gpu_shapes(cfg, dtype, M, N, K):
    """fp16, the down projection (long tiles shared by many programs), M = 2, ragged N (a padded
    tile), for every config the tuner's M = 1 list can lead with and MATH = 0."""
    _case("cuda", M, N, K, cfg, dtype, repeat=3)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", g7.GEMV7_DP_CONFIGS + g7.GEMV7_KS_CONFIGS, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 14336, 4096), (torch.bfloat16, 1, 4096, 14336),
                                         (torch.float16, 2, 1000, 3584)])
def test_gemv7_gpu_tile_aligned(cfg, dtype, M, N, K):
    """Every tile-aligned config (SPLIT = 1: no fix-up; SPLIT > 1: s sharers per tile) at the gate /
    up and down projection shapes in bf16 and a ragged fp16 M = 2 case (28 groups: uneven runs).
    v7e (KS) configs need KS to divide the groups per row (the wrapper rejects the rest)."""
    if len(cfg) > 9 and (K // 128) % cfg[9]:
        pytest.skip("KS does not divide the groups per row: rejected by the wrapper (test_gemv7_checks)")
    _case("cuda", M, N, K, cfg, dtype, repeat=2)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", g7.GEMV7_V7D_CONFIGS, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("dtype,M,N,K", [(torch.bfloat16, 1, 14336, 4096), (torch.bfloat16, 1, 4096, 14336),
                                         (torch.float16, 2, 1000, 3584), (torch.bfloat16, 1, 256, 16384)])
def test_gemv7_gpu_v7d(cfg, dtype, M, N, K):
    """v7d (sentinel polling) at the layer shapes, a ragged fp16 M = 2 case and 128-sharer tiles:
    right results, bitwise repeatable over calls, workspace left all sentinel."""
    _case("cuda", M, N, K, cfg, dtype, repeat=3)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", [_V7B, _MATH0, _V7], ids=["v7b-math1", "v7b-math0", "v7"])
def test_gemv7_gpu_many_sharers(cfg):
    """Two tiles of K = 16384 over all 256 chunks' programs: 128 sharers per tile, arrivals in the
    GPU's order, MAXC capped (four [32, 128] loads per tile); repeated calls bitwise equal."""
    _case("cuda", 1, 256, 16384, cfg, torch.bfloat16, repeat=4)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cfg", [_MATH1, _MATH1_CHAIN2, _MATH0], ids=["math1-chain4", "math1-chain2", "math0"])
def test_gemv7_gpu_exact(dtype, cfg):
    """Small integers, power-of-two scales: every product and partial sum is exact in fp16 and
    fp32, so the asm (operand order, nibble pairing) and the FFMA dequantization must reproduce
    the reference bit for bit."""
    M, N, K = 1, 512, 2048
    x = torch.randint(-4, 5, (M, K), device="cuda").to(dtype)
    q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device="cuda")
    s = torch.full((N, K // 128), 0.25, dtype=dtype, device="cuda")
    y = g7.gemm_w4a16_gemv7(x, g7.repack_gemv7(q, s, cfg[0]), out=poisoned((M, N), dtype, "cuda"), config=cfg)
    assert torch.equal(y.float(), gemm_w4a16_ref(x, q, s).to(dtype).float())


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cfg", [c for c in w4mod._W4_GEMV7 if c[1] == 128 and c[8] == 1 and (len(c) < 13 or c[11] == 3)],
                         ids=lambda c: "-".join(map(str, c[3:5] + c[7:])))
def test_gemv7_gpu_graph_replay(cfg):
    """Tile counters re-arm themselves: many CUDA-graph replays give the same correct result,
    through the public gemm_w4a16 entry (repack cached before the capture), for every config the
    M = 1 tuner list can lead with."""
    assert_w4_graph_replays(cfg)  # repack and counters outside the capture
    _counters_zero()
