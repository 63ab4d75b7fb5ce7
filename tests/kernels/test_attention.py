"""Prefill (FA2) and decode (flash-decoding, contiguous + paged, bf16/fp16/fp8 KV) attention.

CPU (interpreter): fp16, small ragged shapes, GQA ratios 1/4/8, causal/windowed, paged block sizes
16/32/64. GPU (@gpu): bf16 and fp16 at realistic shapes, head_dim 64/128/256.
"""

import pytest
import torch

from llmperf_kernels import attention_decode, attention_decode_ref, attention_prefill, attention_prefill_ref
from llmperf_kernels.attention_decode import attention_decode_bytes

from kernel_testutil import assert_close, poisoned

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
F16 = torch.float16


def _prefill(device, dtype, B, Hq, Hkv, Sq, Skv, D, causal, window):
    q = torch.randn(B, Hq, Sq, D, dtype=dtype, device=device)
    k = torch.randn(B, Hkv, Skv, D, dtype=dtype, device=device)
    v = torch.randn(B, Hkv, Skv, D, dtype=dtype, device=device)
    o = attention_prefill(q, k, v, causal, window, out=poisoned((B, Hq, Sq, D), dtype, device))
    assert_close(o, attention_prefill_ref(q, k, v, causal, window), dtype)


@pytest.mark.parametrize("Hq,Hkv", [(2, 2), (4, 1), (8, 1)])
@pytest.mark.parametrize("causal,window", [(False, None), (True, None), (True, 9)])
def test_prefill_cpu(device, Hq, Hkv, causal, window):
    _prefill(device, F16, 2, Hq, Hkv, 37, 37, 32, causal, window)


@pytest.mark.parametrize("Sq,Skv,causal", [(13, 45, True), (45, 45, True), (20, 33, False)])
def test_prefill_chunked_ragged(device, Sq, Skv, causal):
    """Queries are the last Sq of Skv positions (chunked prefill); lengths not block multiples."""
    _prefill(device, F16, 1, 4, 2, Sq, Skv, 64, causal, 16 if causal and Sq == 13 else None)


