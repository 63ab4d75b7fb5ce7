"""Where a measured step's GPU time goes: per-kernel durations of reference-decoder steps (GPU).

A diagnostic for the end-to-end validation, never an input to any fit: for each point it runs
one eager step of kernels/reference_model.py under torch.profiler (CUPTI kernel durations, the
same kernels a CUDA graph replays), sums them per kernel name, and records the step's wall time
(graph replay for decode, CUDA events for an eager prefill). Comparing the kernel sums with
llmperf's per-op times (``llmperf ops``) shows which op model is off; the gap between the wall
time and the kernel sum is the launch gaps.

Usage (GPU): python benchmarks/step_breakdown.py --out OUT/breakdown.csv
             [--points qwen3-30b-a3b:decode:1:512,llama-3.1-8b:prefill:1:2048]
Columns: model, phase, batch, length, kernel, calls, kernel_s (sum of that kernel's durations),
step_kernels_s (sum over all kernels of the step), step_wall_s, device_name.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from collections import defaultdict

import torch

DEFAULT_POINTS = ("qwen3-30b-a3b:decode:1:512", "qwen3-30b-a3b:decode:32:512", "qwen3-30b-a3b:prefill:1:2048",
                  "qwen3-30b-a3b:prefill:16:512", "llama-3.1-8b:decode:1:512", "llama-3.1-8b:prefill:1:2048")


def kernel_durations(fn) -> dict:
    """{kernel name: (calls, seconds)} of one call of fn (memcpy/memset included, named)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    out = defaultdict(lambda: [0, 0.0])
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            us = getattr(e, "device_time", None)
            us = e.cuda_time if us is None else us
            out[e.name][0] += 1
            out[e.name][1] += us * 1e-6
    return dict(out)


def wall_s(fn, reps: int = 20) -> float:
    """Median of CUDA-event-timed calls after two warm-ups."""
    from llmperf_kernels.step_timing import event_time_s

    for _ in range(2):
        fn()
    times = [event_time_s(fn) for _ in range(reps)]
    return statistics.median(times)


def breakdown(model, phase: str, batch: int, length: int):
    """(kernel table, wall seconds) of one step; decode wall time from a CUDA graph replay."""
    from llmperf_kernels.reference_model import capture_decode

    if phase == "decode":
        tokens = torch.randint(0, model.V, (batch,), device="cuda")
        cache = model.new_cache(batch, length + 1, fill="random")
        step = lambda: model.decode(tokens, cache, length)  # noqa: E731
        table = kernel_durations(step)
        graph, _ = capture_decode(model, tokens, cache, length)
        return table, wall_s(graph.replay)
    tokens = torch.randint(0, model.V, (batch, length), device="cuda")
    cache = model.new_cache(batch, length, fill="empty")
    step = lambda: model.prefill(tokens, cache)  # noqa: E731
    step()
    return kernel_durations(step), wall_s(step, reps=5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--points", default=",".join(DEFAULT_POINTS), help="model:phase:batch:length,...")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("step_breakdown needs a CUDA GPU", file=sys.stderr)
        return 1
    from llmperf_kernels.reference_model import ReferenceDecoder
    from llmperf import load_model

    points = [p.split(":") for p in args.points.split(",") if p]
    device = torch.cuda.get_device_name()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "phase", "batch", "length", "kernel", "calls", "kernel_s", "step_kernels_s",
                     "step_wall_s", "device_name"])
        built = {}
        for name, phase, batch, length in points:
            if name not in built:
                built.clear()
                torch.cuda.empty_cache()
                built[name] = ReferenceDecoder(load_model(name), "cuda", torch.bfloat16, seed=0)
            table, wall = breakdown(built[name], phase, int(batch), int(length))
            total = sum(s for _, s in table.values())
            for kernel, (calls, seconds) in sorted(table.items(), key=lambda kv: -kv[1][1]):
                w.writerow([name, phase, batch, length, kernel[:300], calls, f"{seconds:.9g}", f"{total:.9g}",
                            f"{wall:.9g}", device])
            fh.flush()
            print(f"{name} {phase} B={batch} L={length}: wall {wall * 1e3:.3f} ms, kernels {total * 1e3:.3f} ms, "
                  f"{sum(c for c, _ in table.values())} launches", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
