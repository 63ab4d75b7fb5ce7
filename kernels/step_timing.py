"""Timing and profiling of one model step on the GPU, shared by the end-to-end measurements
(measure_e2e), the host-rate probe (calibrate_extra) and the step breakdown
(benchmarks/step_breakdown.py): CUDA-event timing from an idle GPU, quantiles of repeated
timings, the kernel names of a profiled call and the attention backend they reveal."""

from __future__ import annotations

import statistics
import time

import torch


def quantiles(ts):
    """(median, p10, p90) of timings in seconds (inclusive method; one timing repeats itself)."""
    ts = sorted(ts)
    q = statistics.quantiles(ts, n=10, method="inclusive") if len(ts) > 1 else [ts[0]] * 9
    return statistics.median(ts), q[0], q[8]


def event_time_s(fn, cuda: bool = True) -> float:
    """One call of fn started from an idle GPU, timed with CUDA events (perf_counter on the CPU), s."""
    if not cuda:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e-3


def attention_backend(names) -> str:
    """What SDPA ran, read off the kernel names of a profiled step."""
    low = [n.lower() for n in names]
    if any("cudnn" in n or "cudnn_generated" in n for n in low):
        return "cudnn"
    if any("flash" in n for n in low):
        return "flash"
    if any("fmha" in n or "efficient_attention" in n or "mem_eff" in n for n in low):
        return "efficient"
    return "math" if names else ""


def profile_kernels(fn):
    """Run fn once under torch.profiler; return the device kernel names (memcpy/memset excluded)."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CUDA] if torch.cuda.is_available() else [ProfilerActivity.CPU]
    with profile(activities=acts) as prof:
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    if not torch.cuda.is_available():  # CPU dry run: count top-level aten ops instead
        return [e.name for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None]
    return [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
            and "memcpy" not in e.name.lower() and "memset" not in e.name.lower()]
