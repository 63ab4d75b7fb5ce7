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
_FIELDS = ("flops", "vector_flops", "weight_bytes", "act_in_bytes", "act_out_bytes",
           "kv_read_bytes", "kv_write_bytes", "comm_bytes")


@dataclasses.dataclass(frozen=True)
class StepCost:
    """Per-op times (lists, one array per op, broadcastable to the grid) and step totals.

    Per-op arrays are not stacked: over a million-scenario grid a stack of every op would cost
    gigabytes, while the step totals are accumulated op by op.
    """

    ops: list
    counts: np.ndarray          # [n_ops] instances per step
    compute_s: list             # per instance, one array per op
    memory_s: list
    comm_s: list
    overhead_s: list
    time_s: list
    bound_index: list           # index into BOUNDS, one array per op
    step_time_s: np.ndarray     # sum over ops of count x time, over the grid
    bound_time_s: np.ndarray    # [len(BOUNDS), *grid] step time attributed to each bound
    calibration: str
    host_s: float = 0.0                     # eager: the host's time to issue the step (a floor)
    stage_time_s: np.ndarray | None = None  # pipeline parallel: [stages, *grid] one micro-batch per stage
    traversal_s: np.ndarray | None = None   # pipeline parallel: one micro-batch through every stage
    traversals: np.ndarray | float = 1.0     # pipeline parallel: batch / micro-batch size
    stages: int = 1                          # pipeline parallel: stages

    def device_total(self, field: str) -> np.ndarray:
        """Step total of a per-sequence additive field (``flops``, ``vector_flops``) on one
        device for the whole batch. Under pipeline parallelism the ops are one micro-batch's
        traversal of every stage: scaled by ``traversals`` (FLOPs are linear in the batch) and
        divided by the stages (the mean device; stages differ by their layer counts)."""
        return self.total(field) * self.traversals / self.stages

    def total(self, field: str) -> np.ndarray:
        """Step total of an op field (``flops``, ``weight_bytes`` ...) over the grid."""
        return sum(getattr(o, field) * o.count for o in self.ops) + np.zeros(self.step_time_s.shape)

    def time_by_bound(self) -> dict[str, np.ndarray]:
        """Step time attributed to each bound (op times summed by their bound)."""
        return {name: self.bound_time_s[i] for i, name in enumerate(BOUNDS)}

    @property
    def step_bound(self) -> np.ndarray:
        """The bound that accounts for most of the step time, per grid point (strings)."""
        return np.asarray(BOUNDS, dtype=object)[np.argmax(self.bound_time_s, axis=0)]


def _peak(hardware: HardwareSpec, dtype: str) -> float:
    return hardware.vector_flop_per_s if dtype == "fp32" else hardware.peak_flop_per_s(dtype)


def _bound_index(*times: np.ndarray) -> np.ndarray:
    """Index of the largest of ``times`` per element, the first on ties: ``np.argmax`` over the
    stacked arrays without building the stack (argmax along the leading axis of a (4, N) stack strides
    through memory: on a 1M-scenario Llama-3.1-8B decode grid the 15 ops' argmax took 0.90 s, these
    elementwise comparisons 0.22 s, 2-core machine, 2026-12-07)."""
    best = np.asarray(times[0], dtype=float)
    index = np.zeros(np.broadcast_shapes(*(np.shape(t) for t in times)), dtype=np.int8)
    for i, candidate in enumerate(times[1:], start=1):
        larger = candidate > best
        index[np.broadcast_to(larger, index.shape)] = i
        best = np.where(larger, candidate, best)
    return index


def cost_ops(ops: list[Op], hardware: HardwareSpec, calibration: Calibration = IDEAL,
             overlap: Literal["max", "sum"] = "max", efficiency_ops: list[Op] | None = None,
             host_launch_s: float = 0.0, host_step_s: float = 0.0) -> StepCost:
    """Time every op of a step on ``hardware`` under ``calibration``.

    efficiency_ops: the same ops at another shape whose efficiencies to use (the request-latency
    closed form evaluates efficiencies once, at the middle decode step).
    host_launch_s, host_step_s: eager execution: the host needs host_step_s + kernels x
    host_launch_s to issue the step, so the step takes at least that long (the excess over the
    device time is attributed to the ``overhead`` bound).
    """
    if overlap not in ("max", "sum"):
        raise LlmperfError(f"overlap must be 'max' or 'sum', got '{overlap}'")
    grid = np.broadcast_shapes(*(np.shape(getattr(o, f)) for o in ops for f in _FIELDS))
    bw = hardware.memory_bandwidth_bytes_per_s
    link = hardware.interconnect.per_direction_bytes_per_s if hardware.interconnect else None
    out = {k: [] for k in ("compute", "memory", "comm", "overhead", "time", "bound")}
    step_time = np.zeros(grid)
    bound_time = np.zeros((len(BOUNDS),) + grid)
    for op, eff_op in zip(ops, efficiency_ops or ops):
        e_c = calibration.compute_efficiency(eff_op, hardware)
        e_m = calibration.memory_efficiency(eff_op, hardware)
        tensor = op.flops / (_peak(hardware, op.compute_dtype) * e_c) if np.any(op.flops) else 0.0
        vector = op.vector_flops / (hardware.vector_flop_per_s * e_c) if np.any(op.vector_flops) else 0.0
        compute = np.asarray(tensor + vector, dtype=float)
        memory = np.asarray(op.memory_bytes / (bw * e_m), dtype=float)
        comm = np.zeros(())
        if op.kind == COMMUNICATION:
            if not link:
                raise LlmperfError(f"{hardware.name} states no interconnect bandwidth; "
                                   f"use --tp 1 and --pp 1 or add interconnect.bandwidth to its YAML")
            comm = np.asarray(op.comm_bytes / (link * calibration.communication_efficiency(eff_op, hardware)))
        overhead = np.asarray(op.kernels * calibration.kernel_overhead_s(op, hardware), dtype=float)
        work = np.maximum(np.maximum(compute, memory), comm) if overlap == "max" else compute + memory + comm
        time = work + overhead
        bound = _bound_index(compute, memory, comm, np.where(overhead > work, overhead, -1.0))
        weighted = op.count * time
        step_time += weighted  # in place: these grids reach 1M scenarios
        for i in range(len(BOUNDS)):
            row = bound_time[i:i + 1]  # a view even when the grid is 0-d
            np.add(row, weighted, out=row, where=bound == i)
        for key, value in (("compute", compute), ("memory", memory), ("comm", comm),
                           ("overhead", overhead), ("time", time), ("bound", bound)):
            out[key].append(value)
    host_s = 0.0
    if host_launch_s or host_step_s:
        host_s = host_step_s + sum(o.count * o.kernels for o in ops) * host_launch_s
        extra = np.maximum(host_s - step_time, 0.0)
        step_time = step_time + extra
        bound_time[BOUNDS.index("overhead")] += extra
    if not np.all(np.isfinite(step_time)) or np.any(step_time < 0):
        raise LlmperfError("cost model produced a non-finite or negative time; check the specs")
    counts = np.asarray([o.count for o in ops], dtype=float)
    return StepCost(ops, counts, out["compute"], out["memory"], out["comm"], out["overhead"],
                    out["time"], out["bound"], step_time, bound_time, calibration.name, host_s)
