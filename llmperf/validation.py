"""End-to-end validation: llmperf's predictions against measured step latencies.

The measurements (benchmarks/results/validation/<hardware>.csv, written on a GPU by
``kernels/measure_e2e.py`` / ``llmperf validate``) are held out from everything: no curve, count
or constant in llmperf is fitted to them (DESIGN.md rule 7). Each row is predicted three ways:

  roofline                ideal calibration, bare op model (what pure-roofline peers compute)
  calibrated              the GPU's own kernel calibration + the engine profile of the
                          implementation measured (``reference`` for our reference decoder,
                          ``hf-transformers`` for the transformers model)
  transferred:<gpu>       another GPU's calibration moved by the transfer rule + that engine
  calibrated:bundled-host the calibration's own eager host rate instead of the measuring host's

Eager steps (prefill of the reference decoder, every step of transformers) can be bound by the
CPU issuing kernels. That rate belongs to the host, not the GPU, so when a measurement row
carries the host rate measured on its own machine right before it (``host_s_per_kernel``,
``host_s_per_step``: the calibration's tiny-model microbenchmark, nothing fitted to the rows),
``calibrated`` and ``transferred`` use it, as a user who calibrated that host would; the
``calibrated:bundled-host`` row shows what the bundled calibration's host rate alone gives.
Since session 3 the rate is probed around every point (``host_drift_pct`` says how far it moved
during the point); earlier rows carry one rate per model.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from llmperf.calibration import IDEAL
from llmperf.calibration_fit import MeasuredCalibration
from llmperf.calibration_io import load_calibration
from llmperf.calibration_table import load_calibration_csv
from llmperf.catalog import hardware_dir, load_hardware, load_model
from llmperf.errors import SpecError
from llmperf.estimators.latency import engine_ops, step_cost
from llmperf.specs.workload import Step, Workload

MEASUREMENT_COLUMNS = ["model", "hardware", "phase", "batch", "prompt_len", "context_len", "time_s"]


ENGINE_OF_METHOD = {"hf_eager": "hf-transformers"}  # measurement method -> engine profile


def engine_of(measurement_method: str) -> str:
    """The engine profile that describes how a measurement's implementation runs."""
    return ENGINE_OF_METHOD.get(measurement_method, "reference")


def methods(hw) -> dict:
    """method name -> calibration compared for one GPU (loaded once per GPU)."""
    return dict(_methods(hw.name))


@functools.lru_cache(maxsize=None)
def _methods(hardware_name: str) -> tuple:
    hw = load_hardware(hardware_name)
    folder = hardware_dir() / "calibration"
    out = {"roofline": IDEAL}
    own = folder / f"{hw.name}.csv"
    if own.exists():
        out["calibrated"] = load_calibration(own, hw)
    for path in sorted(folder.glob("*.csv")):
        if path.stem == hw.name:
            continue
        source = load_hardware(path.stem)
        if source.vendor == hw.vendor:
            frame = load_calibration_csv(path, source.name)
            out[f"transferred:{source.name}"] = MeasuredCalibration(
                frame, hw, f"transferred:{source.name}", measured_on=source)
    return tuple(out.items())


def _host_rate(group: pd.DataFrame):
    """(s per kernel, s per step) measured on the rows' host, or None."""
    if "host_s_per_kernel" not in group:
        return None
    per_kernel = float(group["host_s_per_kernel"].iloc[0])
    per_step = float(group["host_s_per_step"].iloc[0]) if "host_s_per_step" in group else 0.0
    return (per_kernel, per_step) if np.isfinite(per_kernel) and per_kernel > 0 else None


def predict(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (measurement, method): predicted_s, error = predicted / measured - 1,
    predicted_kernels (launches per step under the engine profile)."""
    missing = [c for c in MEASUREMENT_COLUMNS if c not in rows.columns]
    if missing:
        raise SpecError(f"measurements lack columns: {', '.join(missing)}")
    rows = rows.copy()
    if "method" not in rows:
        rows["method"] = "reference"
    keys = ["model", "hardware", "phase", "method"] + [
        c for c in ("host_s_per_kernel", "host_s_per_step") if c in rows]
    parts = []
    for _, group in rows.groupby(keys, dropna=False, sort=False):
        first = group.iloc[0]
        model, hw = load_model(first["model"]), load_hardware(first["hardware"])
        engine = engine_of(first["method"])
        b = group["batch"].to_numpy(float)
        step = (Step.prefill(b, group["prompt_len"].to_numpy(float)) if first["phase"] == "prefill"
                else Step.decode(b, group["context_len"].to_numpy(float)))
        workload = Workload(engine=engine)
        ops, _, _ = engine_ops(model, workload, step, IDEAL)
        kernels = sum(op.count * op.kernels for op in ops)
        host = _host_rate(group)
        for method, cal in methods(hw).items():
            variants = [(method, cal)]
            if method != "roofline" and host is not None:
                variants = [(method, cal.with_host_rate(*host))]
                if method == "calibrated":
                    variants.append(("calibrated:bundled-host", cal))
            for name, calibration in variants:
                wl = Workload() if name == "roofline" else workload
                predicted = step_cost(model, hw, wl, step, calibration).step_time_s
                parts.append(group.assign(method=name, predicted_s=predicted, predicted_kernels=kernels,
                                          measurement=first["method"], calibration=calibration.name,
                                          engine="none" if name == "roofline" else engine))
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
