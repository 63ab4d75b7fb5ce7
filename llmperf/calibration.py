"""Calibrations: measured efficiencies that turn roofline peaks into achievable rates.

The cost model asks a calibration, per op, for a compute efficiency, a memory efficiency and a
per-kernel overhead. :data:`IDEAL` is the pure roofline (efficiency 1.0, no overhead); measured
calibrations (``calibrated:<file>``) and transferred ones (``transferred:<from>``) implement the
same protocol. Every estimate row names the calibration it used.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from llmperf.ops.op import Op
from llmperf.specs.hardware import HardwareSpec


class Calibration(Protocol):
    """What the cost model needs from a calibration."""

    name: str

    def compute_efficiency(self, op: Op, hardware: HardwareSpec) -> np.ndarray:
        """Achieved / peak FLOP/s for this op's shape, in (0, 1]."""

    def memory_efficiency(self, op: Op, hardware: HardwareSpec) -> np.ndarray:
        """Achieved / peak memory bandwidth for this op's traffic, in (0, 1]."""

    def communication_efficiency(self, op: Op, hardware: HardwareSpec) -> np.ndarray:
        """Achieved / peak link bandwidth for a collective, in (0, 1]."""

    def kernel_overhead_s(self, op: Op, hardware: HardwareSpec) -> float:
        """Fixed time per kernel launch (launch gap, prologue/epilogue), seconds."""


class IdealCalibration:
    """Peaks as stated: every efficiency 1.0 and no per-kernel overhead (the pure roofline)."""

    name = "ideal"

    def compute_efficiency(self, op: Op, hardware: HardwareSpec) -> np.ndarray:
        return 1.0

    def memory_efficiency(self, op: Op, hardware: HardwareSpec) -> np.ndarray:
        return 1.0

    def communication_efficiency(self, op: Op, hardware: HardwareSpec) -> np.ndarray:
        return 1.0

    def kernel_overhead_s(self, op: Op, hardware: HardwareSpec) -> float:
        return 0.0


class ConstantCalibration:
    """Fixed efficiencies and overhead for every op (handy for what-if studies and tests)."""

    def __init__(self, compute: float, memory: float, overhead_s: float = 0.0,
                 communication: float = 1.0, name: str | None = None):
        for label, value in (("compute", compute), ("memory", memory),
                             ("communication", communication)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{label} efficiency must be in (0, 1], got {value}")
        if overhead_s < 0:
            raise ValueError("kernel overhead must not be negative")
        self.compute, self.memory, self.communication = compute, memory, communication
        self.overhead_s = overhead_s
        self.name = name or f"constant:compute={compute:g},memory={memory:g},overhead={overhead_s:g}s"

    def compute_efficiency(self, op, hardware):
        return self.compute

    def memory_efficiency(self, op, hardware):
        return self.memory

    def communication_efficiency(self, op, hardware):
        return self.communication

    def kernel_overhead_s(self, op, hardware):
        return self.overhead_s


IDEAL = IdealCalibration()
