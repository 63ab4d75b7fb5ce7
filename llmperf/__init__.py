"""llmperf: calibrated analytic performance estimates for LLM inference.

Three frozen specs (hardware, model, workload) go into one op builder; a pure cost model turns
the ops into times under a calibration; results come back as tidy pandas DataFrames.

    >>> import llmperf
    >>> m, g = llmperf.load_model("llama-3.1-8b"), llmperf.load_hardware("h100-sxm")
    >>> llmperf.estimate(m, g, batch=8, prompt_len=2048, output_len=256)["tpot_s"]  # doctest: +SKIP

Importing llmperf never imports torch, triton or matplotlib.
"""

from llmperf.calibration import IDEAL, ConstantCalibration
from llmperf.calibration_fit import load_calibration, resolve_calibration
from llmperf.catalog import (bundled_hardware_names, bundled_model_names, load_hardware,
                             load_model)
from llmperf.errors import LlmperfError
from llmperf.estimate.latency import request_metrics, step_cost
from llmperf.estimate.memory import (activation_bytes, kv_bytes, max_batch, max_context,
                                     memory_breakdown, weight_bytes)
from llmperf.estimate.params import parameter_counts, parameter_table
from llmperf.estimate.report import estimate, estimate_frame, layers_frame, ops_frame
from llmperf.ops.builder import build_step_ops
from llmperf.ops.kv import kv_bytes_per_token
from llmperf.specs import HardwareSpec, ModelSpec, Workload
from llmperf.specs.workload import Step

__version__ = "0.1.0"

__all__ = [
    "IDEAL", "ConstantCalibration", "HardwareSpec", "LlmperfError", "ModelSpec", "Step",
    "Workload", "activation_bytes", "build_step_ops", "bundled_hardware_names",
    "bundled_model_names", "estimate", "estimate_frame", "kv_bytes", "kv_bytes_per_token",
    "layers_frame", "load_calibration", "load_hardware", "load_model", "resolve_calibration", "max_batch", "max_context", "memory_breakdown", "ops_frame",
    "parameter_counts", "parameter_table", "request_metrics", "step_cost", "weight_bytes",
]
