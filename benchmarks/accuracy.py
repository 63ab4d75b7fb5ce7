"""Accuracy report: llmperf vs end-to-end measurements never used for fitting.

Reads every benchmarks/results/validation/*.csv (reference-decoder step latencies measured on a
GPU by kernels/measure_e2e.py), recomputes llmperf's predictions on CPU (llmperf.validation:
roofline / calibrated / transferred) and prints median and p90 |predicted/measured - 1| per GPU,
phase and method, then per model. Writes every row to --out and the README table to --markdown.

Usage: python benchmarks/accuracy.py [--out benchmarks/results/accuracy.csv] [--markdown FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from llmperf.validation import predict, summary

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "benchmarks" / "results" / "validation"


def load_measurements() -> pd.DataFrame:
    files = sorted(VALIDATION.glob("*.csv"))
    if not files:
        raise SystemExit(f"no measurements in {VALIDATION}")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table (no tabulate dependency)."""
    def cell(v):
        return f"{v:.1f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "accuracy.csv"))
    parser.add_argument("--markdown", default=None, help="also write the summary as markdown")
    args = parser.parse_args()
    frame = predict(load_measurements())
    by_phase = summary(frame, ["hardware", "phase", "method"])
    by_model = summary(frame[frame["method"] == "calibrated"], ["hardware", "phase", "model"])
    pd.set_option("display.width", 160)
    print(by_phase.to_string(index=False, float_format="{:.1f}".format))
    print()
    print(by_model.to_string(index=False, float_format="{:.1f}".format))
    frame.to_csv(args.out, index=False)
    if args.markdown:
        Path(args.markdown).write_text(markdown(by_phase))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
