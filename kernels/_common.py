"""Small helpers shared by the kernel wrappers (argument checks, M buckets, output buffers)."""

from __future__ import annotations

import math
import weakref

import torch

# log2(e): attention kernels fold it into the softmax scale so the inner loop can use exp2 (e^x = 2^(x log2 e))
LOG2E = math.log2(math.e)


def sm_count(device, cpu_default: int = 4) -> int:
    """Streaming multiprocessors of a CUDA device (torch caches its properties); cpu_default elsewhere (the
    Triton interpreter), where it only sizes grids."""
    device = torch.device(device)
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else cpu_default


def check(cond: bool, msg: str) -> None:
    """Raise ValueError(msg) unless cond: every wrapper reports bad input in one sentence."""
    if not cond:
        raise ValueError(msg)


def check_tensor(t, name: str, ndim: int, dtypes, last_contig: bool = True) -> None:
    check(isinstance(t, torch.Tensor), f"{name} must be a torch.Tensor, got {type(t).__name__}.")
    check(t.dim() == ndim, f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}.")
    check(t.dtype in dtypes, f"{name} must have dtype in {[str(d) for d in dtypes]}, got {t.dtype}.")
    if last_contig:
        check(t.stride(-1) == 1 or t.shape[-1] == 1,
              f"{name} must be contiguous in its last dimension (stride 1), got strides {t.stride()}.")


def check_activation(x, k_expected: int) -> None:
    """x [M, K] bf16/fp16 with K = ``k_expected`` columns (the weight-only GEMMs' input)."""
    check_tensor(x, "x", 2, (torch.bfloat16, torch.float16))
    check(x.shape[1] == k_expected, f"x must have K = {k_expected} columns to match the weight, got {x.shape[1]}.")


def check_out(out, shape, dtype, device):
    """Return ``out`` (validated) or a fresh empty tensor of the given shape/dtype."""
    if out is None:
        return torch.empty(shape, dtype=dtype, device=device)
    check(tuple(out.shape) == tuple(shape) and out.dtype == dtype and out.is_contiguous(),
          f"out must be a contiguous {dtype} tensor of shape {tuple(shape)}, got "
          f"{out.dtype} {tuple(out.shape)}.")
    return out


def m_bucket(m: int) -> int:
    """Autotuning bucket of the token count M: powers of two from 16 up to 4096."""
    b = 16
    while b < m and b < 4096:
        b *= 2
    return b


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64 (NaN anywhere gives NaN, which fails every bound)."""
    o, r = out.double(), ref.double()
    return float(torch.linalg.vector_norm(o - r) / torch.linalg.vector_norm(r))


def cached_repack(cache: dict, qweight, scales, rows: int, repack):
    """``repack(qweight, scales, rows)``, made once per weight tensor pair and tile height and kept
    in ``cache`` while qweight lives (keyed by id, checked by weak references and the tensors'
    version counters, so an in-place update or a new tensor at the same address repacks)."""
    key = (id(qweight), id(scales), rows)
    hit = cache.get(key)
    if hit is not None:
        qref, sref, ver, packed = hit
        if qref() is qweight and sref() is scales and ver == (qweight._version, scales._version):
            return packed
    packed = repack(qweight, scales, rows)
    cache[key] = (weakref.ref(qweight), weakref.ref(scales), (qweight._version, scales._version), packed)
    weakref.finalize(qweight, cache.pop, key, None)
    return packed
