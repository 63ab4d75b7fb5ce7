"""Reports on a calibration: held-out error summary and measured peaks beside the datasheet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmperf.calibration_fit import DIAGNOSTIC_SOURCES, IMPOSSIBLE_SPEEDUP, _peak_dtype
from llmperf.specs.hardware import HardwareSpec


def achieved_peaks(frame: pd.DataFrame, hardware: HardwareSpec) -> pd.DataFrame:
    """Measured peaks beside the datasheet: the best FLOP/s per GEMM dtype and kernel source,
    and the best copy bandwidth (bytes read + written per second)."""
    rows = []
    gemm = frame[(frame["op_kind"] == "gemm") & (frame["flops"] > 0)
                 & ~frame["kernel_source"].isin(DIAGNOSTIC_SOURCES)]
    for (dtype, source), group in gemm.groupby(["dtype", "kernel_source"]):
        datasheet = hardware.peak_flop_per_s(_peak_dtype(dtype))
        # timing glitches (faster than physics allows) are not peaks; the fit drops them too
        group = group[group["flops"] / group["time_s"] <= IMPOSSIBLE_SPEEDUP * datasheet]
        if group.empty:
            continue
        best = group.loc[(group["flops"] / group["time_s"]).idxmax()]
        achieved = best["flops"] / best["time_s"]
        rows.append({"what": f"gemm {dtype}", "kernel_source": source, "measured": achieved,
                     "datasheet": datasheet, "unit": "FLOP/s", "fraction": achieved / datasheet,
                     "shape": f"M={best['m']:.0f} N={best['n']:.0f} K={best['k']:.0f}"})
    copies = frame[(frame["op_kind"] == "memory") & (frame["name"] == "copy")]
    for source, group in copies.groupby("kernel_source"):
        best = group.loc[(group["bytes"] / group["time_s"]).idxmax()]
        achieved = best["bytes"] / best["time_s"]
        rows.append({"what": "copy bandwidth", "kernel_source": source, "measured": achieved,
                     "datasheet": hardware.memory_bandwidth_bytes_per_s, "unit": "B/s",
                     "fraction": achieved / hardware.memory_bandwidth_bytes_per_s,
                     "shape": f"{best['bytes'] / 2e6:.0f} MB copied"})
    launch = frame[frame["op_kind"] == "launch"]
    shapes = {"launch_floor": "1-element copy", "host_time": "host time of eager torch",
              "host_per_kernel": "host time of eager torch"}
    for (mode, name, source), group in launch.groupby(["layout", "name", "kernel_source"]):
        what = {"torch_eager": "host per kernel (eager torch)",
                "torch_eager_step": "host per step (eager torch)",
                "hf_eager": "host per kernel (transformers)",
                "hf_eager_step": "host per step (transformers)"}.get(mode, f"launch floor ({mode})")
        rows.append({"what": what, "kernel_source": source,
                     "measured": float(group["time_s"].median()), "datasheet": np.nan,
                     "unit": "s", "fraction": np.nan, "shape": shapes.get(name, name)})
    return pd.DataFrame(rows)


def error_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 of |error| (%) per op kind and kernel source."""
    errors = errors.assign(abs_error_pct=errors["error"].abs() * 100)
    return (errors.groupby(["op_kind", "kernel_source"])["abs_error_pct"]
            .agg(points="size", median_abs_error_pct="median",
                 p90_abs_error_pct=lambda s: float(np.percentile(s, 90)))
            .reset_index())
