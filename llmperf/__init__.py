"""llmperf: calibrated analytic performance estimates for LLM inference.

Three frozen specs (hardware, model, workload) go into one op builder; a pure cost model turns
the ops into times under a calibration; results come back as tidy pandas DataFrames.

    >>> import llmperf
    >>> m, g = llmperf.load_model("llama-3.1-8b"), llmperf.load_hardware("h100-sxm")
    >>> llmperf.estimate(m, g, batch=8, prompt_len=2048, output_len=256)["tpot_s"]  # doctest: +SKIP

Importing llmperf never imports torch, triton or matplotlib.
"""

# Public names, imported on first use (PEP 562) so that `import llmperf` and the CLI's start-up
# only pay for the modules they touch.
_EXPORTS = {
    "IDEAL": "llmperf.calibration",
    "ConstantCalibration": "llmperf.calibration",
    "load_calibration": "llmperf.calibration_io",
    "resolve_calibration": "llmperf.calibration_io",
    "bundled_hardware_names": "llmperf.catalog",
    "bundled_model_names": "llmperf.catalog",
    "load_hardware": "llmperf.catalog",
    "load_model": "llmperf.catalog",
    "LlmperfError": "llmperf.errors",
    "request_metrics": "llmperf.estimators.latency",
    "step_cost": "llmperf.estimators.latency",
    "activation_bytes": "llmperf.estimators.memory",
    "kv_bytes": "llmperf.estimators.memory",
    "max_batch": "llmperf.estimators.memory",
    "max_context": "llmperf.estimators.memory",
    "memory_breakdown": "llmperf.estimators.memory",
    "weight_bytes": "llmperf.estimators.memory",
    "parameter_counts": "llmperf.estimators.params",
    "parameter_table": "llmperf.estimators.params",
    "estimate": "llmperf.estimators.report",
    "estimate_frame": "llmperf.estimators.report",
    "layers_frame": "llmperf.estimators.report",
    "ops_frame": "llmperf.estimators.report",
    "build_step_ops": "llmperf.ops.builder",
    "kv_bytes_per_token": "llmperf.ops.kv",
    "Speculation": "llmperf.speculative",
    "HardwareSpec": "llmperf.specs.hardware",
    "ModelSpec": "llmperf.specs.model",
    "Workload": "llmperf.specs.workload",
    "Step": "llmperf.specs.workload",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmperf' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)
