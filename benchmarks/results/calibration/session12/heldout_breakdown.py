"""Session 12: the README's held-out table rows plus the W4A16 breakdown, for one calibration file.

Usage (repo root): python benchmarks/results/calibration/session12/heldout_breakdown.py GPU FILE
Same 5-fold errors as `llmperf calibrate -g GPU --report FILE` (seed 0); torch_ops split into the
RMSNorm/RoPE and the MoE-routing rows, the Triton GEMMs split by dtype and the W4A16 rows by date.
"""
import sys

import numpy as np

from llmperf.calibration_fit import held_out_errors
from llmperf.calibration_table import load_calibration_csv
from llmperf.estimators import sweep


def stat(s):
    s = s.abs() * 100
    return f"{np.median(s):.1f}% / {np.percentile(s, 90):.1f}% (n={len(s)})" if len(s) else "-"


gpu, path = sys.argv[1], sys.argv[2]
hw = sweep.as_hardware(gpu)
e = held_out_errors(load_calibration_csv(path, hw.name), hw)
for (op, src), g in e.groupby(["op_kind", "kernel_source"]):
    if src == "torch_ops":
        norm = g["name"].isin(["torch_rmsnorm", "torch_rope"])
        print(f"{op:18} {src:17} rmsnorm/rope {stat(g[norm]['error'])}   routing {stat(g[~norm]['error'])}")
    else:
        print(f"{op:18} {src:17} {stat(g['error'])}")
tri = e[(e.op_kind == "gemm") & (e.kernel_source == "triton")]
for dt, g in tri.groupby("dtype"):
    print(f"  triton gemm {dt:6} {stat(g['error'])}")
w4 = tri[tri.dtype == "w4a16"]
for day, g in w4.groupby(w4["date"].str[:10]):
    print(f"  w4a16 rows of {day}: {stat(g['error'])}")
lm = w4["n"] >= 100000  # the lm_heads: `--mode w4` does not time them (the op builder keeps them 16-bit)
print(f"  w4a16 lm_head rows: {stat(w4[lm]['error'])}; other shapes: {stat(w4[~lm]['error'])}")
for day, g in w4[~lm].groupby(w4[~lm]["date"].str[:10]):
    print(f"  w4a16 rows of {day}, lm_heads left out: {stat(g['error'])}")
