"""Frozen, validated specs: hardware (where), model (what) and workload (how)."""

from llmperf.specs.hardware import HardwareSpec, load_hardware_file
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Workload

__all__ = ["HardwareSpec", "ModelSpec", "Workload", "load_hardware_file"]
