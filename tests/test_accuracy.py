"""Regression gate: llmperf's end-to-end accuracy on the committed held-out measurements.

The measurements (benchmarks/results/validation/*.csv) are step latencies measured on H100/H200
by kernels/measure_e2e.py: our reference decoder (CUDA-graph decode, eager prefill) and the
Hugging Face transformers model of the same config (``hf_*.csv``, eager); nothing in llmperf is
fitted to them. This test recomputes every prediction on CPU (the same code as
benchmarks/accuracy.py) and fails when a change to the model makes the median |error| worse than
the gate below. Gates: the issue's target (5%) where it is met today, today's value + about half
a point where it is not (transformers decode: 8.5% on the H100, whose host rate moved 23-41 us
per kernel within the run; transformers prefill transferred to the H100: 10.9%), and the
cross-GPU target (10%) elsewhere.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmperf.validation import engine_of, predict, summary

VALIDATION = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "validation"
FILES = sorted(VALIDATION.glob("*.csv"))
# (implementation, phase, method) -> gate on the median |error| (%), per GPU
GATES_PCT = {("reference", "decode", "calibrated"): 5.0, ("reference", "prefill", "calibrated"): 5.0,
             ("hf", "decode", "calibrated"): 9.0, ("hf", "prefill", "calibrated"): 5.0,
             ("reference", "decode", "transferred"): 10.0, ("reference", "prefill", "transferred"): 10.0,
             ("hf", "decode", "transferred"): 10.0, ("hf", "prefill", "transferred"): 11.5}


@pytest.fixture(scope="module")
def errors():
    if not FILES:
        pytest.skip("no committed validation measurements")
    return predict(pd.concat([pd.read_csv(f) for f in FILES], ignore_index=True))


def test_median_error_within_gates(errors):
    table = summary(errors, ["hardware", "measurement", "phase", "method"])
    impl = np.where(table["measurement"].str.startswith("hf"), "hf", "reference")
    for (implementation, phase, method), gate in GATES_PCT.items():
        chosen = (table["method"] == method) if method == "calibrated" else \
            table["method"].str.startswith(method + ":")
        rows = table[(impl == implementation) & (table["phase"] == phase) & chosen]
        assert len(rows), f"no {implementation} {phase} rows for {method}"
        assert (rows["median_abs_error_pct"] <= gate).all(), rows.to_string()


def test_calibration_beats_the_roofline(errors):
    table = summary(errors, ["hardware", "measurement", "phase", "method"]).set_index(
        ["hardware", "measurement", "phase", "method"])
    for hw, measurement, phase in {k[:3] for k in table.index}:
        assert table.loc[(hw, measurement, phase, "calibrated"), "median_abs_error_pct"] < \
            table.loc[(hw, measurement, phase, "roofline"), "median_abs_error_pct"]


def test_rows_with_a_host_rate_get_both_host_variants():
    rows = pd.DataFrame([dict(model="llama-3.2-1b", hardware="h100-sxm5-80gb", phase="prefill",
                              method="hf_eager", batch=1, prompt_len=128, context_len=0, time_s=0.01,
                              host_s_per_kernel=1e-3, host_s_per_step=0.0)])
    out = predict(rows).set_index("method")
    assert engine_of("hf_eager") == "hf-transformers" and engine_of("reference_eager") == "reference"
    assert {"roofline", "calibrated", "calibrated:bundled-host"} <= set(out.index)
    assert (out["engine"].drop("roofline") == "hf-transformers").all()
    # 1 ms per kernel on this host: the eager prefill is host-bound at kernels x 1 ms
    kernels = out.loc["calibrated", "predicted_kernels"]
    assert out.loc["calibrated", "predicted_s"] == pytest.approx(kernels * 1e-3, rel=1e-6)
    assert out.loc["calibrated:bundled-host", "predicted_s"] < out.loc["calibrated", "predicted_s"]


def test_predictions_are_finite_and_positive(errors):
    assert (errors["predicted_s"] > 0).all() and errors["predicted_s"].notna().all()
