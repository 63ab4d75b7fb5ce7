"""Decode attention on the GPU (@gpu, skipped without CUDA) at realistic shapes: bf16/fp16, fp8 KV,
contiguous and paged, every launch variant (v5 PDL / swap-AB, v6 inline-PTX converts and fused merge,
v8 merge, v7 persistent flat kernel, CUDA-graph replay). CPU tests: test_attention.py."""

import importlib

import pytest
import torch

from llmperf_kernels import attention_decode, attention_decode_ref
from llmperf_kernels.attention_decode import DecodeConfig

from kernel_testutil import assert_close, run_decode

ad = importlib.import_module("llmperf_kernels.attention_decode")  # the module (the package exports the function)
sp = importlib.import_module("llmperf_kernels.attention_decode_split")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype,page,Lq", [(torch.bfloat16, p, lq) for p in (None, 16, 64) for lq in (1, 4)]
                         + [(torch.float16, 32, 1)])
def test_decode_gpu(dtype, page, Lq):
    run_decode("cuda", dtype, 4, 32, 8, Lq, [4000, 77, 9000, Lq], 128, page=page)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 32])
def test_decode_gpu_fp8(page):
    run_decode("cuda", torch.bfloat16, 2, 28, 4, 1, [3000, 12000], 128, page=page, kv_dtype=torch.float8_e4m3fn)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("kv_dtype,page,cfg", [
    (kvd, page, DecodeConfig(bn, nw, ns, splits, combine, swap))
    for kvd, bn, nw, ns in ((None, 64, 4, 4), (torch.float8_e4m3fn, 128, 4, 3))
    for page in (None, 16)
    for splits, combine, swap in ((33, "pdl", False), (33, "kernel", True), (66, "pdl", True), (5, "fused", True),
                                  (1, None, True))])
def test_decode_gpu_v5_configs(kv_dtype, page, cfg):
    """v5 launches at bench shapes: programmatic dependent combine, swap-AB, both together; ragged
    batch (a sequence shorter than one slice), GQA 4 and 8."""
    run_decode("cuda", torch.bfloat16, 3, 32, 8, 1, [20000, 77, 9000], 128, page=page, kv_dtype=kv_dtype, config=cfg)
    run_decode("cuda", torch.bfloat16, 1, 64, 8, 1, [12345], 128, page=page, kv_dtype=kv_dtype, config=cfg)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 16])
@pytest.mark.parametrize("cfg", [DecodeConfig(128, 4, 3, 1, None, False, c) for c in (1, 2)]
                         + [DecodeConfig(128, 4, 3, 33, "fused", False, 2), DecodeConfig(64, 4, 3, 5, "pdl", False, 1),
                            DecodeConfig(128, 4, 3, 2, "kernel", True, 2), DecodeConfig(128, 8, 3, 1, None, True, 1)])
def test_decode_gpu_fp8_cvt(page, cfg):
    """v6 fp8 converts by inline PTX (cvt 1: V, 2: K and V) at bench shapes, ragged, GQA 4/8/16."""
    run_decode("cuda", torch.bfloat16, 3, 32, 8, 1, [20000, 77, 9000], 128, page=page,
            kv_dtype=torch.float8_e4m3fn, config=cfg)
    run_decode("cuda", torch.bfloat16, 1, 64, 4, 1, [12345], 128, page=page, kv_dtype=torch.float8_e4m3fn, config=cfg)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [16, 64])
@pytest.mark.parametrize("cfg", ad._PAGED_DEEP + [DecodeConfig(64, 4, 5), DecodeConfig(64, 4, 5, swap=True),
                                 DecodeConfig(128, 8, 5)])
@pytest.mark.parametrize("splits", [1, 7])
def test_decode_gpu_paged_deep(page, cfg, splits):
    """Session 10: the five-stage paged launches (block-table gather double-buffered with K/V):
    every fp8 one the tuner may pick and three bf16 ones (timed, never faster: not in the bf16
    list), at bench-like shapes: ragged, GQA 4/8, one slice and several."""
    kvd = torch.float8_e4m3fn if cfg.cvt else None
    cfg = cfg._replace(splits=splits)
    run_decode("cuda", torch.bfloat16, 3, 32, 8, 1, [20000, 77, 9000], 128, page=page, kv_dtype=kvd, config=cfg)
    run_decode("cuda", torch.bfloat16, 1, 32, 4, 1, [12345], 128, page=page, kv_dtype=kvd, config=cfg)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("splits", [16, 33, 64])
def test_decode_gpu_fused_rows(splits):
    """v6 fused merge (all G*Lq rows of a group at once), Lq 1 and 3, two calls (counters re-armed)."""
    for lq in (1, 3, 1):
        run_decode("cuda", torch.bfloat16, 2, 32, 8, lq, [32768, 5000], 128, config=DecodeConfig(64, 4, 4, splits, "fused"))


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 16])
@pytest.mark.parametrize("cfg", [DecodeConfig(64, 4, 3, None, "fused"), DecodeConfig(64, 4, 4, None, "fused"),
                                 DecodeConfig(64, 8, 3, None, "fused"), DecodeConfig(64, 4, 4, None, "fused", True)])
