"""Held-out |error| per family for fold seeds 0..9, before and after the session-13 H200 merge: the spread
that the fold assignment alone gives (held_out_errors draws a fold per row position, so removing 30
rows and appending 84 reassigns every later row's fold).

Usage (repo root): PYTHONPATH=. python benchmarks/results/calibration/session13/h200_merge/seeds.py BEFORE.csv
(BEFORE.csv: `git show c4826d5:hardware/calibration/h200-sxm-141gb.csv > BEFORE.csv`)
"""
import sys

import numpy as np
import pandas as pd

from llmperf.calibration_fit import held_out_errors
from llmperf.calibration_table import load_calibration_csv
from llmperf.estimators import sweep

hw = sweep.as_hardware("h200-sxm")
res = {}
for tag, p in [("before", sys.argv[1]), ("after", "hardware/calibration/h200-sxm-141gb.csv")]:
    f = load_calibration_csv(p, hw.name)
    for seed in range(10):
        e = held_out_errors(f, hw, seed=seed)
        e["fam"] = e["op_kind"] + " " + e["kernel_source"]
        tri = (e.op_kind == "gemm") & (e.kernel_source == "triton")
        e.loc[tri, "fam"] = "gemm triton " + e.loc[tri, "dtype"]
        for fam, x in pd.concat([e, e[tri].assign(fam="gemm triton (all)")]).groupby("fam"):
            s = x["error"].abs() * 100
            res.setdefault((fam, tag), []).append((np.median(s), np.percentile(s, 90)))
fams = sorted({k[0] for k in res})
print(f"{'family':32} {'before: median / p90 (seed 0; min-max of seeds 0-9)':>58}   after")
for fam in fams:
    out = []
    for tag in ("before", "after"):
        a = np.array(res[(fam, tag)])
        out.append(f"{a[0,0]:.1f}/{a[0,1]:.1f} (med {a[:,0].min():.1f}-{a[:,0].max():.1f}, "
                   f"p90 {a[:,1].min():.1f}-{a[:,1].max():.1f})")
    print(f"{fam:32} {out[0]:>44}   {out[1]}")
