"""End-to-end validation: llmperf's predictions against measured step latencies.

The measurements (benchmarks/results/validation/<hardware>.csv, written on a GPU by
``kernels/measure_e2e.py`` / ``llmperf validate``) are held out from everything: no curve, count
or constant in llmperf is fitted to them (DESIGN.md rule 7). Each row is predicted three ways:

  roofline                ideal calibration, bare op model (what pure-roofline peers compute)
  calibrated              the GPU's own kernel calibration + the ``reference`` engine profile
  transferred:<gpu>       another GPU's calibration moved by the transfer rule + ``reference``
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmperf.calibration import IDEAL
from llmperf.calibration_fit import MeasuredCalibration
from llmperf.calibration_io import load_calibration
from llmperf.calibration_table import load_calibration_csv
from llmperf.catalog import hardware_dir, load_hardware, load_model
from llmperf.errors import SpecError
from llmperf.estimators.latency import step_cost
from llmperf.specs.workload import Step, Workload

MEASUREMENT_COLUMNS = ["model", "hardware", "phase", "batch", "prompt_len", "context_len", "time_s"]


def methods(hw) -> dict:
    """method name -> (calibration, engine) compared for one GPU."""
    folder = hardware_dir() / "calibration"
    out = {"roofline": (IDEAL, None)}
    own = folder / f"{hw.name}.csv"
    if own.exists():
        out["calibrated"] = (load_calibration(own, hw), "reference")
    for path in sorted(folder.glob("*.csv")):
        if path.stem == hw.name:
            continue
        source = load_hardware(path.stem)
        if source.vendor == hw.vendor:
            frame = load_calibration_csv(path, source.name)
            out[f"transferred:{source.name}"] = (
                MeasuredCalibration(frame, hw, f"transferred:{source.name}", measured_on=source),
                "reference")
    return out


def predict(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (measurement, method): predicted_s, error = predicted / measured - 1."""
    missing = [c for c in MEASUREMENT_COLUMNS if c not in rows.columns]
    if missing:
        raise SpecError(f"measurements lack columns: {', '.join(missing)}")
    parts = []
    for (model_name, hw_name, phase), group in rows.groupby(["model", "hardware", "phase"]):
        model, hw = load_model(model_name), load_hardware(hw_name)
        b = group["batch"].to_numpy(float)
        step = (Step.prefill(b, group["prompt_len"].to_numpy(float)) if phase == "prefill"
                else Step.decode(b, group["context_len"].to_numpy(float)))
        for method, (cal, engine) in methods(hw).items():
            predicted = step_cost(model, hw, Workload(engine=engine), step, cal).step_time_s
            parts.append(group.assign(method=method, predicted_s=predicted,
                                      calibration=cal.name, engine=engine or "none"))
    out = pd.concat(parts, ignore_index=True)
    out["error"] = out["predicted_s"] / out["time_s"] - 1.0
    out["abs_error_pct"] = out["error"].abs() * 100
    return out


def summary(frame: pd.DataFrame, by) -> pd.DataFrame:
    """Median and p90 |error| (%) per group."""
    return (frame.groupby(by)["abs_error_pct"]
            .agg(points="size", median_abs_error_pct="median",
                 p90_abs_error_pct=lambda s: float(np.percentile(s, 90)))
            .reset_index())
