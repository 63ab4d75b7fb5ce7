"""Targets of the kernel issue derived from a kernels_bench CSV (no GPU needed): the column list,
geomean/min helpers, the summary, and ``resummarize`` for a finished run's CSV."""

from __future__ import annotations

import csv
import math
import os

COLS = ["section", "name", "impl", "dtype", "m", "n", "k", "batch", "q_len", "kv_len", "time_s", "timing",
        "flops", "bytes", "tflop_per_s", "gb_per_s", "ratio", "rel_err", "config"]


def geomean(xs):
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def _min(xs):
    xs = list(xs)
    return min(xs) if xs else float("nan")


def _f(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def summarize(rows, errs=None, bw=None):
    """Targets of the issue, derived from the recorded rows alone (so a CSV can be re-summarized).

    Fractions of bandwidth use ``bw`` or else the fastest torch device copy among the rows, and
    the ``ratio`` of membound/decode rows is rewritten relative to that reference.
    """
    if bw is None:
        bw = max((_f(r["gb_per_s"]) * 1e9 for r in rows if r["impl"] == "torch" and "copy" in r["name"]
                  and _f(r["gb_per_s"]) > 0), default=float("nan"))
    for r in rows:
        if r["section"] in ("membound", "decode"):
            r["ratio"] = _f(r["gb_per_s"]) * 1e9 / bw
    out = []

    def target(name, value, goal, note=""):
        out.append({"target": name, "measured": value, "goal": goal, "met": bool(value >= goal), "note": note})

    def sel(section, impl, cond=lambda r: True):
        return [_f(r["ratio"]) for r in rows if r["section"] == section and r["impl"] == impl and cond(r)]

    target("copy bandwidth reference (TB/s, fastest torch device copy)", bw / 1e12, 0.0)
    if sel("membound", "triton"):
        target("copy kernel >= 64 MB, min fraction of copy BW", _min(sel("membound", "triton", lambda r: r["name"].startswith("copy"))), 0.85)
        target("add+RMSNorm >= 64 MB, min fraction of copy BW", _min(sel("membound", "triton", lambda r: r["name"].startswith("add"))), 0.85)
    if sel("gemm_bf16", "triton"):
        target("bf16 GEMM geomean torch/ours, M >= 256", geomean(sel("gemm_bf16", "triton", lambda r: _f(r["m"]) >= 256)), 0.95)
        target("bf16 GEMM geomean torch/ours, M <= 16", geomean(sel("gemm_bf16", "triton", lambda r: _f(r["m"]) <= 16)), 0.90)
    if sel("gemm_fp8", "triton_row"):
        target("fp8 GEMM geomean scaled_mm/ours, M >= 256", geomean(sel("gemm_fp8", "triton_row", lambda r: _f(r["m"]) >= 256)), 0.90)
        target("(info) fp8 GEMM geomean scaled_mm/ours, M = 16", geomean(sel("gemm_fp8", "triton_row", lambda r: _f(r["m"]) <= 16)), 0.0)
    wq = sel("gemm_wq", "triton_w4a16", lambda r: _f(r["m"]) <= 16)
    if wq:
        target("W4A16 speed-up vs bf16 cuBLAS, M <= 16, min", _min(wq), 2.5)
        target("W4A16 speed-up vs bf16 cuBLAS, M <= 16, geomean", geomean(wq), 2.5)
    for m in (64, 256, 4096):  # batched decode / prefill: information, no target in the issue
        wm = sel("gemm_wq", "triton_w4a16", lambda r, m=m: _f(r["m"]) == m)
        if wm:
            target(f"(info) W4A16 speed-up vs bf16 cuBLAS, M = {m}, geomean", geomean(wm), 0.0)
    pf = sel("prefill", "triton", lambda r: "_D128_causal" in r["name"])
    if pf:
        target("prefill causal D128 S>=2048 geomean best-SDPA/ours", geomean(pf), 1.0)
        target("prefill causal D128 S>=2048 min best-SDPA/ours", _min(pf), 1.0)
    if sel("decode", "triton"):
        big = sel("decode", "triton", lambda r: _f(r["batch"]) * _f(r["kv_len"]) >= 65536)
        target("decode B*L >= 64k tokens, min fraction of copy BW", _min(big), 0.85)
        b1 = sel("decode", "triton", lambda r: _f(r["batch"]) == 1 and _f(r["kv_len"]) >= 32768)
        target("decode batch 1 (L >= 32k), min fraction of copy BW (>= 1/1.1 = within 10% of floor)", _min(b1), 1 / 1.1)
    errs = errs if errs is not None else [(r["section"], _f(r["rel_err"]), 1e-2) for r in rows if r.get("rel_err") not in ("", None)]
    bad = [(sec, e) for sec, e, bound in errs if not e <= bound]
    out.append({"target": f"tuned kernels vs library/reference: {len(errs)} checked, rel err <= 1e-2",
                "measured": max((e for _, e, _ in errs), default=float("nan")), "goal": 1e-2,
                "met": not bad and bool(errs), "note": "; ".join(f"{sec} {e:.2e}" for sec, e in bad[:5])})
    return out


def write_summary(path, summary, meta):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["target", "measured", "goal", "met", "note"] + sorted(meta))
        w.writeheader()
        for s in summary:
            w.writerow({**s, **meta})
    for s in summary:
        print(f"{'MET ' if s['met'] else 'MISS'} {s['measured']:8.3f} (goal {s['goal']:.2f})  {s['target']}")


def resummarize(csv_path, out_dir):
    """Re-derive the summary (and bandwidth fractions) of a finished run from its CSV."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    meta = {k: rows[0][k] for k in rows[0] if k not in COLS}
    summary = summarize(rows)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "kernels_bench.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"=== summary re-derived from {csv_path} ({meta.get('device_name')}, {meta.get('date_utc')}) ===")
    write_summary(os.path.join(out_dir, "kernels_summary.csv"), summary, meta)