def test_decode_gpu_fused_v8(page, cfg):
    """v8 fused merge at bench shapes (heuristic splits): B1 L32k (32 slices, one chunk; paged 64
    slices in chunks), B1 L131k (33 / 66 slices), ragged B3, GQA 8 with q_len 4 (32 rows: 8 row
    blocks); 4 warps (VEC 4) and 8 warps (VEC 2), swap-AB; repeated calls re-arm the counters."""
    for _ in range(2):
        run_decode("cuda", torch.bfloat16, 1, 32, 8, 1, [32768], 128, page=page, config=cfg)
    run_decode("cuda", torch.bfloat16, 1, 32, 8, 1, [131072], 128, page=page, config=cfg)
    run_decode("cuda", torch.bfloat16, 3, 32, 8, 1, [20000, 77, 9000], 128, page=page, config=cfg)
    run_decode("cuda", torch.bfloat16, 2, 64, 8, 4, [12345, 5000], 128, page=page, config=cfg)
    assert ad.LAST_LAUNCH["kernels"] == 1 and all(int(c.abs().sum()) == 0 for c in ad._COUNTERS.values())


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 16])
def test_decode_gpu_fused_default_graph(page, monkeypatch):
    """The default path with combine "fused" (the wrapper's switch), captured in a CUDA graph and
    replayed: every replay re-arms the arrival counters and writes the same (correct) output."""
    monkeypatch.setattr(ad, "_DEFAULT_COMBINE", "fused")
    run_decode("cuda", torch.bfloat16, 4, 32, 8, 1, [4000, 77, 9000, 1], 128, page=page)
    run_decode("cuda", torch.bfloat16, 1, 32, 8, 1, [32768], 128, page=page)
    assert ad.LAST_LAUNCH["kernels"] == 1
    q, k, v, lens, bt = ad.random_decode_inputs(1, 32768, 32, 8, 128, page)
    out = torch.empty_like(q)
    attention_decode(q, k, v, lens, bt, out=out, max_kv_len=32768)  # compile outside the capture
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        attention_decode(q, k, v, lens, bt, out=out, max_kv_len=32768)
    ref = attention_decode_ref(q, k, v, lens, bt)
    first = None
    for _ in range(3):
        out.fill_(float("nan"))
        g.replay()
        torch.cuda.synchronize()
        assert_close(out, ref, torch.bfloat16)
        first = out.clone() if first is None else first
        assert torch.equal(out, first)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 16])
@pytest.mark.parametrize("cfg", [DecodeConfig(64, 4, 3, None, "kernel", persist=2),
                                 DecodeConfig(64, 8, 3, None, "pdl", persist=2),
                                 DecodeConfig(64, 8, 5, None, "pdl", persist=1),
                                 DecodeConfig(32, 4, 4, None, "kernel", persist=3),
                                 DecodeConfig(64, 4, 3, None, "pdl", True, persist=2)])
def test_decode_gpu_persist(page, cfg):
    """v7 flat kernel at bench shapes: B1 L32k (EAGER when contiguous), ragged B3 (a sequence
    shorter than one program's share), GQA 4 and 8, q_len 1 and 4; each config called twice."""
    for _ in range(2):
        run_decode("cuda", torch.bfloat16, 1, 32, 8, 1, [32768], 128, page=page, config=cfg)
    run_decode("cuda", torch.bfloat16, 3, 32, 8, 1, [20000, 77, 9000], 128, page=page, config=cfg)
    run_decode("cuda", torch.bfloat16, 2, 64, 8, 4, [12345, 5000], 128, page=page, config=cfg)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 16])
def test_decode_gpu_default_flat(page, monkeypatch):
    """The default path with v7's switch on: where the heuristic splits, the flat kernel's first
    candidate (tuning is off in tests); B4 ragged (loads masked by kv_len) and B1 (EAGER)."""
    monkeypatch.setattr(ad, "_FLAT_SPLIT_REGIME", True)
    run_decode("cuda", torch.bfloat16, 4, 32, 8, 1, [4000, 77, 9000, 1], 128, page=page)
    run_decode("cuda", torch.bfloat16, 1, 32, 8, 1, [32768], 128, page=page)
    assert ad.LAST_LAUNCH["kernels"] == 2 and sp.LAST_FLAT["programs"] > 8


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 16])
def test_decode_gpu_persist_fp8(page):
    for cfg in (DecodeConfig(128, 4, 3, None, "kernel", persist=2), DecodeConfig(128, 4, 3, None, "pdl", True, 1, 2)):
        run_decode("cuda", torch.bfloat16, 3, 32, 8, 1, [20000, 77, 9000], 128, page=page,
                kv_dtype=torch.float8_e4m3fn, config=cfg)
