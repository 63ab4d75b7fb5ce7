"""Diagnostic: run two bf16 GEMM configs once each (after a warm-up call) so a profiler can compare them.

    ncu --section LaunchStats --section Occupancy --section SpeedOfLight python benchmarks/probe_gemm_launch.py \
        --shape 4096x4096x4096 --configs "[(128,256,64,8,8,3,'tma',False,False),(128,256,64,8,8,3,'hybrid',1,True)]"

Prints each config's CUDA-event time of one call (no L2 flush; a diagnostic, not a benchmark).
"""

from __future__ import annotations

import argparse
import ast

import torch

import llmperf_kernels as lk


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="4096x4096x4096")
    ap.add_argument("--configs", required=True, help="Python literal list of gemm config tuples")
    a = ap.parse_args(argv)
    M, N, K = map(int, a.shape.split("x"))
    x = torch.randn(M, K, dtype=torch.bfloat16, device="cuda")
    w = torch.randn(N, K, dtype=torch.bfloat16, device="cuda") / K ** 0.5
    y = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    for cfg in ast.literal_eval(a.configs):
        lk.gemm(x, w, out=y, config=cfg)  # compile + warm
        torch.cuda.synchronize()
        t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0.record()
        lk.gemm(x, w, out=y, config=cfg)
        t1.record()
        torch.cuda.synchronize()
        print(f"{a.shape} {cfg}: {t0.elapsed_time(t1) * 1e3:.1f} us (one call, warm L2)")


if __name__ == "__main__":
    main()
