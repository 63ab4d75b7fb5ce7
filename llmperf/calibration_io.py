"""Calibration files in use: load one (with its held-out residual bands, cached beside it), write
one back checked and atomically, and resolve ``--calibration ideal|auto|PATH`` including the
transfer rule for GPUs without a file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from llmperf.calibration_fit import FOLD_METHOD, MeasuredCalibration, held_out_errors
from llmperf.calibration_table import load_calibration_csv
from llmperf.named_inputs import accepts_names
from llmperf.specs.hardware import HardwareSpec


def residual_bands(frame: pd.DataFrame, hardware: HardwareSpec) -> dict:
    """{(op_kind, kernel_source): [p10, p90]} of held-out signed errors predicted/measured - 1."""
    errors = held_out_errors(frame, hardware)
    bands = {}
    for (kind, source), group in errors.groupby(["op_kind", "kernel_source"]):
        bands[f"{kind}|{source}"] = [float(np.percentile(group["error"], 10)),
                                     float(np.percentile(group["error"], 90))]
    return bands


def _bands_for(path: Path, frame: pd.DataFrame, hardware: HardwareSpec) -> dict:
    """Residual bands cached beside the CSV (``<name>.residuals.json``), keyed by the CSV's hash and
    the fold method so a changed file (or fold rule) is never paired with stale bands."""
    import hashlib
    import json

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    sidecar = Path(path).with_suffix(".residuals.json")
    try:
        cached = json.loads(sidecar.read_text())
        if cached.get("source_sha256") == digest and cached.get("folds") == FOLD_METHOD:
            return cached["bands"]
    except (OSError, ValueError, KeyError):
        pass
    bands = residual_bands(frame, hardware)
    try:
        sidecar.write_text(json.dumps({"source_sha256": digest, "folds": FOLD_METHOD, "bands": bands},
                                      indent=1))
    except OSError:
        pass  # read-only install: recompute next time
    return bands


@accepts_names
def load_calibration(path: Path, hardware: HardwareSpec, kernel_source: str = "triton"):
    """A calibration file measured on ``hardware``, as ``calibrated:<file name>``."""
    frame = load_calibration_csv(path, hardware.name)
    cal = MeasuredCalibration(frame, hardware, f"calibrated:{Path(path).name}", kernel_source)
    cal.bands = _bands_for(path, frame, hardware)
    return cal


def write_calibration_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (calibration rows of one hardware id, as read by ``pd.read_csv``) to ``path``
    only if the result passes the checks the estimator runs on a file, through a temporary file beside
    it and a rename (nothing half-written), then refresh the residual-band sidecar. Raises SpecError
    (the file untouched) otherwise."""
    from llmperf.catalog import load_hardware
    from llmperf.errors import SpecError

    path = Path(path)
    ids = set(frame["hardware"].astype(str)) if "hardware" in frame.columns else set()
    if len(ids) != 1:
        raise SpecError(f"{path}: the rows must be of one hardware id, got {sorted(ids) or 'none'}")
    hardware = load_hardware(ids.pop())
    tmp = path.with_name(path.name + ".writing")
    try:
        frame.to_csv(tmp, index=False)
        load_calibration_csv(tmp, hardware.name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    load_calibration(path, hardware)


def bundled_calibrations() -> dict:
    """{hardware id: path} of the calibration CSVs shipped in hardware/calibration/."""
    from llmperf.catalog import hardware_dir

    folder = hardware_dir() / "calibration"
    return {p.stem: p for p in sorted(folder.glob("*.csv"))} if folder.is_dir() else {}


def transfer_source(hardware: HardwareSpec, available: dict):
    """The calibrated GPU to borrow curves from: same vendor, closest ridge point.

    Transfer rule (documented in the README): efficiencies are functions of the ideal time of
    an op, so they carry over to a GPU whose units behave alike. We take a calibrated GPU of the
    same vendor and, among those, the one whose ridge point (bf16 peak / memory bandwidth,
    FLOP/byte) is closest in log ratio. Different vendors never transfer.
    """
    from llmperf.catalog import load_hardware

    ridge = hardware.peak_flop_per_s("bf16") / hardware.memory_bandwidth_bytes_per_s
    best, best_gap = None, np.inf
    for name in available:
        source = load_hardware(name)
        if source.vendor != hardware.vendor:
            continue
        gap = abs(np.log(source.peak_flop_per_s("bf16") / source.memory_bandwidth_bytes_per_s / ridge))
        if gap < best_gap:
            best, best_gap = source, gap
    return best


@accepts_names
def resolve_calibration(name: str, hardware: HardwareSpec, kernel_source: str = "triton"):
    """``ideal``; ``auto`` = the GPU's bundled file, else a transferred one, else ideal; or a path.

    Every estimate row names what was used: ``ideal``, ``calibrated:<file>`` or
    ``transferred:<from>``.
    """
    from llmperf.calibration import IDEAL

    key = str(name).strip()
    if key.lower() == "ideal":
        return IDEAL
    if key.lower() != "auto":
        return load_calibration(Path(key), hardware, kernel_source)
    available = bundled_calibrations()
    if hardware.name in available:
        return load_calibration(available[hardware.name], hardware, kernel_source)
    source = transfer_source(hardware, available)
    if source is None:
        return IDEAL
    frame = load_calibration_csv(available[source.name], source.name)
    cal = MeasuredCalibration(frame, hardware, f"transferred:{source.name}", kernel_source,
                              measured_on=source)
    cal.bands = _bands_for(available[source.name], frame, source)
    return cal
