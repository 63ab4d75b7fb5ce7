"""Shared helpers for the kernel tests: tolerances, poisoned outputs, the error metric, one checked
decode-attention call."""

import torch

from llmperf_kernels._common import rel_err

# ||out - ref|| / ||ref|| bounds against an fp32 reference (output rounding dominates:
# bf16 has 8 mantissa bits (~2e-3 per element), fp16 11 bits (~2.5e-4)).
TOL = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float32: 1e-5}


def poisoned(shape, dtype, device):
    """An output buffer full of NaN: any element the kernel fails to write fails the check."""
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def assert_close(out, ref, dtype, tol=None):
    assert torch.isfinite(out).all(), f"{(~torch.isfinite(out)).sum().item()} non-finite elements (unwritten?)"
    err = rel_err(out, ref)
    bound = tol if tol is not None else TOL[dtype]
    assert err <= bound, f"relative error {err:.3e} > {bound:.1e}"


def assert_repeatable(run, ref, dtype, repeat):
    """Call ``run()`` (a kernel writing a fresh poisoned output) ``repeat`` times: every result close
    to ``ref`` and bitwise equal to the first (counters re-armed, a fixed summation order)."""
    first = None
    for _ in range(repeat):
        y = run()
        assert_close(y, ref, dtype)
        if first is None:
            first = y
        else:
            assert torch.equal(y, first)


def assert_w4_graph_replays(cfg, replays=20):
    """``gemm_w4a16`` at M = 1 on 4096 x 14336 (bf16) with a forced ``cfg``, captured once in a CUDA
    graph (weights repacked and counters allocated by an eager call first) and replayed ``replays``
    times into a NaN-poisoned output: every replay must give the reference result, so kernels that
    synchronize programs through counters must re-arm them. The caller checks its counters."""
    from llmperf_kernels import gemm_w4a16, gemm_w4a16_ref, quantize_w4

    M, N, K = 1, 4096, 14336
    x = torch.randn(M, K, dtype=torch.bfloat16, device="cuda")
    q, s = quantize_w4(torch.randn(N, K, dtype=torch.bfloat16, device="cuda"))
    y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    gemm_w4a16(x, q, s, out=y, config=cfg)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        gemm_w4a16(x, q, s, out=y, config=cfg)
    ref = gemm_w4a16_ref(x, q, s)
    for _ in range(replays):
        y.fill_(float("nan"))
        g.replay()
    torch.cuda.synchronize()
    assert_close(y, ref, torch.bfloat16)


def run_decode(device, dtype, B, Hq, Hkv, Lq, lens, D, page=None, kv_dtype=None, splits=None, config=None):
    """Random decode inputs (contiguous or a randomly scattered paged pool; fp8 K/V scaled), one
    ``attention_decode`` call into a poisoned output, checked against ``attention_decode_ref``."""
    from llmperf_kernels import attention_decode, attention_decode_ref

    lens = torch.tensor(lens, dtype=torch.int32, device=device)
    S = int(lens.max())
    q = torch.randn(B, Hq, Lq, D, dtype=dtype, device=device)
    if page is None:
        k = torch.randn(B, Hkv, S + 3, D, dtype=dtype, device=device)
        v = torch.randn(B, Hkv, S + 3, D, dtype=dtype, device=device)
        bt = None
    else:
        nblk = -(-S // page)
        k = torch.randn(B * nblk + 2, page, Hkv, D, dtype=dtype, device=device)
        v = torch.randn_like(k)
        bt = torch.randperm(B * nblk + 2, device=device)[: B * nblk].view(B, nblk).int()
    ks = vs = 1.0
    if kv_dtype is not None:
        k, v, ks, vs = (k * 4).to(kv_dtype), (v * 4).to(kv_dtype), 0.25, 0.5
    o = attention_decode(q, k, v, lens, bt, k_scale=ks, v_scale=vs, num_splits=splits,
                         out=poisoned((B, Hq, Lq, D), dtype, device), config=config)
    assert_close(o, attention_decode_ref(q, k, v, lens, bt, k_scale=ks, v_scale=vs), dtype)
    return o


def w4_weights(device, N, K, dtype):
    """A random int4 weight [N, K] in gemm_w4a16's public layout with varied, never-zero group scales
    (so a wrong group index shows)."""
    from llmperf_kernels import quantize_w4

    q, s = quantize_w4(torch.randn(N, K, dtype=dtype, device=device))
    return q, s * (1 + torch.rand_like(s))
