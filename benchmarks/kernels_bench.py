"""Side-by-side speed of llmperf's bundled Triton kernels against the best library kernels.

One run measures, on one GPU: HBM copy bandwidth (torch device copy) and a large cuBLAS GEMM (the
two ceilings); bf16 GEMM vs torch.matmul (cuBLAS) over the layer shapes of Llama-3.1-8B,
Qwen2.5-7B and Llama-3.2-1B for M = 1..16384; fp8 GEMM vs torch._scaled_mm; W4A16/W8A16 at decode
M vs bf16 cuBLAS; prefill attention vs torch SDPA (flash and cuDNN backends, the faster counts);
decode attention (contiguous, paged, fp8 KV) vs the measured copy bandwidth; add+RMSNorm and the
copy kernel vs the copy bandwidth. FLOPs/bytes come from llmperf.ops.formulas. Every row carries
the device metadata. Prints a table per section and a summary of the targets last; writes
``kernels_bench.csv`` and ``kernels_summary.csv`` under --out.

    python benchmarks/kernels_bench.py --out out/            # on a GPU
    TRITON_INTERPRET=1 python benchmarks/kernels_bench.py --smoke --out /tmp/x   # plumbing check on CPU
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import torch

import llmperf_kernels as lk
from llmperf_kernels.attention_decode import random_decode_inputs
from llmperf_kernels._formulas import attention_flops, attention_io_bytes, gemm_bytes, gemm_flops
from llmperf_kernels._common import m_bucket, rel_err
from llmperf_kernels.attention_decode import attention_decode_bytes
from llmperf_kernels.attention_prefill import _tuner as prefill_tuner
from llmperf_kernels.gemm import _tuner as gemm_tuner
from llmperf_kernels.gemm_fp8 import quantize_fp8
from llmperf_kernels.membound import add_rmsnorm_bytes, copy_bytes
from kernels_summary import COLS, resummarize, summarize, write_summary  # benchmarks/

MODELS = {  # name: (hidden, q_dim, kv_dim, ffn, vocab)
    "llama3.1-8b": (4096, 4096, 1024, 14336, 128256),
    "qwen2.5-7b": (3584, 3584, 512, 18944, 152064),
    "llama3.2-1b": (2048, 2048, 512, 8192, 128256),
}
M_LIST = [1, 16, 256, 1024, 4096, 16384]


def layer_shapes(model):
    h, q, kv, ffn, vocab = MODELS[model]
    return {"qkv": (q + 2 * kv, h), "o": (h, q), "gate_up": (2 * ffn, h), "down": (h, ffn), "lm_head": (vocab, h)}


class Recorder:
    def __init__(self, out_dir, meta):
        os.makedirs(out_dir, exist_ok=True)
        self.meta = meta
        self.rows = []
        self.path = os.path.join(out_dir, "kernels_bench.csv")
        self.f = open(self.path, "w", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=COLS + sorted(meta))
        self.w.writeheader()

    def add(self, **kw):
        row = {c: kw.get(c, "") for c in COLS}
        t = kw["time_s"]
        row["timing"] = _METHOD.get(t, "")
        if kw.get("flops"):
            row["tflop_per_s"] = kw["flops"] / t / 1e12
        if kw.get("bytes"):
            row["gb_per_s"] = kw["bytes"] / t / 1e9
        row.update(self.meta)
        self.rows.append(row)
        self.w.writerow(row)
        self.f.flush()
        return row


ERRS = []  # (section, rel_err of the tuned kernel vs the library/reference result, bound)
_METHOD = {}  # time value -> "graph"/"eager" (how it was measured)


def T(fn, rep_ms):
    t = lk.time_fn(fn, rep_ms=rep_ms)
    _METHOD[t] = lk.harness.LAST_METHOD
    return t


# ----------------------------------------------------------------------------- sections
def bench_ceilings(rec, dev, smoke, rep):
    """The two ceilings. Copy bandwidth = the fastest torch device copy measured here (256 MB and
    1 GiB, eager and CUDA-graph timed): a large memcpy captured in a graph can run on the copy
    engine (2.77 TB/s on an H200, 2026-11-22) instead of SM copy kernels (4.2 TB/s)."""
    best = 0.0
    for mb in ([1] if smoke else [256, 1024]):
        n = mb * 2**20 // 2
        src = torch.randn(n, dtype=torch.bfloat16, device=dev)
        dst = torch.empty_like(src)
        for graph in (False, True):
            t = lk.time_fn(lambda: dst.copy_(src), rep_ms=rep, graph=graph)
            _METHOD[t] = lk.harness.LAST_METHOD
            rec.add(section="ceiling", name=f"torch_copy_{mb}MB", impl="torch", dtype="bf16", time_s=t,
                    bytes=copy_bytes(n, 2))
            best = max(best, copy_bytes(n, 2) / t)
        del src, dst
    s = 256 if smoke else 8192
    a = torch.randn(s, s, dtype=torch.bfloat16, device=dev)
    b = torch.randn(s, s, dtype=torch.bfloat16, device=dev)
    t = T(lambda: a @ b, rep)
    rec.add(section="ceiling", name=f"cublas_bf16_{s}^3", impl="torch", dtype="bf16", m=s, n=s, k=s, time_s=t,
            flops=float(gemm_flops(s, s, s)))
    print(f"[ceiling] copy {best / 1e12:.3f} TB/s (read+write), cuBLAS bf16 {gemm_flops(s, s, s) / t / 1e12:.0f} TFLOP/s")
    return best


def bench_membound(rec, dev, smoke, rep, bw):
    out = {}
    for mb in ([1] if smoke else [64, 256, 1024]):
        n = mb * 2**20 // 2
        src = torch.randn(n, dtype=torch.bfloat16, device=dev)
        dst = torch.empty_like(src)
        t = T(lambda: lk.copy(src, out=dst), rep)
        tt = T(lambda: dst.copy_(src), rep)
        rec.add(section="membound", name=f"copy_{mb}MB", impl="torch", dtype="bf16", time_s=tt,
                bytes=copy_bytes(n, 2), ratio=copy_bytes(n, 2) / tt / bw)
        r = rec.add(section="membound", name=f"copy_{mb}MB", impl="triton", dtype="bf16", time_s=t,
                    bytes=copy_bytes(n, 2), ratio=copy_bytes(n, 2) / t / bw)
        out[f"copy_{mb}MB"] = r["ratio"]
    for T_, H in ([(8, 256)] if smoke else [(8192, 4096), (16384, 4096), (4096, 14336)]):
        x = torch.randn(T_, H, dtype=torch.bfloat16, device=dev)
        res = torch.randn_like(x)
        wt = torch.randn(H, dtype=torch.bfloat16, device=dev)
        y, h = torch.empty_like(x), torch.empty_like(x)
        t = T(lambda: lk.add_rmsnorm(x, res, wt, out=y, residual_out=h), rep)
        nb = add_rmsnorm_bytes(T_, H, 2)
        r = rec.add(section="membound", name=f"add_rmsnorm_{T_}x{H}", impl="triton", dtype="bf16", m=T_, k=H,
                    time_s=t, bytes=nb, ratio=nb / t / bw)
        out[f"add_rmsnorm_{T_}x{H}"] = r["ratio"]
    for k, v in out.items():
        print(f"[membound] {k:28s} {v * 100:5.1f}% of copy bandwidth")
    return out


def bench_gemm(rec, dev, smoke, rep):
    ratios = {}
    models = ["llama3.2-1b"] if smoke else list(MODELS)
    mlist = [1, 16, 40] if smoke else M_LIST
    for model in models:
        for lname, (N, K) in layer_shapes(model).items():
            if smoke:
                N, K = 64, 128
            w = torch.randn(N, K, dtype=torch.bfloat16, device=dev) / K ** 0.5
            for M in mlist:
                x = torch.randn(M, K, dtype=torch.bfloat16, device=dev)
                y = torch.empty(M, N, dtype=torch.bfloat16, device=dev)
                lk.gemm(x, w, out=y)  # tune
                cfg = gemm_tuner.cache.get((m_bucket(M), N, K, x.dtype))
                t_ours = T(lambda: lk.gemm(x, w, out=y, config=cfg), rep)
                t_ref = T(lambda: torch.matmul(x, w.t()), rep)
                err = rel_err(y, torch.matmul(x, w.t()))
                ERRS.append(("gemm_bf16", err, 1e-2))
                fl, by = float(gemm_flops(M, N, K)), float(gemm_bytes(M, N, K, 2, 2, 2))
                name = f"{model}.{lname}"
                rec.add(section="gemm_bf16", name=name, impl="torch", dtype="bf16", m=M, n=N, k=K, time_s=t_ref, flops=fl, bytes=by)
                r = rec.add(section="gemm_bf16", name=name, impl="triton", dtype="bf16", m=M, n=N, k=K, time_s=t_ours,
                            flops=fl, bytes=by, ratio=t_ref / t_ours, config=str(cfg), rel_err=err)
                ratios[(name, M)] = r["ratio"]
                print(f"[gemm bf16] {name:22s} M={M:<6d} N={N:<7d} K={K:<6d} ours {t_ours * 1e6:9.1f} us "
                      f"cuBLAS {t_ref * 1e6:9.1f} us ratio {r['ratio']:.3f} {cfg}")
            del w
    return ratios


def bench_fp8(rec, dev, smoke, rep):
    ratios, ratios_small = {}, {}
    shapes = {"llama3.1-8b." + k: v for k, v in layer_shapes("llama3.1-8b").items()}
    shapes.update({"qwen2.5-7b." + k: v for k, v in layer_shapes("qwen2.5-7b").items() if k != "lm_head"})
    mlist = [16, 64] if smoke else [16, 256, 1024, 4096, 16384]
    for name, (N, K) in shapes.items():
        if smoke:
            N, K = 128, 256
        wq, sw = quantize_fp8(torch.randn(N, K, device=dev), "row")
        for M in mlist:
            xq, sx = quantize_fp8(torch.randn(M, K, device=dev), "row")
            y = torch.empty(M, N, dtype=torch.bfloat16, device=dev)
            lk.gemm_fp8(xq, wq, sx, sw, "row", out=y)
            t_ours = T(lambda: lk.gemm_fp8(xq, wq, sx, sw, "row", out=y), rep)
            sa, sb = sx.view(M, 1), sw.view(1, N)
            t_refs = {}
            for fast in (False, True):
                try:
                    t_refs[fast] = T(lambda: torch._scaled_mm(xq, wq.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16,
                                                              use_fast_accum=fast), rep)
                except Exception as e:  # noqa: BLE001 - e.g. no fp8 on this device
                    print(f"[fp8] torch._scaled_mm failed: {e!r}"[:200])
            t_ref = min(t_refs.values()) if t_refs else float("nan")
            err = rel_err(y, lk.gemm_fp8_ref(xq, wq, sx, sw, "row"))
            ERRS.append(("gemm_fp8", err, 1e-2))
            fl, by = float(gemm_flops(M, N, K)), float(gemm_bytes(M, N, K, 1, 1, 2))
            for fast, tr in t_refs.items():
                rec.add(section="gemm_fp8", name=name, impl=f"torch_scaled_mm_fastacc{int(fast)}", dtype="fp8e4m3", m=M, n=N,
                        k=K, time_s=tr, flops=fl, bytes=by)
            r = rec.add(section="gemm_fp8", name=name, impl="triton_row", dtype="fp8e4m3", m=M, n=N, k=K, time_s=t_ours,
                        flops=fl, bytes=by, ratio=t_ref / t_ours, rel_err=err)
            (ratios if M >= 256 else ratios_small)[(name, M)] = r["ratio"]
            print(f"[gemm fp8] {name:22s} M={M:<6d} ours {t_ours * 1e6:9.1f} us scaled_mm {t_ref * 1e6:9.1f} us "
                  f"ratio {r['ratio']:.3f} ({fl / t_ours / 1e12:.0f} TFLOP/s)")
    return ratios, ratios_small


def bench_weight_only(rec, dev, smoke, rep):
    ratios = {}
    shapes = [(128, 256)] if smoke else [(14336, 4096), (4096, 14336), (28672, 4096), (18944, 3584)]
    for N, K in shapes:
        w = torch.randn(N, K, dtype=torch.bfloat16, device=dev)
        q4, s4 = lk.quantize_w4(w)
        q8, s8 = lk.quantize_w8(w)
        # M <= 16: the decode targets (W4A16 and W8A16); 64 / 256 / 4096: W4A16 only, as information
        # (batched decode and prefill: the DQ = 2 token-block kernel and dequantize-then-GEMM)
        for M in [1, 16] if smoke else [1, 16, 64, 256, 4096]:
            x = torch.randn(M, K, dtype=torch.bfloat16, device=dev)
            t_ref = T(lambda: torch.matmul(x, w.t()), rep)
            lk.gemm_w4a16(x, q4, s4)
            t4 = T(lambda: lk.gemm_w4a16(x, q4, s4), rep)
            err4 = rel_err(lk.gemm_w4a16(x, q4, s4), lk.gemm_w4a16_ref(x, q4, s4))
            ERRS.append(("gemm_w4a16", err4, 1e-2))
            name = f"{N}x{K}"
            rec.add(section="gemm_wq", name=name, impl="torch_bf16", dtype="bf16", m=M, n=N, k=K, time_s=t_ref,
                    flops=float(gemm_flops(M, N, K)), bytes=float(gemm_bytes(M, N, K, 2, 2, 2)))
            r4 = rec.add(section="gemm_wq", name=name, impl="triton_w4a16", dtype="int4g128", m=M, n=N, k=K, time_s=t4,
                         flops=float(gemm_flops(M, N, K)), bytes=float(gemm_bytes(M, N, K, 2, 4.125 / 8, 2)), ratio=t_ref / t4,
                         rel_err=err4, config=str(lk.gemm_w4a16_config(M, N, K, x.dtype)))
            w8 = ""
            if M <= 16:
                lk.gemm_w8a16(x, q8, s8)
                t8 = T(lambda: lk.gemm_w8a16(x, q8, s8), rep)
                r8 = rec.add(section="gemm_wq", name=name, impl="triton_w8a16", dtype="int8", m=M, n=N, k=K, time_s=t8,
                             flops=float(gemm_flops(M, N, K)), bytes=float(gemm_bytes(M, N, K, 2, 1 + 2 / K, 2)), ratio=t_ref / t8)
                w8 = f"  W8A16 {t8 * 1e6:7.1f} us ({r8['ratio']:.2f}x)"
            ratios[(name, M)] = r4["ratio"]
            print(f"[weight-only] {name:12s} M={M:<4d} bf16 cuBLAS {t_ref * 1e6:7.1f} us  W4A16 {t4 * 1e6:7.1f} us "
                  f"({r4['ratio']:.2f}x, {r4['gb_per_s']:.0f} GB/s){w8}")
    return ratios


def bench_prefill(rec, dev, smoke, rep):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import torch.nn.functional as F
    ratios = {}
    cases = [(1, 4, 2, 64, 64, True)] if smoke else [
        (8, 32, 8, 2048, 128, True), (4, 32, 8, 4096, 128, True), (2, 32, 8, 8192, 128, True),
        (1, 32, 8, 16384, 128, True), (4, 32, 8, 4096, 128, False), (4, 32, 8, 4096, 64, True),
        (2, 16, 16, 4096, 256, True)]
    for B, Hq, Hkv, S, D, causal in cases:
        q = torch.randn(B, Hq, S, D, dtype=torch.bfloat16, device=dev)
        k = torch.randn(B, Hkv, S, D, dtype=torch.bfloat16, device=dev)
        v = torch.randn(B, Hkv, S, D, dtype=torch.bfloat16, device=dev)
        o = torch.empty_like(q)
        lk.attention_prefill(q, k, v, causal, out=o)
        t_ours = T(lambda: lk.attention_prefill(q, k, v, causal, out=o), rep)
        ke, ve = k.repeat_interleave(Hq // Hkv, 1), v.repeat_interleave(Hq // Hkv, 1)  # SDPA gets MHA K/V
        t_sdpa = {}
        for be in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION):
            try:
                with sdpa_kernel([be]):
                    t_sdpa[be.name] = T(lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=causal), rep)
            except Exception as e:  # noqa: BLE001
                print(f"[prefill] SDPA {be.name} unavailable: {e!r}"[:160])
        fl = float(attention_flops(B, Hq, S, S, D, D, causal=causal))
        by = float(attention_io_bytes(B, Hq, Hkv, S, S, D, D, 2, 2))
        name = f"B{B}_H{Hq}/{Hkv}_S{S}_D{D}_{'causal' if causal else 'full'}"
        for be, t in t_sdpa.items():
            rec.add(section="prefill", name=name, impl=f"sdpa_{be.lower()}", dtype="bf16", batch=B, q_len=S, kv_len=S,
                    time_s=t, flops=fl, bytes=by)
        best = min(t_sdpa.values()) if t_sdpa else float("nan")
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            err = rel_err(o, F.scaled_dot_product_attention(q, ke, ve, is_causal=causal))
        ERRS.append(("prefill", err, 1e-2))
        cfg = [v for kk, v in prefill_tuner.cache.items() if kk[0] == D and kk[1] == causal]
        r = rec.add(section="prefill", name=name, impl="triton", dtype="bf16", batch=B, q_len=S, kv_len=S, time_s=t_ours,
                    flops=fl, bytes=by, ratio=best / t_ours, config=str(cfg[-1] if cfg else ""), rel_err=err)
        ratios[name] = r["ratio"]
        sd = " ".join(f"{kk} {fl / vv / 1e12:.0f}" for kk, vv in t_sdpa.items())
        print(f"[prefill] {name:34s} ours {fl / t_ours / 1e12:5.0f} TFLOP/s | SDPA {sd} | ratio {r['ratio']:.3f}")
    return ratios


def bench_decode(rec, dev, smoke, rep, bw):
    res = {}
    Hq, Hkv, D = 32, 8, 128
    cases = [(2, 64, None, "bf16"), (2, 64, 16, "bf16")] if smoke else [
        (1, 32768, None, "bf16"), (1, 131072, None, "bf16"), (1, 131072, 16, "bf16"), (1, 4096, None, "bf16"),
        (16, 4096, None, "bf16"), (32, 4096, None, "bf16"), (64, 4096, 16, "bf16"), (32, 8192, None, "bf16"),
        (32, 8192, 16, "bf16"), (32, 8192, 32, "bf16"), (32, 8192, 64, "bf16"), (32, 8192, None, "fp8"),
        (32, 8192, 16, "fp8"), (128, 2048, 16, "bf16")]
    for B, L, page, kvd in cases:
        kdt = torch.float8_e4m3fn if kvd == "fp8" else torch.bfloat16
        q, k, v, lens, bt = random_decode_inputs(B, L, Hq, Hkv, D, page, kdt, torch.bfloat16, dev)
        o = torch.empty_like(q)
        lk.attention_decode(q, k, v, lens, bt, out=o, max_kv_len=L)
        t = T(lambda: lk.attention_decode(q, k, v, lens, bt, out=o, max_kv_len=L), rep)
        by = attention_decode_bytes(B, Hq, Hkv, 1, L, D, 2, k.element_size(), page_size=page)
        err = rel_err(o, lk.attention_decode_ref(q, k, v, lens, bt))
        ERRS.append(("decode", err, 1e-2))
        name = f"B{B}_L{L}_{'paged' + str(page) if page else 'contig'}_{kvd}"
        r = rec.add(section="decode", name=name, impl="triton", dtype=kvd, batch=B, q_len=1, kv_len=L, time_s=t,
                    bytes=by, flops=float(attention_flops(B, Hq, 1, L, D, D)), ratio=by / t / bw, rel_err=err)
        res[(B, L, page, kvd)] = r["ratio"]
        print(f"[decode] {name:28s} {t * 1e6:8.1f} us {by / t / 1e9:7.0f} GB/s = {r['ratio'] * 100:5.1f}% of copy BW "
              f"(floor {by / bw * 1e6:.1f} us)")
        del k, v
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for kernels_bench.csv and kernels_summary.csv")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes (plumbing check, runs on CPU)")
    ap.add_argument("--only", default="ceiling,membound,gemm,fp8,wq,prefill,decode")
    ap.add_argument("--rep-ms", type=float, default=50.0)
    ap.add_argument("--resummarize", metavar="CSV", help="re-derive summary/bandwidth fractions of a finished run's CSV")
    a = ap.parse_args(argv)
    if a.resummarize:
        return resummarize(a.resummarize, a.out)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu" and not a.smoke:
        sys.exit("kernels_bench: no CUDA device; use --smoke for a CPU plumbing check.")
    meta = lk.device_metadata()
    print("device:", {k: meta[k] for k in ("device_name", "driver_version", "torch_version", "triton_version", "date_utc")})
    rec = Recorder(a.out, meta)
    torch.manual_seed(0)
    only = set(a.only.split(","))
    t0 = time.time()
    bw = bench_ceilings(rec, dev, a.smoke, a.rep_ms)
    if "membound" in only:
        bench_membound(rec, dev, a.smoke, a.rep_ms, bw)
    if "gemm" in only:
        bench_gemm(rec, dev, a.smoke, a.rep_ms)
    if "fp8" in only:
        bench_fp8(rec, dev, a.smoke, a.rep_ms)
    if "wq" in only:
        bench_weight_only(rec, dev, a.smoke, a.rep_ms)
    if "prefill" in only:
        bench_prefill(rec, dev, a.smoke, a.rep_ms)
    if "decode" in only:
        bench_decode(rec, dev, a.smoke, a.rep_ms, bw)
    summary = summarize(rec.rows, ERRS)
    rec.f.close()
    with open(os.path.join(a.out, "kernels_tuning.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tuner", "key", "config", "time_s", "error", "chosen"])
        for tu in lk.harness.Tuner.registry:
            for key, rows in tu.log.items():
                for cfg, t, err in rows:
                    w.writerow([tu.name, str(key), str(cfg), "" if t is None else t, err, cfg == tu.cache.get(key)])
    spath = os.path.join(a.out, "kernels_summary.csv")
    print(f"\n=== summary ({meta['device_name']}, {meta['date_utc']}, {time.time() - t0:.0f} s) ===")
    write_summary(spath, summary, meta)
    print("wrote", rec.path, spath)


if __name__ == "__main__":
    main()
