"""Variant comparison for the W4A16 GEMM (kernels/gemm_w4a16.py) at decode M against bf16 cuBLAS.

For each weight shape N x K in {14336x4096, 4096x14336, 28672x4096, 18944x3584} and M in {1, 4, 16}
it times torch.matmul(x, W^T) (bf16 cuBLAS) and every candidate configuration of every W4A16 path
("gemv7" the v7 tiled-slab stream-K GEMV, "gemv6" the v6 half2 GEMV, "gemv5" the v5 CUDA-core GEMV, "gemv" the v4 one, "mmat" tensor cores with x as the A operand, "mma2" the v3 kernel) explicitly -- each
is passed as ``config=`` so the autotuner is bypassed -- with ``harness.time_fn(graph=True)``
(CUDA-graph replays, L2 flushed before every call), the way benchmarks/kernels_bench.py's T() does.
The weight is always given in the documented public layout (uint8 [N, K/2], low nibble = even k,
group-128 scales); gemv7 repacks it into its tiled layout once per weight (cached by gemm_w4a16,
outside the timed calls), every other path reads it as is. Prints one table per (shape, M) and writes ``tune_w4a16.csv``
(one row per timing, time in seconds, speed-up = cuBLAS time / ours, GB/s of int4 + scale bytes,
fraction of --hbm-tbps) with the device metadata on every row.

    python benchmarks/tune_w4a16.py --out out/                            # H200: < 90 s (v4 lists)
    python benchmarks/tune_w4a16.py --out out/ --m 1,4                    # the GEMV regime only
    python benchmarks/tune_w4a16.py --out out/ --m 1 --paths gemv5,gemv7  # v7 against v5 only
    TRITON_INTERPRET=1 python benchmarks/tune_w4a16.py --smoke --out /tmp/tw   # CPU plumbing check
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib
import os
import time

import torch

import llmperf_kernels as lk
from llmperf_kernels._common import rel_err

# the module itself (the package exports its function under the same name)
w4mod = importlib.import_module("llmperf_kernels.gemm_w4a16")

SHAPES = [(14336, 4096), (4096, 14336), (28672, 4096), (18944, 3584)]
M_LIST = [1, 4, 16]
# M = 1 timing controls (wrong results: their err is nan, so never "best"): the first 128-row and
# 256-row v7b configs with FIX = 2, shared tiles left unfinished -- time(FIX 1) - time(FIX 2) is
# what the slab-end fix-up costs (kernels/NOTES.md "v7b").
DIAG7 = [c[:11] + (2,) for c in (w4mod._W4_GEMV7_M1[0], next(c for c in w4mod._W4_GEMV7 if c[1] == 256 and c[8] == 1))]


def candidates(M: int, smoke: bool, aligned_only: bool = False):
    """(path, config) pairs timed for M tokens: the autotuner's list plus the other paths' best guesses;
    ``aligned_only`` (M = 1): the tuner's gemv7 leaders, the FIX = 2 controls, every tile-aligned
    (SPLIT) and every v7d (FIX = 3) gemv7 config: a short A/B of session 6's grids and fix-up."""
    if aligned_only and not smoke:
        lead = [c for c in w4mod.w4_candidates(1) if c[6] == "gemv7"]
        new = [c for c in w4mod._W4_GEMV7 if (len(c) > 12 or c[11] == 3) and c not in lead]
        return [("gemv7", c) for c in lead + DIAG7 + new]
    if smoke:
        return [("gemv7", c) for c in w4mod._INTERP4_GEMV7] + [("gemv6", c) for c in w4mod._INTERP4_GEMV6] + [("gemv5", c) for c in w4mod._INTERP4_GEMV5] + [("gemv", c) for c in w4mod._INTERP4_GEMV] + \
            [("mmat", c) for c in w4mod._INTERP4_MMAT] + [("mmah", c) for c in w4mod._INTERP4_MMAH] + \
            [("mma2", c) for c in w4mod._INTERP4]
    cands = list(w4mod.w4_candidates(M))
    if M == 1:  # v6 (half2 asm GEMV) lost to v5 on the H200 and is not in the tuner list: time it here;
        cands += w4mod._W4_GEMV6 + w4mod._W4_GEMV7 + DIAG7  # every v7 config (the tuner takes four)
    out, seen = [], set()
    for c in cands:
        if c not in seen:
            seen.add(c)
            out.append((c[6] if len(c) > 6 else "mma2", c))
    return out


