"""Scenario grids: the estimate over models x hardware x dtypes x batch x lengths, one row each.

Vectorized (DESIGN.md rule 5): Python loops run only over the spec combinations (model,
hardware, weights, activations, KV dtype, tensor and pipeline parallelism); the batch/prompt/output/context
grid of each combination goes to :func:`llmperf.estimate_frame` as numpy arrays in one call.

Semantics of the lengths: ``prompt_len`` P is the prefill (TTFT); ``output_len`` O the generated
tokens (request latency, throughput); ``context_len`` C, when given, is the decode step reported
as ``tpot_s``: one new token with C tokens already in the KV cache. Memory is sized for the
longer of the request (P + O tokens) and that decode step (C + 1 tokens).
"""

from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from llmperf.calibration import IDEAL, Calibration
from llmperf.catalog import load_hardware, load_model
from llmperf.columns import ESTIMATE_COLUMNS
from llmperf.errors import LlmperfError
from llmperf.estimators.report import estimate_frame
from llmperf.specs.hardware import HardwareSpec
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Workload

# One row per scenario: the scenario inputs (model ... context_len) come first, then the results.
SWEEP_COLUMNS = list(ESTIMATE_COLUMNS)

def resolve_calibration(name: str, hardware: HardwareSpec,
                        host_s_per_kernel: float | None = None) -> Calibration:
    """``ideal``, ``auto`` (bundled or transferred) or a calibration CSV path; see
    :func:`llmperf.calibration_io.resolve_calibration`. ``host_s_per_kernel``: the eager host
    time per kernel of the CPU that will run an eager engine (the calibration's own otherwise);
    it needs a measured calibration, since the pure roofline has no host."""
    from llmperf.calibration_io import resolve_calibration as resolve

    calibration = resolve(name, hardware)
    if host_s_per_kernel is None:
        return calibration
    if not (np.isfinite(host_s_per_kernel) and host_s_per_kernel > 0):
        raise LlmperfError(f"host time per kernel must be a positive number of microseconds, got "
                           f"{host_s_per_kernel * 1e6:g}")
    if not hasattr(calibration, "with_host_rate"):
        raise LlmperfError(f"a host time per kernel needs a measured calibration, but {hardware.name} "
                           f"uses '{calibration.name}'; use --calibration auto (or a calibration CSV)")
    return calibration.with_host_rate(host_s_per_kernel, None)


def as_model(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(str(model))


def as_hardware(hardware: str | HardwareSpec) -> HardwareSpec:
    """A spec as is, or a bundled name/alias/prefix or YAML path through the catalog."""
    if isinstance(hardware, HardwareSpec):
        return hardware
    return load_hardware(str(hardware))


def scenario_frame(model: ModelSpec, hardware: HardwareSpec, workload: Workload = Workload(),
                   batch=1, prompt_len=1024, output_len=256, context_len=None,
                   calibration: Calibration = IDEAL, price_usd_per_hour: float | None = None,
                   allow_long_context: bool = False, require_fit: bool = False,
                   speculation=None, cached_prompt_len=0) -> pd.DataFrame:
    """:func:`llmperf.estimate_frame` for one model and GPU (memory sized for max(P + O, C + 1))."""
    return estimate_frame(model, hardware, workload, batch=batch, prompt_len=prompt_len,
                          output_len=output_len, context_len=context_len,
                          calibration=calibration, price_usd_per_hour=price_usd_per_hour,
                          allow_long_context=allow_long_context, require_fit=require_fit,
                          speculation=speculation, cached_prompt_len=cached_prompt_len)


def _grid(batch, prompt_len, output_len, context_len) -> dict:
    """Cartesian product of the length lists as flat float arrays (batch varies slowest)."""
    axes = [np.atleast_1d(np.asarray(x, dtype=float)) for x in (batch, prompt_len, output_len)]
    if context_len is not None:
        axes.append(np.atleast_1d(np.asarray(context_len, dtype=float)))
    if any(a.size == 0 for a in axes):
        raise LlmperfError("every list of batch sizes and lengths needs at least one value")
    mesh = [m.ravel() for m in np.meshgrid(*axes, indexing="ij")]
    names = ["batch", "prompt_len", "output_len", "context_len"]
    out = dict(zip(names, mesh))
    out.setdefault("context_len", None)
    return out


def _as_list(values) -> list:
    if isinstance(values, (str, int, float, ModelSpec, HardwareSpec)):
        return [values]
    return list(values)


def sweep_frame(models: Iterable, hardware: Iterable, batch: Sequence = (1,),
                prompt_len: Sequence = (1024,), output_len: Sequence = (256,),
                context_len: Sequence | None = None, weights: Sequence = ("bf16",),
                activations: Sequence = ("bf16",), kv_cache: Sequence = ("bf16",),
                tensor_parallel: Sequence = (1,), pipeline_parallel: Sequence = (1,),
                attention: str = "flash",
                calibration: str = "ideal", price_usd_per_hour: float | None = None,
                allow_long_context: bool = False, engine: str | None = None,
                host_s_per_kernel: float | None = None, speculation=None,
                cached_prompt_len: float = 0) -> pd.DataFrame:
    """The estimate over the cartesian grid of every argument given as a list.

    models / hardware: bundled names, spec file paths or loaded specs. batch and the lengths:
    token counts (ints). context_len None: TPOT at the last step of the request (P + O - 1).
    calibration: ``ideal`` or ``auto`` (see :func:`resolve_calibration`; ``host_s_per_kernel``
    as there). speculation: one :class:`llmperf.Speculation` for every scenario;
    cached_prompt_len: prompt tokens served from the prefix cache, in every scenario. Returns one row per
    scenario with :data:`SWEEP_COLUMNS`, ordered model, hardware, dtypes, tp, batch, lengths.
    """
    grid = _grid(batch, prompt_len, output_len, context_len)
    model_specs = [as_model(m) for m in _as_list(models)]
    hw_specs = [as_hardware(h) for h in _as_list(hardware)]
    combos = itertools.product(_as_list(weights), _as_list(activations), _as_list(kv_cache),
                               _as_list(tensor_parallel), _as_list(pipeline_parallel))
    workloads = [Workload(weights=w, activations=a, kv_cache=k, tensor_parallel=int(tp),
                          pipeline_parallel=int(pp), attention=attention, engine=engine)
                 for w, a, k, tp, pp in combos]
    frames = []
    for model, hw, workload in itertools.product(model_specs, hw_specs, workloads):
        frames.append(scenario_frame(model, hw, workload, **grid,
                                     calibration=resolve_calibration(calibration, hw, host_s_per_kernel),
                                     price_usd_per_hour=price_usd_per_hour,
                                     allow_long_context=allow_long_context,
                                     speculation=speculation,
                                     cached_prompt_len=cached_prompt_len))
    if not frames:
        raise LlmperfError("nothing to sweep: give at least one model and one GPU")
    return pd.concat(frames, ignore_index=True)[SWEEP_COLUMNS]
