"""Fused residual-add + RMSNorm, streaming copy, and the timing harness."""

import time

import pytest
import torch

from llmperf_kernels import add_rmsnorm, add_rmsnorm_ref, copy, device_metadata, time_fn
from llmperf_kernels.membound import add_rmsnorm_bytes, copy_bytes

from kernel_testutil import assert_close, poisoned

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _rms(device, dtype, T, H):
    x = torch.randn(T, H, dtype=dtype, device=device)
    r = torch.randn(T, H, dtype=dtype, device=device)
    w = torch.randn(H, dtype=dtype, device=device)
    y, h = add_rmsnorm(x, r, w, out=poisoned((T, H), dtype, device), residual_out=poisoned((T, H), dtype, device))
    y_ref, h_ref = add_rmsnorm_ref(x, r, w)
    assert_close(h, h_ref, dtype)
    assert_close(y, y_ref, dtype)


@pytest.mark.parametrize("T,H", [(1, 64), (5, 100), (3, 1000)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_add_rmsnorm(device, dtype, T, H):
    _rms(device, dtype, T, H)


def test_add_rmsnorm_in_place(device):
    x = torch.randn(4, 96, dtype=torch.float16, device=device)
    r = torch.randn(4, 96, dtype=torch.float16, device=device)
    w = torch.randn(96, dtype=torch.float16, device=device)
    y_ref, h_ref = add_rmsnorm_ref(x, r, w)
    y, h = add_rmsnorm(x, r, w, residual_out=r)
    assert h.data_ptr() == r.data_ptr()
    assert_close(r, h_ref, torch.float16)
    assert_close(y, y_ref, torch.float16)


@pytest.mark.parametrize("n", [1, 1000, 5000])
def test_copy(device, n):
    src = torch.randn(n, dtype=torch.float16, device=device)
    dst = copy(src, out=poisoned((n,), torch.float16, device))
    assert torch.equal(dst, src)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        add_rmsnorm(torch.randn(2, 8), torch.randn(2, 9), torch.randn(8))
    with pytest.raises(ValueError, match="contiguous"):
        copy(torch.randn(4, 4).t())


def test_bytes_formulas():
    assert add_rmsnorm_bytes(10, 4096, 2) == (4 * 10 * 4096 + 4096) * 2
    assert copy_bytes(1000, 2) == 4000


def test_time_fn_returns_seconds():
    t = time_fn(lambda: time.sleep(0.01), min_reps=3) if not torch.cuda.is_available() else None
    if t is not None:
        assert 0.009 < t < 0.05  # seconds, not milliseconds
    md = device_metadata()
    for key in ("device_name", "driver_version", "torch_version", "triton_version", "date_utc"):
        assert md[key]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("T,H", [(4096, 4096), (17, 14336), (300, 3584)])
def test_add_rmsnorm_gpu(dtype, T, H):
    _rms("cuda", dtype, T, H)


@pytest.mark.gpu
@gpu
def test_copy_and_time_fn_gpu():
    src = torch.randn(64 * 2**20, dtype=torch.bfloat16, device="cuda")
    assert torch.equal(copy(src, out=poisoned(src.shape, src.dtype, "cuda")), src)
    t = time_fn(lambda: copy(src))
    bw = copy_bytes(src.numel(), 2) / t
    assert 1e10 < bw < 2e13, f"implausible bandwidth {bw:.3e} B/s (time unit wrong?)"
