"""Shared helpers for the kernel tests: tolerances, poisoned outputs, the error metric."""

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
