"""The cost model: a pure function from ops to times (DESIGN.md rule 6).

Per op instance (Williams et al., "Roofline", CACM 2009):
    compute_s = flops / (peak[compute_dtype] · e_c) + vector_flops / (peak_vector · e_c)
    memory_s  = memory_bytes / (HBM bandwidth · e_m)
    comm_s    = comm_bytes / (link bandwidth per direction · e_l)
    time_s    = max(compute_s, memory_s, comm_s) + kernels · overhead_s   ("max": perfect overlap)
              = compute_s + memory_s + comm_s + kernels · overhead_s     ("sum": no overlap)
The bound is whichever term is largest (``overhead`` when the launch cost exceeds them all).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from llmperf.calibration import IDEAL, Calibration
from llmperf.errors import LlmperfError
from llmperf.ops.op import COMMUNICATION, Op
from llmperf.specs.hardware import HardwareSpec

BOUNDS = ("compute", "memory", "communication", "overhead")


@dataclasses.dataclass(frozen=True)
class StepCost:
    """Per-op arrays stacked on axis 0 (shape [n_ops, *grid]) plus the ops they describe."""

    ops: list
    counts: np.ndarray          # [n_ops] instances per step
    compute_s: np.ndarray       # per instance
    memory_s: np.ndarray
    comm_s: np.ndarray
    overhead_s: np.ndarray
    time_s: np.ndarray
    bound_index: np.ndarray     # index into BOUNDS
    calibration: str

    def _total(self, per_instance: np.ndarray) -> np.ndarray:
        return np.tensordot(self.counts, per_instance, axes=(0, 0))

    @property
    def step_time_s(self) -> np.ndarray:
        """Time of the whole step over the grid."""
        return self._total(self.time_s)

    def total(self, field: str) -> np.ndarray:
        """Step total of an op field (``flops``, ``weight_bytes`` ...) over the grid."""
        return self._total(np.stack([getattr(o, field) for o in self.ops]))

    def time_by_bound(self) -> dict[str, np.ndarray]:
        """Step time attributed to each bound (op times summed by their bound)."""
        out = {}
        weighted = self.counts.reshape((-1,) + (1,) * (self.time_s.ndim - 1)) * self.time_s
        for i, name in enumerate(BOUNDS):
            out[name] = np.where(self.bound_index == i, weighted, 0.0).sum(axis=0)
        return out

    @property
    def step_bound(self) -> np.ndarray:
        """The bound that accounts for most of the step time, per grid point (strings)."""
        by = self.time_by_bound()
        stacked = np.stack([by[b] for b in BOUNDS])
        return np.asarray(BOUNDS, dtype=object)[np.argmax(stacked, axis=0)]


def _peak(hardware: HardwareSpec, dtype: str) -> float:
    return hardware.vector_flop_per_s if dtype == "fp32" else hardware.peak_flop_per_s(dtype)


def cost_ops(ops: list[Op], hardware: HardwareSpec, calibration: Calibration = IDEAL,
             overlap: Literal["max", "sum"] = "max", efficiency_ops: list[Op] | None = None
             ) -> StepCost:
    """Time every op of a step on ``hardware`` under ``calibration``.

    efficiency_ops: the same ops at another shape whose efficiencies to use (the request-latency
    closed form evaluates efficiencies once, at the middle decode step).
    """
    if overlap not in ("max", "sum"):
        raise LlmperfError(f"overlap must be 'max' or 'sum', got '{overlap}'")
    bw = hardware.memory_bandwidth_bytes_per_s
    link = hardware.interconnect.per_direction_bytes_per_s if hardware.interconnect else None
    rows = {k: [] for k in ("compute", "memory", "comm", "overhead")}
    for op, eff_op in zip(ops, efficiency_ops or ops):
        e_c = calibration.compute_efficiency(eff_op, hardware)
        e_m = calibration.memory_efficiency(eff_op, hardware)
        tensor = op.flops / (_peak(hardware, op.compute_dtype) * e_c) if np.any(op.flops) else 0.0
        vector = op.vector_flops / (hardware.vector_flop_per_s * e_c)
        rows["compute"].append(np.broadcast_to(tensor + vector, op.flops.shape))
        rows["memory"].append(op.memory_bytes / (bw * e_m))
        if op.kind == COMMUNICATION:
            if not link:
                raise LlmperfError(f"{hardware.name} states no interconnect bandwidth; "
                                   f"use --tp 1 or add interconnect.bandwidth to its YAML")
            e_l = calibration.communication_efficiency(eff_op, hardware)
            rows["comm"].append(op.comm_bytes / (link * e_l))
        else:
            rows["comm"].append(np.zeros_like(op.flops))
        rows["overhead"].append(np.full_like(op.flops, op.kernels * calibration.kernel_overhead_s(op, hardware)))
    compute, memory, comm, overhead = (np.stack(rows[k]) for k in ("compute", "memory", "comm", "overhead"))
    work = np.maximum(np.maximum(compute, memory), comm) if overlap == "max" else compute + memory + comm
    time = work + overhead
    terms = np.stack([compute, memory, comm, np.where(overhead > work, overhead, -1.0)])
    bound = np.argmax(terms, axis=0)
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise LlmperfError("cost model produced a non-finite or negative time; check the specs")
    counts = np.asarray([o.count for o in ops], dtype=float)
    return StepCost(ops, counts, compute, memory, comm, overhead, time, bound, calibration.name)
