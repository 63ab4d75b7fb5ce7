"""Shared pieces of the calibration sweeps: the row recorder (device metadata, failures) and
random bf16 inputs (never zeros: they run faster than real data)."""

from __future__ import annotations

import torch

from llmperf.calibration_table import CALIBRATION_COLUMNS

from . import harness


class Recorder:
    """Collects rows with the device metadata, and prints progress."""

    def __init__(self, hardware: str, rep_ms: float, progress=print, checkpoint=None):
        md = harness.device_metadata()
        self.meta = dict(hardware=hardware, device_name=md["device_name"],
                         driver=md.get("driver_version", "unknown"),
                         torch_version=md["torch_version"], triton_version=md["triton_version"],
                         date=md["date_utc"])
        self.rows, self.rep_ms, self._report, self.failures = [], rep_ms, progress, []
        self.checkpoint = checkpoint

    def progress(self, message: str) -> None:
        """Report a finished stage; with a checkpoint path, also write every row so far there
        (a run cut short keeps what it measured; the caller renames the file when done)."""
        self._report(message)
        if self.checkpoint is not None:
            import pandas as pd

            pd.DataFrame(self.rows, columns=CALIBRATION_COLUMNS + ["kernels"]).to_csv(
                self.checkpoint, index=False)

    def time(self, fn, graph=True, flush=True) -> float:
        return harness.time_fn(fn, rep_ms=self.rep_ms, warmup_ms=5.0, graph=graph, flush_l2=flush)

    def add(self, source, kind, name, dtype, flops, nbytes, fn, graph=True, **shape):
        try:
            t = self.time(fn, graph=graph)
            if t < 0.5e-6:  # below any launch floor: a graph that replayed nothing, time it eagerly
                t = self.time(fn, graph=False)
        except Exception as exc:  # noqa: BLE001 - one failing shape must not stop the sweep
            self.failures.append(f"{source} {name} {shape}: {type(exc).__name__}: {exc}")
            return
        row = {c: float("nan") for c in CALIBRATION_COLUMNS}
        row.update(self.meta, kernel_source=source, op_kind=kind, name=name, dtype=dtype,
                   flops=float(flops), bytes=float(nbytes), time_s=t, layout=shape.pop("layout", ""))
        row.update({k: float(v) for k, v in shape.items()})
        self.rows.append(row)


def _rand(*shape, dtype=torch.bfloat16):
    return torch.randn(*shape, device="cuda", dtype=torch.float32).to(dtype)