def w4_bytes(M, N, K, act_bytes=2):
    """Bytes an ideal kernel moves: int4 weights + bf16 group scales + x + y."""
    return N * K // 2 + N * (K // w4mod.GROUP) * 2 + M * K * act_bytes + M * N * act_bytes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for tune_w4a16.csv")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, runs on CPU under TRITON_INTERPRET=1")
    ap.add_argument("--rep-ms", type=float, default=8.0, help="time_fn rep_ms per measurement")
    ap.add_argument("--hbm-tbps", type=float, default=4.207, help="copy bandwidth for the fraction column (H200, NOTES.md)")
    ap.add_argument("--m", default=None, help="comma list of M (default 1,4,16)")
    ap.add_argument("--paths", default=None, help="comma list of paths to time (default: all), e.g. gemv5,gemv7")
    ap.add_argument("--configs", default=None,
                    help="Python literal list of config tuples to time instead of the candidates, e.g. \"[(16, 64, 128, 4, 6, 3, 'mmah')]\"")
    ap.add_argument("--aligned", action="store_true",
                    help="M = 1 gemv7 only: the tuner's leaders, FIX = 2 controls, tile-aligned and v7d configs")
    a = ap.parse_args(argv)
    dev = lk.harness.bench_device("tune_w4a16", a.smoke)
    meta = lk.device_metadata()
    print("device:", {k: meta[k] for k in ("device_name", "driver_version", "torch_version", "triton_version", "date_utc")})
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "tune_w4a16.csv")
    cols = ["shape", "m", "n", "k", "impl", "path", "config", "time_s", "speedup_vs_cublas", "gb_per_s",
            "hbm_fraction", "rel_err", "layout", "timing", "error"]
    f = open(path, "w", newline="")
    w = csv.DictWriter(f, fieldnames=cols + sorted(meta))
    w.writeheader()
    shapes = [(40, 384)] if a.smoke else SHAPES
    mlist = [int(m) for m in a.m.split(",")] if a.m else ([1, 3, 16] if a.smoke else M_LIST)
    dtype = torch.float16 if a.smoke else torch.bfloat16  # interpreter: tl.dot on bf16 is wrong
    torch.manual_seed(0)
    t0 = time.time()
    best_rows = []
    for N, K in shapes:
        wt = torch.randn(N, K, dtype=dtype, device=dev)
        q, s = lk.quantize_w4(wt)
        for M in mlist:
            x = torch.randn(M, K, dtype=dtype, device=dev)
            y = torch.empty(M, N, dtype=dtype, device=dev)
            ref = lk.gemm_w4a16_ref(x, q, s)
            t_ref = lk.time_fn(lambda: torch.matmul(x, wt.t()), rep_ms=a.rep_ms, graph=True)
            nb = w4_bytes(M, N, K)
            base = dict(shape=f"{N}x{K}", m=M, n=N, k=K, layout="public uint8 [N,K/2] (no prepack)", **meta)
            w.writerow(dict(base, impl="torch_bf16", path="cublas", config="", time_s=t_ref, speedup_vs_cublas=1.0,
                            timing=lk.harness.LAST_METHOD))
            res = []
            forced = [(c[6] if len(c) > 6 else "mma2", c) for c in ast.literal_eval(a.configs)] if a.configs else None
            for pth, cfg in forced or candidates(M, a.smoke, a.aligned):
                if a.paths and pth not in a.paths.split(","):
                    continue
                row = dict(base, impl="triton_w4a16", path=pth, config=str(cfg))
                if pth == "gemv7":
                    row["layout"] = "v7 tiled int32 [N/R, K/128, R, 16] (repacked once, cached; not timed)"
                elif pth == "mmah":
                    row["layout"] = "v8 split-halves uint8 [N/R, K/128, R, 64] (repacked once, cached; not timed)"
                try:
                    y.fill_(float("nan"))  # an output row the config does not write shows as err nan
                    lk.gemm_w4a16(x, q, s, out=y, config=cfg)
                    err = rel_err(y, ref)
                    t = lk.time_fn(lambda: lk.gemm_w4a16(x, q, s, out=y, config=cfg), rep_ms=a.rep_ms, graph=True)
                    row.update(time_s=t, speedup_vs_cublas=t_ref / t, gb_per_s=nb / t / 1e9,
                               hbm_fraction=nb / t / (a.hbm_tbps * 1e12), rel_err=err, timing=lk.harness.LAST_METHOD)
                    res.append((t, pth, cfg, err))
                except Exception as e:  # noqa: BLE001 - e.g. out of resources: record and go on
                    row.update(error=repr(e)[:200])
                w.writerow(row)
                f.flush()
            res.sort(key=lambda r: r[0])
            print(f"\n== {N}x{K} M={M}: cuBLAS bf16 {t_ref * 1e6:.1f} us; floor {nb / (a.hbm_tbps * 1e12) * 1e6:.1f} us")
            for t, pth, cfg, err in res:
                print(f"  {pth:5s} {str(cfg):38s} {t * 1e6:8.1f} us  {t_ref / t:5.2f}x  {nb / t / 1e9:6.0f} GB/s"
                      f"  err {err:.1e}")
            ok = [r for r in res if r[3] <= 1e-2]  # the best counts only among correct results
            if ok:
                best_rows.append((f"{N}x{K}", M, t_ref, *ok[0]))
            for pth in ("gemv5", "gemv7"):
                bp = [r for r in ok if r[1] == pth]
                if bp:
                    print(f"  best {pth}: {bp[0][0] * 1e6:.1f} us = {t_ref / bp[0][0]:.2f}x cuBLAS  {bp[0][2]}")
    f.close()
    print(f"\n=== best per case ({meta['device_name']}, {time.time() - t0:.0f} s) ===")
    print(f"{'shape':12s} {'M':>3s} {'cuBLAS us':>10s} {'best us':>8s} {'speedup':>8s}  path config")
    for shape, M, t_ref, t, pth, cfg, err in best_rows:
        print(f"{shape:12s} {M:3d} {t_ref * 1e6:10.1f} {t * 1e6:8.1f} {t_ref / t:7.2f}x  {pth} {cfg}")
    print("wrote", path, "| best configs chosen among results within rel_err 1e-2 (see the err column)")


if __name__ == "__main__":
    main()
