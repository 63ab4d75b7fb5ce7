"""Regression gate: llmperf's end-to-end accuracy on the committed held-out measurements.

The measurements (benchmarks/results/validation/*.csv) are reference-decoder step latencies
measured on H100/H200 by kernels/measure_e2e.py; nothing in llmperf is fitted to them. This test
recomputes every prediction on CPU (the same code as benchmarks/accuracy.py) and fails when a
change to the model makes the median |error| worse than the gate below. Gates: the issue's target
(5%) where it is met today, today's value + margin where it is not (H200 prefill: 6.0%), and the
cross-GPU target (10%) for calibrations transferred from the other GPU.
"""

from pathlib import Path

import pandas as pd
import pytest

from llmperf.validation import predict, summary

VALIDATION = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "validation"
FILES = sorted(VALIDATION.glob("*.csv"))
GATES_PCT = {("decode", "calibrated"): 5.0, ("prefill", "calibrated"): 7.0,
             ("decode", "transferred"): 10.0, ("prefill", "transferred"): 10.0}


@pytest.fixture(scope="module")
def errors():
    if not FILES:
        pytest.skip("no committed validation measurements")
    return predict(pd.concat([pd.read_csv(f) for f in FILES], ignore_index=True))


def test_median_error_within_gates(errors):
    table = summary(errors, ["hardware", "phase", "method"])
    for (phase, method), gate in GATES_PCT.items():
        rows = table[(table["phase"] == phase) & table["method"].str.startswith(method)]
        assert len(rows), f"no {phase} rows for {method}"
        assert (rows["median_abs_error_pct"] <= gate).all(), rows.to_string()


def test_calibration_beats_the_roofline(errors):
    table = summary(errors, ["hardware", "phase", "method"]).set_index(["hardware", "phase", "method"])
    for hw, phase in {(h, p) for h, p, _ in table.index}:
        assert table.loc[(hw, phase, "calibrated"), "median_abs_error_pct"] < \
            table.loc[(hw, phase, "roofline"), "median_abs_error_pct"]


def test_predictions_are_finite_and_positive(errors):
    assert (errors["predicted_s"] > 0).all() and errors["predicted_s"].notna().all()
