"""Drop a calibration's rows of one kernel measured before a date above a token count (rows of a
kernel path the package no longer runs there), so the estimator's documented fallback applies.

Session 11: before it, gemm_w4a16 served M > 16 with the v3 kernel only; since, the DQ = 2 token-block
kernel and dequantize-then-GEMM serve it, 2.6-9.1x faster at M = 32-64 on the H100. The old rows of
that range describe code that no longer runs; without them a W4A16 GEMM beyond its rows takes the
bf16 efficiency of its shape (llmperf/calibration_fit.py, ``WEIGHT_ONLY``). Checked on the H100
file, whose Llama-3.1-8B W4A16 rows were re-measured: with its rows above M = 16 removed, the int4
decode step of Llama-3.1-8B (fused engine) at batch 32 / 64 / 256 comes out 11% / 13% / 9% faster
than from the measured rows (6.02 vs 6.80, 9.26 vs 10.70, 32.79 vs 35.84 ms); from the old rows it
was 2.6x / 2.0x slower at batch 32 / 64 (README, session 11).

    python benchmarks/prune_calibration.py hardware/calibration/h200-sxm-141gb.csv \
        --name gemm_w4a16 --above-m 16 --before 2026-12-01
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def prune(frame: pd.DataFrame, name: str, above_m: float, before: str) -> pd.DataFrame:
    """``frame`` without the rows of kernel ``name`` with m > ``above_m`` dated before ``before`` (ISO)."""
    old = frame["date"].astype(str) < before
    drop = (frame["name"] == name) & (pd.to_numeric(frame["m"], errors="coerce") > above_m) & old
    return frame[~drop]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--name", required=True, help="kernel name column, e.g. gemm_w4a16")
    ap.add_argument("--above-m", type=float, required=True, help="drop rows with m above this")
    ap.add_argument("--before", required=True, help="drop rows dated before this ISO date, e.g. 2026-12-01")
    a = ap.parse_args(argv)
    from llmperf.calibration_io import write_calibration_csv
    from llmperf.calibration_table import load_calibration_csv
    from llmperf.errors import SpecError

    try:
        load_calibration_csv(a.file)
        frame = pd.read_csv(a.file)
        kept = prune(frame, a.name, a.above_m, a.before)
        if len(kept) == len(frame):
            raise ValueError(f"no {a.name} rows with m > {a.above_m:g} dated before {a.before} in {a.file}")
        write_calibration_csv(kept, a.file)
    except (OSError, ValueError, KeyError, SpecError) as exc:
        print(f"prune_calibration: {exc}", file=sys.stderr)
        return 2
    print(f"{a.file}: {len(frame) - len(kept)} {a.name} rows dropped, {len(kept)} left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
