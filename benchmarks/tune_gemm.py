"""Explicit bf16 GEMM configs side by side with cuBLAS (llmperf_kernels.gemm, forced ``config=``).

For each shape "MxNxK" and each config tuple of gemm.py (6-tuple pointer kernel, ("tma", persistent,
flatten), ("splitk", SPLIT, tma) or ("streamk", programs per SM, tma)), times ``gemm(x, w, out=y, config=cfg)`` and ``torch.matmul(x,
w.t())`` with ``harness.time_fn`` (CUDA-graph timing, as kernels_bench's T()), checks the output
against cuBLAS (relative error <= 1e-2) and writes ``tune_gemm.csv`` (one row per shape x config:
time_us, cuBLAS time_us, ratio = cuBLAS / ours, TFLOP/s; device metadata on every row). A config
that fails to compile or launch gets its error instead of a time. The default set isolates the
split-K epilogue (partial store + arrival + fix-up): split-K with SPLIT = 1 against the plain TMA
kernel of the same tile and launch grid; ``--preset streamk`` times the stream-K candidates against
run 6's winners on the wave-quantized M = 256 shapes (Qwen qkv / gate_up, Llama-8B gate_up / o).

    python benchmarks/tune_gemm.py --out out/
    python benchmarks/tune_gemm.py --out out/ --shapes 256x2048x8192 --configs "[(64, 64, 128, 8, 4, 3, 'splitk', 2, True)]"
    python benchmarks/tune_gemm.py --out out/ --preset streamk
    TRITON_INTERPRET=1 python benchmarks/tune_gemm.py --smoke --out /tmp/tg   # CPU plumbing check
"""

from __future__ import annotations

import argparse
import ast
import csv
import os

import torch

import llmperf_kernels as lk
from llmperf_kernels.harness import bench_device, time_forced

SHAPES = ["256x4096x4096", "256x2048x8192", "256x4608x3584"]
CONFIGS = [(128, 128, 64, 8, 4, 4, "tma", False, False), (128, 128, 64, 8, 4, 4, "splitk", 1, True),
           (128, 128, 64, 8, 4, 4, "splitk", 2, True), (128, 128, 64, 8, 8, 4, "splitk", 1, True),
           (128, 128, 64, 8, 8, 4, "splitk", 2, True), (64, 128, 64, 8, 4, 4, "tma", False, False),
           (64, 128, 64, 8, 4, 4, "splitk", 1, True), (64, 128, 64, 8, 4, 4, "splitk", 2, True)]
STREAMK_SHAPES = ["256x4608x3584", "256x37888x3584", "256x28672x4096", "256x4096x4096"]
STREAMK_CONFIGS = [(64, 128, 64, 8, 4, 4, "tma", False, False), (128, 256, 64, 8, 8, 3, "tma", False, False),
                   (128, 256, 64, 8, 8, 3, "tma", True, True), (64, 128, 64, 8, 4, 4, "splitk", 2, True),
                   (256, 128, 64, 1, 8, 3, "streamk", 1, True), (128, 256, 64, 1, 8, 3, "streamk", 1, True),
                   (128, 128, 64, 1, 4, 3, "streamk", 2, True), (128, 128, 64, 1, 8, 4, "streamk", 1, True)]
SMOKE_CONFIGS = [(16, 16, 32, 2, 4, 1), (16, 16, 32, 2, 4, 1, "splitk", 2, False),
                 (16, 16, 32, 1, 4, 1, "streamk", 1, False)]
COLS = ["m", "n", "k", "config", "time_us", "cublas_us", "ratio", "tflop_per_s", "rel_err", "timing", "error"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for tune_gemm.csv")
    ap.add_argument("--shapes", help="comma-separated MxNxK (default: the preset's)")
    ap.add_argument("--preset", choices=["epilogue", "streamk"], default="epilogue",
                    help="default shapes/configs: split-K epilogue probe, or stream-K vs run 6's winners")
    ap.add_argument("--configs", help="Python literal list of config tuples (default: the split-K epilogue probe)")
    ap.add_argument("--rep-ms", type=float, default=50.0)
    ap.add_argument("--smoke", action="store_true", help="tiny shape, CPU interpreter (plumbing check)")
    a = ap.parse_args(argv)
    dev = bench_device("tune_gemm", a.smoke)
    dtype = torch.float16 if dev == "cpu" else torch.bfloat16  # the interpreter's bf16 tl.dot is wrong
    sk = a.preset == "streamk"
    shapes = ["40x48x96"] if a.smoke else (a.shapes or ",".join(STREAMK_SHAPES if sk else SHAPES)).split(",")
    configs = ast.literal_eval(a.configs) if a.configs else (
        SMOKE_CONFIGS if a.smoke else STREAMK_CONFIGS if sk else CONFIGS)
    meta = lk.device_metadata()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "tune_gemm.csv")
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=COLS + sorted(meta))
        wr.writeheader()
        for shape in shapes:
            M, N, K = map(int, shape.split("x"))
            x = torch.randn(M, K, dtype=dtype, device=dev)
            w = torch.randn(N, K, dtype=dtype, device=dev) / K ** 0.5
            y = torch.empty(M, N, dtype=dtype, device=dev)
            t_ref = lk.time_fn(lambda: torch.matmul(x, w.t()), rep_ms=a.rep_ms)
            for cfg in configs:
                row = {"m": M, "n": N, "k": K, "config": str(cfg), "cublas_us": t_ref * 1e6, **meta,
                       **time_forced(lambda: lk.gemm(x, w, out=y, config=cfg), y,
                                            lambda: torch.matmul(x, w.t()), 2.0 * M * N * K, a.rep_ms)}
                if "time_us" in row:
                    row["ratio"] = row["cublas_us"] / row["time_us"]
                wr.writerow(row)
                print(f"[tune gemm] {shape:16s} {str(cfg):48s} " + (
                    f"{row['time_us']:8.1f} us  cuBLAS {row['cublas_us']:8.1f} us  ratio {row['ratio']:.3f}  "
                    f"err {row['rel_err']:.1e}" if "time_us" in row else row["error"]))
    print("wrote", path)


if __name__ == "__main__":
    main()
