"""Replace one kind of rows in a calibration CSV with a newer partial sweep of the same GPU.

A partial sweep (``python -m llmperf_kernels.calibrate --mode w4|routing|torch_ops|floors``) times
one family of kernels; this drops every row of BASE whose (kernel_source, op_kind, name, dtype, n, k)
occurs in NEW -- so a sweep cut short (its ``.partial`` checkpoint) replaces only the shapes it
reached --, appends NEW's rows (each keeps its own date, driver, torch and triton versions),
checks that both files are of one hardware id, that the result loads as a calibration, and
writes it (to --out, default BASE) only then.

    python benchmarks/merge_calibration.py hardware/calibration/h100-sxm5-80gb.csv out/w4_h100.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

KEY = ["kernel_source", "op_kind", "name", "dtype", "n", "k"]


def merge(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """BASE without the row kinds NEW holds, then NEW (columns in BASE's order)."""
    for col in KEY + ["hardware"]:
        if col not in base.columns or col not in new.columns:
            raise ValueError(f"column {col!r} missing: both files must be llmperf calibration CSVs")
    hw = set(base["hardware"]) | set(new["hardware"])
    if len(hw) != 1:
        raise ValueError(f"the files are of different hardware ids: {sorted(hw)}")
    if new.empty:
        raise ValueError("the new file has no rows")
    kinds = set(map(tuple, new[KEY].astype(str).values))
    keep = ~base[KEY].astype(str).apply(tuple, axis=1).isin(kinds)
    return pd.concat([base[keep], new.reindex(columns=base.columns)], ignore_index=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--out", type=Path, help="default: overwrite BASE")
    a = ap.parse_args(argv)
    from llmperf.calibration_io import write_calibration_csv
    from llmperf.calibration_table import load_calibration_csv
    from llmperf.errors import SpecError

    out = a.out or a.base
    try:
        load_calibration_csv(a.base), load_calibration_csv(a.new)  # both readable calibration files
        base, new = pd.read_csv(a.base), pd.read_csv(a.new)  # as written: other rows are kept unchanged
        merged = merge(base, new)
        write_calibration_csv(merged, out)
    except (OSError, ValueError, KeyError, SpecError) as exc:
        print(f"merge_calibration: {exc}", file=sys.stderr)
        return 2
    dropped = len(base) + len(new) - len(merged)
    print(f"{out}: {len(merged)} rows ({dropped} replaced by {len(new)} from {a.new})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
