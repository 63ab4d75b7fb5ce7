"""Prefill attention (FlashAttention-2 style, kernels/attention_prefill.py) against its fp32 reference.

CPU (interpreter): fp16, small ragged shapes, GQA ratios 1/4/8, causal/windowed, chunked prefill
(Sq < Skv). GPU (@gpu): bf16 and fp16 at realistic shapes, head_dim 64/128/256.
"""

import pytest
import torch

from llmperf_kernels import attention_prefill, attention_prefill_ref
from llmperf_kernels.attention_prefill import _WS_CONFIGS, ws_candidates

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


@pytest.mark.parametrize("causal,window,sq,skv", [(False, None, 45, 45), (True, None, 45, 45), (True, 9, 45, 45),
                                                  (True, None, 21, 45), (True, None, 32, 48), (True, 9, 48, 48),
                                                  (False, None, 48, 48)])
def test_prefill_ws_variant(device, causal, window, sq, skv):
    """Warp-specialized variant (forced): Q through a descriptor over the [B*Hq*Sq, D] view (tiles
    run past a head's rows), one key loop, masked tiles; ragged Skv and Skv a tile multiple (no
    in-bounds test); chunked prefill (Sq < Skv). On the CPU the interpreter runs the same code
    without the warpgroup split."""
    cfg = (16, 16, 4, 1, "ws") if device == "cpu" else (128, 64, 4, 2, "ws")
    q = torch.randn(2, 4, sq, 64, dtype=F16, device=device)
    k = torch.randn(2, 2, skv, 64, dtype=F16, device=device)
    v = torch.randn(2, 2, skv, 64, dtype=F16, device=device)
    o = attention_prefill(q, k, v, causal, window, out=poisoned(q.shape, F16, device), config=cfg)
    assert_close(o, attention_prefill_ref(q, k, v, causal, window), F16)


def test_prefill_ws_candidates():
    """The WS tuning candidates: the measured D 128 default, every entry with env "1", none with "0"."""
    assert ws_candidates(128, "") == [(128, 128, 4, 2, "ws")] and ws_candidates(64, "") == []
    assert ws_candidates(256, "1") == _WS_CONFIGS[256] and ws_candidates(128, "0") == []
    assert all(c[3] == 2 for cs in _WS_CONFIGS.values() for c in cs)  # 3-4 stages gave NaN (session 8)


def test_prefill_rejects_bad_input():
    q = torch.randn(1, 6, 8, 32, dtype=F16)
    kv = torch.randn(1, 4, 8, 32, dtype=F16)
    with pytest.raises(ValueError, match="multiple of Hkv"):
        attention_prefill(q, kv, kv)
    with pytest.raises(ValueError, match="Sq <= Skv"):
        attention_prefill(torch.randn(1, 4, 9, 32, dtype=F16), kv, kv, causal=True)
    with pytest.raises(ValueError, match="window"):
        attention_prefill(torch.randn(1, 4, 8, 32, dtype=F16), kv, kv, causal=False, window=4)
    with pytest.raises(ValueError, match="contiguous"):  # the WS variant's descriptors need it
        q = torch.randn(1, 8, 4, 32, dtype=F16).transpose(1, 2)
        attention_prefill(q, kv, kv, config=(16, 16, 4, 1, "ws"))


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
@pytest.mark.parametrize("D,cfg", [(D, c) for D, cs in _WS_CONFIGS.items() for c in cs])
@pytest.mark.parametrize("causal,window", [(True, None), (False, None), (True, 500)])
def test_prefill_ws_gpu(D, cfg, causal, window):
    """Every warp-specialized candidate, forced, at a ragged length with GQA 4."""
    q = torch.randn(2, 8, 1000, D, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(2, 2, 1000, D, dtype=torch.bfloat16, device="cuda")
    v = torch.randn(2, 2, 1000, D, dtype=torch.bfloat16, device="cuda")
    o = attention_prefill(q, k, v, causal, window, out=poisoned(q.shape, torch.bfloat16, "cuda"), config=cfg)
    assert_close(o, attention_prefill_ref(q, k, v, causal, window), torch.bfloat16)


@pytest.mark.gpu
@gpu
def test_prefill_gpu_long_gqa8():
    _prefill("cuda", torch.bfloat16, 1, 32, 4, 4096 - 7, 4096 - 7, 128, True, None)
