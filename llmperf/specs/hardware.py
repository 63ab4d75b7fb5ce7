"""Hardware spec: one accelerator (one GPU, one GCD, one TPU chip), values in SI units.

YAML files under ``hardware/`` write every dimensional value with its unit (``80 GB``,
``3.35 TB/s``, ``989.4 TFLOP/s``) and give a ``sources`` entry for every number. Peaks are
dense (2:4-sparse datasheet figures halved). Interconnect bandwidth states its basis:
``bidirectional`` (NVIDIA's NVLink figures: 900 GB/s = 450 GB/s each way) or ``per_direction``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmperf.specs._validate import read_yaml_mapping, validate_spec
from llmperf.units import parse_quantity

PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")




class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PeakThroughput(_Strict):
    """Dense peak throughput per dtype in FLOP/s (integer dtypes: OP/s). fp32 = vector units."""

    fp32: Optional[float] = None
    tf32: Optional[float] = None
    bf16: Optional[float] = None
    fp16: Optional[float] = None
    fp8: Optional[float] = None
    int8: Optional[float] = None
    int4: Optional[float] = None
    fp4: Optional[float] = None

    @field_validator("*", mode="before")
    @classmethod
    def _parse(cls, value):
        return None if value is None else parse_quantity(value, "flop_per_s")


class Interconnect(_Strict):
    """Scale-up link of one device (NVLink, Infinity Fabric, ICI, or PCIe when there is none)."""

    type: str
    bandwidth_bytes_per_s: Optional[float] = Field(default=None, alias="bandwidth")
    basis: Literal["bidirectional", "per_direction"] = "bidirectional"

    @field_validator("bandwidth_bytes_per_s", mode="before")
    @classmethod
    def _parse(cls, value):
        return None if value is None else parse_quantity(value, "bytes_per_s")

    @property
    def per_direction_bytes_per_s(self) -> Optional[float]:
        """Bandwidth one way, the figure a ring all-reduce step is bound by."""
        if self.bandwidth_bytes_per_s is None:
            return None
        return self.bandwidth_bytes_per_s / (2.0 if self.basis == "bidirectional" else 1.0)


_DIMENSIONS = {
    "memory_capacity_bytes": "bytes",
    "memory_bandwidth_bytes_per_s": "bytes_per_s",
    "l2_cache_bytes": "bytes",
    "boost_clock_hz": "hertz",
    "tdp_watts": "watts",
    "price_usd_per_hour": "usd_per_hour",
}


class HardwareSpec(_Strict):
    """One accelerator. Every number is SI; the field name carries the unit."""

    name: str
    vendor: str
    display_name: str
    aliases: tuple[str, ...] = ()
    memory_capacity_bytes: float = Field(alias="memory_capacity")
    memory_type: Optional[str] = None
    memory_bandwidth_bytes_per_s: float = Field(alias="memory_bandwidth")
    l2_cache_bytes: Optional[float] = Field(default=None, alias="l2_cache")
    compute_units: Optional[str] = None
    boost_clock_hz: Optional[float] = Field(default=None, alias="boost_clock")
    peak: PeakThroughput
    interconnect: Optional[Interconnect] = None
    pcie_gen: Optional[int] = None
    tdp_watts: Optional[float] = Field(default=None, alias="tdp")
    price_usd_per_hour: Optional[float] = Field(default=None, alias="price_per_hour")
    unverified_fields: tuple[str, ...] = ()
    notes: str = ""
    sources: dict[str, str]
    cross_check: str = ""
    reference: str = ""

    @field_validator(*_DIMENSIONS, mode="before")
    @classmethod
    def _parse_units(cls, value, info):
        if value is None:
            return None
        return parse_quantity(value, _DIMENSIONS[info.field_name])

    @field_validator("compute_units", mode="before")
    @classmethod
    def _units_as_text(cls, value):
        return None if value is None else str(value)

    @model_validator(mode="after")
    def _check(self):
        if self.memory_capacity_bytes <= 0 or self.memory_bandwidth_bytes_per_s <= 0:
            raise ValueError("memory_capacity and memory_bandwidth must be positive")
        if self.peak.bf16 is None and self.peak.fp16 is None:
            raise ValueError("peak needs at least a bf16 or fp16 dense tensor peak")
        missing = [f for f in self.numeric_fields() if f not in self.sources]
        if missing:
            raise ValueError(f"sources has no entry for: {', '.join(missing)}")
        return self

    def numeric_fields(self) -> list[str]:
        """YAML names of the numbers this spec states (each must have a ``sources`` entry)."""
        names = []
        for name, field in type(self).model_fields.items():
            if name in _DIMENSIONS and getattr(self, name) is not None:
                names.append(field.alias or name)
        names += [f"peak.{d}" for d in PEAK_DTYPES if getattr(self.peak, d) is not None]
        if self.interconnect and self.interconnect.bandwidth_bytes_per_s is not None:
            names.append("interconnect.bandwidth")
        return names

    def peak_flop_per_s(self, dtype: str) -> float:
        """Dense peak for a compute dtype; fp16 and bf16 stand in for each other if one is absent."""
        value = getattr(self.peak, dtype, None)
        if value is None and dtype in ("bf16", "fp16"):
            value = getattr(self.peak, "fp16" if dtype == "bf16" else "bf16")
        if value is None:
            from llmperf.errors import LlmperfError

            have = [d for d in PEAK_DTYPES if getattr(self.peak, d) is not None]
            raise LlmperfError(
                f"{self.name} has no dense {dtype} peak (it has: {', '.join(have)}); "
                f"choose --activations from those"
            )
        return value

    @property
    def vector_flop_per_s(self) -> float:
        """Non-tensor (CUDA-core/vector) fp32 peak for norms and elementwise ops.

        Falls back to the 16-bit tensor peak / 16 where the vendor states no fp32 figure (TPUs),
        a conservative placeholder; such ops are memory-bound in practice.
        """
        if self.peak.fp32 is not None:
            return self.peak.fp32
        return self.peak_flop_per_s("bf16") / 16.0


def load_hardware_file(path: Path) -> HardwareSpec:
    """Load and validate one hardware YAML; errors name the file and the field."""
    data = read_yaml_mapping(Path(path))
    return validate_spec(HardwareSpec, data, str(path))
