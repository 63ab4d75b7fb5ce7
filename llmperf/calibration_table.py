"""Calibration measurements: the CSV schema, and loading it with every check a user needs.

One row per kernel measurement, SI units, with the device and software it was measured on.
Files live in ``hardware/calibration/<hardware id>.csv`` (written by ``llmperf calibrate`` on a
GPU). A file with missing columns, NaN, non-positive times, or rows of another GPU is refused
with one line that says what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from llmperf.errors import SpecError

OP_KINDS = ("gemm", "attention_prefill", "attention_decode", "memory", "launch")
CALIBRATION_COLUMNS = [
    "hardware", "device_name", "driver", "torch_version", "triton_version", "date",
    "kernel_source", "op_kind", "name", "dtype", "m", "n", "k", "batch", "q_len", "kv_len",
    "q_heads", "kv_heads", "head_dim", "layout", "flops", "bytes", "time_s",
]
# Optional columns (older files lack them): kernels = launches in one timed call (default 1).
OPTIONAL_COLUMNS = {"kernels": 1.0}
_NUMERIC = ["m", "n", "k", "batch", "q_len", "kv_len", "q_heads", "kv_heads", "head_dim",
            "flops", "bytes", "time_s"]


def load_calibration_csv(path, hardware_name: str | None = None) -> pd.DataFrame:
    """Read and validate a calibration CSV; ``hardware_name`` refuses another GPU's file."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"calibration file '{path}' does not exist")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in CALIBRATION_COLUMNS if c not in frame.columns]
    if missing:
        raise SpecError(f"{path}: not a calibration file, missing columns: {', '.join(missing)} "
                        f"(write it with `llmperf calibrate`)")
    if frame.empty:
        raise SpecError(f"{path}: has no measurements")
    for col in ("flops", "bytes", "time_s"):
        values = pd.to_numeric(frame[col], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax()) + 2
            raise SpecError(f"{path}: line {row}: column '{col}' is empty, NaN or not a number")
        frame[col] = values
    if (frame["time_s"] <= 0).any():
        row = int((frame["time_s"] <= 0).to_numpy().argmax()) + 2
        raise SpecError(f"{path}: line {row}: time_s must be positive")
    if (frame[["flops", "bytes"]] < 0).any().any():
        raise SpecError(f"{path}: flops and bytes must not be negative")
    if not np.isfinite(frame[["flops", "bytes", "time_s"]].to_numpy(dtype=float)).all():
        raise SpecError(f"{path}: flops, bytes and time_s must be finite")
    bad_kind = sorted(set(frame["op_kind"]) - set(OP_KINDS))
    if bad_kind:
        raise SpecError(f"{path}: unknown op_kind '{bad_kind[0]}' (known: {', '.join(OP_KINDS)})")
    if hardware_name is not None:
        others = sorted(set(frame["hardware"].astype(str)) - {hardware_name})
        if others:
            raise SpecError(f"{path}: measured on '{others[0]}', not on '{hardware_name}'; "
                            f"pass that GPU with -g, or use its own calibration file")
    for col in _NUMERIC:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col, default in OPTIONAL_COLUMNS.items():
        frame[col] = pd.to_numeric(frame[col], errors="coerce").fillna(default) if col in frame else default
    return frame
