"""Regression gate: llmperf's end-to-end accuracy on the committed held-out measurements.

The measurements (benchmarks/results/validation/*.csv) are step latencies measured on H100/H200
by kernels/measure_e2e.py: our reference decoder (CUDA-graph decode, eager prefill) and the
Hugging Face transformers model of the same config (``hf_*.csv``, eager); nothing in llmperf is
fitted to them. This test recomputes every prediction on CPU (the same code as
benchmarks/accuracy.py) and fails when a change to the model misses the issue's targets on them:
calibrated median |error| <= 5% and p90 <= 10% per GPU, implementation and phase; another GPU's
calibration moved by the transfer rule, median <= 10%. Every gate is the issue's target, met on
the measurements of session 3 (host rate sampled between the repetitions of every point).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmperf.validation import engine_of, predict, summary

VALIDATION = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "validation"
FILES = sorted(VALIDATION.glob("*.csv"))
# method -> (gate on the median |error| %, gate on the p90 |error| %), for every GPU,
# implementation (reference decoder, transformers) and phase
GATES_PCT = {"calibrated": (5.0, 10.0), "transferred": (10.0, None)}
IMPLEMENTATIONS, PHASES = ("reference", "hf"), ("decode", "prefill")


@pytest.fixture(scope="module")
def errors():
    if not FILES:
        pytest.skip("no committed validation measurements")
    return predict(pd.concat([pd.read_csv(f) for f in FILES], ignore_index=True))


@pytest.mark.parametrize("method", sorted(GATES_PCT))
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_error_within_the_targets(errors, implementation, phase, method):
    table = summary(errors, ["hardware", "measurement", "phase", "method"])
    impl = np.where(table["measurement"].str.startswith("hf"), "hf", "reference")
    chosen = (table["method"] == method) if method == "calibrated" else \
        table["method"].str.startswith(method + ":")
    rows = table[(impl == implementation) & (table["phase"] == phase) & chosen]
    assert set(rows["hardware"]) == {"h100-sxm5-80gb", "h200-sxm-141gb"}, rows.to_string()
    median_gate, p90_gate = GATES_PCT[method]
    assert (rows["median_abs_error_pct"] <= median_gate).all(), rows.to_string()
    if p90_gate is not None:
        assert (rows["p90_abs_error_pct"] <= p90_gate).all(), rows.to_string()


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