def test_prefill_does_not_expand_kv_and_reads_right_head(device):
    """Each query head of a group must match attention against ITS kv head only."""
    q = torch.randn(1, 4, 20, 32, dtype=F16, device=device)
    k = torch.randn(1, 2, 20, 32, dtype=F16, device=device)
    v = torch.randn(1, 2, 20, 32, dtype=F16, device=device)
    o = attention_prefill(q, k, v, True)
    for h in range(4):
        ref = attention_prefill_ref(q[:, h:h + 1], k[:, h // 2:h // 2 + 1], v[:, h // 2:h // 2 + 1], True)
        assert_close(o[:, h:h + 1], ref, F16)


@pytest.mark.parametrize("causal,window", [(False, None), (True, None), (True, 9)])
def test_prefill_tma_variant(device, causal, window):
    """K/V via tensor descriptors (forced config); ragged Skv so tiles read past a head's end."""
    cfg = (16, 16, 4, 1, "tma") if device == "cpu" else (128, 64, 8, 3, "tma")
    q = torch.randn(2, 4, 45, 64, dtype=F16, device=device)
    k = torch.randn(2, 2, 45, 64, dtype=F16, device=device)
    v = torch.randn(2, 2, 45, 64, dtype=F16, device=device)
    o = attention_prefill(q, k, v, causal, window, out=poisoned(q.shape, F16, device), config=cfg)
    assert_close(o, attention_prefill_ref(q, k, v, causal, window), F16)


def test_prefill_rejects_bad_input():
    q = torch.randn(1, 6, 8, 32, dtype=F16)
    kv = torch.randn(1, 4, 8, 32, dtype=F16)
    with pytest.raises(ValueError, match="multiple of Hkv"):
        attention_prefill(q, kv, kv)
    with pytest.raises(ValueError, match="Sq <= Skv"):
        attention_prefill(torch.randn(1, 4, 9, 32, dtype=F16), kv, kv, causal=True)
    with pytest.raises(ValueError, match="window"):
        attention_prefill(torch.randn(1, 4, 8, 32, dtype=F16), kv, kv, causal=False, window=4)


def _decode(device, dtype, B, Hq, Hkv, Lq, lens, D, page=None, kv_dtype=None, splits=None):
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
                         out=poisoned((B, Hq, Lq, D), dtype, device))
    assert_close(o, attention_decode_ref(q, k, v, lens, bt, k_scale=ks, v_scale=vs), dtype)


@pytest.mark.parametrize("Hq,Hkv", [(2, 2), (8, 2), (8, 1)])
@pytest.mark.parametrize("Lq", [1, 3])
@pytest.mark.parametrize("splits", [1, 3])
def test_decode_contiguous(device, Hq, Hkv, Lq, splits):
    _decode(device, F16, 2, Hq, Hkv, Lq, [50, 23], 32, splits=splits)


@pytest.mark.parametrize("page", [16, 32, 64])
@pytest.mark.parametrize("Lq", [1, 4])
def test_decode_paged(device, page, Lq):
    _decode(device, F16, 3, 8, 2, Lq, [70, 5, 129], 64, page=page, splits=2)


def test_decode_fp8_kv(device):
    _decode(device, F16, 2, 4, 1, 1, [40, 33], 64, kv_dtype=torch.float8_e4m3fn, splits=2)
    _decode(device, F16, 2, 4, 1, 2, [40, 33], 64, page=16, kv_dtype=torch.float8_e4m3fn)


def test_decode_rejects_bad_input():
    q = torch.randn(1, 4, 1, 32, dtype=F16)
    kv = torch.randn(1, 2, 8, 32, dtype=F16)
    with pytest.raises(ValueError, match="kv_len"):
        attention_decode(q, kv, kv, torch.tensor([9], dtype=torch.int32))
    with pytest.raises(ValueError, match="kv_lens"):
        attention_decode(q, torch.randn(4, 16, 2, 32, dtype=F16), torch.randn(4, 16, 2, 32, dtype=F16),
                         block_table=torch.zeros(1, 1, dtype=torch.int32))
    with pytest.raises(ValueError, match="head_dim"):
        attention_decode(q, torch.randn(1, 2, 8, 16, dtype=F16), torch.randn(1, 2, 8, 16, dtype=F16))


def test_decode_bytes_formula():
    # B=2, Hq=32, Hkv=8, q_len=1, kv=1000, D=128, bf16: Q + O = 2*2*32*128*2, KV = 2*1000*8*256*2
    want = 2 * 2 * 32 * 128 * 2 + 2 * 1000 * 8 * 256 * 2
    assert attention_decode_bytes(2, 32, 8, 1, 1000, 128, 2, 2) == want
    # paged with block 16 adds 4 bytes per page: ceil(1000/16) = 63 pages per sequence
    assert attention_decode_bytes(2, 32, 8, 1, 1000, 128, 2, 2, page_size=16) == want + 2 * 63 * 4
    # per-sequence lengths are summed
    assert attention_decode_bytes(2, 32, 8, 1, [1000, 1000], 128, 2, 2) == want


# ---------------------------------------------------------------- GPU, realistic shapes
@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype,D,causal,window", [(torch.bfloat16, D, c, w) for D in (64, 128, 256)
                                                   for c, w in ((True, None), (False, None), (True, 500))]
                         + [(torch.float16, 128, True, None)])
def test_prefill_gpu(dtype, D, causal, window):
    _prefill("cuda", dtype, 2, 8, 2, 1000, 1000, D, causal, window)


@pytest.mark.gpu
@gpu
def test_prefill_gpu_long_gqa8():
    _prefill("cuda", torch.bfloat16, 1, 32, 4, 4096 - 7, 4096 - 7, 128, True, None)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype,page,Lq", [(torch.bfloat16, p, lq) for p in (None, 16, 64) for lq in (1, 4)]
                         + [(torch.float16, 32, 1)])
def test_decode_gpu(dtype, page, Lq):
    _decode("cuda", dtype, 4, 32, 8, Lq, [4000, 77, 9000, Lq], 128, page=page)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("page", [None, 32])
def test_decode_gpu_fp8(page):
    _decode("cuda", torch.bfloat16, 2, 28, 4, 1, [3000, 12000], 128, page=page, kv_dtype=torch.float8_e4m3fn)
