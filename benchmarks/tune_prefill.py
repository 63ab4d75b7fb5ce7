"""Explicit prefill-attention configs side by side with torch SDPA (flash and cuDNN backends).

For each case "BxHq/HkvxSxD[c|f]" (c = causal, f = full) and each config tuple of
attention_prefill.py ((BLOCK_M, BLOCK_N, warps, stages) pointer loads, + "tma" K/V descriptors,
+ "ws" warp-specialized), times ``attention_prefill(q, k, v, causal, out=o, config=cfg)`` and SDPA
with ``harness.time_fn`` (CUDA-graph timing, as kernels_bench's T()), checks the output against
SDPA (relative error <= 1e-2 is what the bench accepts) and writes ``tune_prefill.csv`` (one row per
case x config: time_us, best SDPA time_us and backend, ratio = best SDPA / ours, TFLOP/s; device
metadata on every row). A config that fails to compile or launch gets its error instead of a time.

    python benchmarks/tune_prefill.py --out out/
    python benchmarks/tune_prefill.py --out out/ --cases 4x32/8x4096x128c --configs "[(128, 64, 4, 3, 'ws')]"
    TRITON_INTERPRET=1 python benchmarks/tune_prefill.py --smoke --out /tmp/tp   # CPU plumbing check
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import re

import torch
import torch.nn.functional as F

import llmperf_kernels as lk
from llmperf_kernels._formulas import attention_flops
from llmperf_kernels.harness import bench_device, time_forced

# The causal D128 cases of kernels_bench.bench_prefill (its target) plus its D64 / D256 / full ones.
CASES = ["8x32/8x2048x128c", "4x32/8x4096x128c", "2x32/8x8192x128c", "1x32/8x16384x128c",
         "4x32/8x4096x128f", "4x32/8x4096x64c", "2x16/16x4096x256c"]
CONFIGS = {64: [(128, 64, 4, 3, "tma"), (128, 128, 4, 2, "ws"), (128, 64, 4, 2, "ws")],
           128: [(128, 64, 8, 3, "tma"), (128, 128, 8, 3, "tma"), (128, 128, 4, 2, "ws"), (128, 64, 4, 2, "ws")],
           256: [(64, 64, 4, 2, "tma"), (128, 32, 4, 2, "ws")]}
COLS = ["case", "batch", "hq", "hkv", "seq", "head_dim", "causal", "config", "time_us", "sdpa_us", "sdpa_backend",
        "ratio", "tflop_per_s", "rel_err", "timing", "error"]


def parse_case(case: str):
    """'4x32/8x4096x128c' -> (B=4, Hq=32, Hkv=8, S=4096, D=128, causal=True)."""
    m = re.fullmatch(r"(\d+)x(\d+)/(\d+)x(\d+)x(\d+)([cf])", case)
    if not m:
        raise SystemExit(f"error: bad case {case!r}; expected BxHq/HkvxSxD followed by c (causal) or f (full)")
    B, Hq, Hkv, S, D = map(int, m.groups()[:5])
    return B, Hq, Hkv, S, D, m.group(6) == "c"


def sdpa_times(q, k, v, causal, rep_ms, dev):
    """{backend: seconds} of SDPA's flash and cuDNN backends (MHA K/V: SDPA gets expanded heads)."""
    if dev == "cpu":
        return {"math": lk.time_fn(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), rep_ms=rep_ms)}
    from torch.nn.attention import SDPBackend, sdpa_kernel
    out = {}
    for be in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION):
        try:
            with sdpa_kernel([be]):
                out[be.name.lower()] = lk.time_fn(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                                  rep_ms=rep_ms)
        except Exception as e:  # noqa: BLE001 - a backend the build lacks
            print(f"[tune prefill] SDPA {be.name} unavailable: {e!r}"[:160])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for tune_prefill.csv")
    ap.add_argument("--cases", help="comma-separated BxHq/HkvxSxD{c,f} (default: kernels_bench's prefill cases)")
    ap.add_argument("--configs", help="Python literal list of config tuples (default: per head_dim, CONFIGS)")
    ap.add_argument("--rep-ms", type=float, default=50.0)
    ap.add_argument("--smoke", action="store_true", help="tiny case, CPU interpreter (plumbing check)")
    a = ap.parse_args(argv)
    dev = bench_device("tune_prefill", a.smoke)
    dtype = torch.float16 if dev == "cpu" else torch.bfloat16  # the interpreter's bf16 tl.dot is wrong
    cases = ["1x4/2x40x32c"] if a.smoke else (a.cases or ",".join(CASES)).split(",")
    forced = ast.literal_eval(a.configs) if a.configs else None
    meta = lk.device_metadata()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "tune_prefill.csv")
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=COLS + sorted(meta))
        wr.writeheader()
        for case in cases:
            B, Hq, Hkv, S, D, causal = parse_case(case)
            q = torch.randn(B, Hq, S, D, dtype=dtype, device=dev)
            k = torch.randn(B, Hkv, S, D, dtype=dtype, device=dev)
            v = torch.randn(B, Hkv, S, D, dtype=dtype, device=dev)
            o = torch.empty_like(q)
            ke, ve = k.repeat_interleave(Hq // Hkv, 1), v.repeat_interleave(Hq // Hkv, 1)
            ref = F.scaled_dot_product_attention(q.float(), ke.float(), ve.float(), is_causal=causal) \
                if dev == "cpu" else F.scaled_dot_product_attention(q, ke, ve, is_causal=causal)
            sd = sdpa_times(q, ke, ve, causal, a.rep_ms, dev)
            best_be = min(sd, key=sd.get)
            flops = float(attention_flops(B, Hq, S, S, D, D, causal=causal))
            configs = forced or ([(16, 16, 4, 1, "ws"), (16, 16, 4, 1)] if a.smoke else CONFIGS[D])
            for cfg in configs:
                row = {"case": case, "batch": B, "hq": Hq, "hkv": Hkv, "seq": S, "head_dim": D, "causal": causal,
                       "config": str(cfg), "sdpa_us": sd[best_be] * 1e6, "sdpa_backend": best_be, **meta}
                row.update(time_forced(lambda: lk.attention_prefill(q, k, v, causal, out=o, config=cfg), o, ref,
                                       flops, a.rep_ms))
                if "time_us" in row:
                    row["ratio"] = row["sdpa_us"] / row["time_us"]
                wr.writerow(row)
                print(f"[tune prefill] {case:18s} {str(cfg):26s} " + (
                    f"{row['time_us']:8.1f} us {row['tflop_per_s']:5.0f} TFLOP/s  SDPA {best_be} {row['sdpa_us']:8.1f} us"
                    f"  ratio {row['ratio']:.3f}  err {row['rel_err']:.1e}" if "time_us" in row else row["error"]))
    print("wrote", path)


if __name__ == "__main__":
    main()
