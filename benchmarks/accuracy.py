"""Accuracy report: llmperf vs end-to-end measurements never used for fitting.

Reads every benchmarks/results/validation/*.csv (step latencies measured on a GPU by
kernels/measure_e2e.py: our reference decoder, and ``hf_*.csv`` the Hugging Face transformers
model of the same config), recomputes llmperf's predictions on CPU (llmperf.validation:
roofline / calibrated / calibrated:bundled-host / transferred) and prints median and p90
|predicted/measured - 1| per GPU, implementation, phase and method, then per model. Writes every
row to --out and the README table to --markdown. Measurements of earlier protocols are kept and
reported in tables of their own: validation/session1/ (no host rate recorded) and
validation/session2/ (one host rate per model, probed before it), validation/session3_first/ (the
rate probed before and after each point); since then it is sampled between the repetitions of
every point.

Usage: python benchmarks/accuracy.py [--out benchmarks/results/accuracy.csv] [--markdown FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from llmperf.validation import predict, summary

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "benchmarks" / "results" / "validation"
ARCHIVES = {"session1": "session-1 measurements (no host rate recorded with them)",
            "session2": "session-2 measurements (one host rate per model)",
            "session3_first": "session-3 first H100 run (host rate probed before and after each point)"}
BY = ["hardware", "measurement", "phase", "method"]


def load_measurements(folder: Path = VALIDATION) -> pd.DataFrame:
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise SystemExit(f"no measurements in {folder}")
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
    by_phase = summary(frame, BY)
    by_model = summary(frame[frame["method"] == "calibrated"], ["hardware", "measurement", "phase", "model"])
    pd.set_option("display.width", 200)
    print(by_phase.to_string(index=False, float_format="{:.1f}".format))
    print()
    print(by_model.to_string(index=False, float_format="{:.1f}".format))
    archives = {}
    for folder, title in ARCHIVES.items():
        path = VALIDATION / folder
        if path.is_dir() and any(path.glob("*.csv")):
            archives[title] = summary(predict(load_measurements(path)), BY)
            print(f"\n{title}:")
            print(archives[title].to_string(index=False, float_format="{:.1f}".format))
    frame.to_csv(args.out, index=False)
    if args.markdown:
        text = markdown(by_phase)
        for title, table in archives.items():
            text += f"\n{title[0].upper() + title[1:]}:\n\n" + markdown(table)
        Path(args.markdown).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
